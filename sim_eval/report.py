"""Eval reports: success with Wilson 95 % CI per condition, per-factor gap and retention vs nominal;
JSON + Markdown, a PNG plot and mp4 videos."""

from __future__ import annotations

from sim_eval.stats import wilson  # noqa: F401 - the report's CI (also used by sim_eval.language_report)


def summarize(results, nominal: str = "nominal") -> dict:
    """Aggregate EpisodeResults into per-(task, condition) rows plus per-factor gap/retention vs nominal.

    Errored episodes (``r.error`` set) are counted in ``errors`` and left out of ``n``, the success rate
    and its CI (``None`` when no episode of a row ran)."""
    from collections import defaultdict

    groups: dict[tuple[str, str], list] = defaultdict(list)
    for r in results:
        groups[(r.task, r.condition)].append(r)
    rows = []
    for (task, cond), rs in sorted(groups.items()):
        ran = [r for r in rs if not r.error]
        n = len(ran)
        rows.append({
            "task": task, "condition": cond, "factor": cond.split("@")[0], "severity": _severity(cond),
            **_rate(sum(r.success for r in ran), n), "errors": len(rs) - n,
            "seeds": [min(r.seed for r in rs), max(r.seed for r in rs)],
            "mean_steps": _mean([r.steps for r in ran]), "mean_queries": _mean([r.queries for r in ran]),
            "mean_renders": _mean([r.renders for r in ran]), **execution_metrics(ran),
            "failed_seeds": sorted(r.seed for r in ran if not r.success),
            "errored_seeds": sorted(r.seed for r in rs if r.error),
        })
    _add_gaps(rows, {r["task"]: r["success_rate"] for r in rows if r["condition"] == nominal}, key="task")
    overall = []
    for cond in sorted({r["condition"] for r in rows}, key=lambda c: (c != nominal, c)):
        rs = [r for r in rows if r["condition"] == cond]
        overall.append({"condition": cond, **_rate(sum(r["successes"] for r in rs), sum(r["n"] for r in rs)),
                        "errors": sum(r["errors"] for r in rs),
                        **execution_metrics([r for r in results if r.condition == cond and not r.error])})
    base = next((o["success_rate"] for o in overall if o["condition"] == nominal), None)
    _add_gaps(overall, {None: base}, key=None)
    return {"rows": rows, "overall": overall}


def execution_metrics(results) -> dict:
    """Smoothness and speed of execution: mean action discontinuity at chunk switches, the mean action change
    inside chunks (its reference scale), mean end-effector jerk (m/s^3) and mean steps to success (successful
    episodes only); ``None`` where nothing was measured."""
    return {"mean_discontinuity": _mean([r.discontinuity for r in results if r.discontinuity is not None]),
            "mean_jerk": _mean([r.jerk for r in results if r.jerk is not None]),
            "mean_step_change": _mean([r.step_change for r in results if getattr(r, "step_change", None) is not None]),
            "mean_steps_to_success": _mean([r.steps for r in results if r.success])}


def _rate(k: int, n: int) -> dict:
    """n, successes, success rate and Wilson CI (``None`` for both when n == 0)."""
    return {"n": n, "successes": k, "success_rate": k / n if n else None, "ci95": list(wilson(k, n)) if n else None}


def _mean(xs: list) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _add_gaps(rows: list[dict], base_of: dict, key: str | None) -> None:
    for r in rows:
        base, rate = base_of.get(r[key] if key else None), r["success_rate"]
        r["gap_vs_nominal"] = None if base is None or rate is None else rate - base
        r["retention"] = None if not base or rate is None else rate / base


def _severity(cond: str) -> int:
    return int(cond.split("@")[1]) if "@" in cond else 0


def _fmt(x, pct=True) -> str:
    if x is None:
        return "–"
    return f"{x:+.1%}" if pct else f"{x:.2f}"


def _rate_cells(r: dict) -> str:
    """``success | 95 % CI | n | errors`` cells of a row."""
    if r["success_rate"] is None:
        return f"– | – | 0 | {r['errors']}"
    lo, hi = r["ci95"]
    return f"{r['success_rate']:.1%} | [{lo:.2f}, {hi:.2f}] | {r['n']} | {r['errors']}"


def console_table(summary: dict) -> list[str]:
    """The per-condition table ``vla eval`` and ``vla demo`` print: success, Wilson CI, n, errors, gap."""
    lines = [f"{'condition':<24} {'success':>8} {'95% CI':>14} {'n':>4} {'errors':>6} {'gap':>8}"]
    for o in summary["overall"]:
        gap = "" if o["gap_vs_nominal"] is None else f"{o['gap_vs_nominal']:+.1%}"
        rate, ci = ("–", "–") if o["success_rate"] is None else (f"{o['success_rate']:.1%}",
                                                                  "[{:.2f}, {:.2f}]".format(*o["ci95"]))
        lines.append(f"{o['condition']:<24} {rate:>8} {ci:>14} {o['n']:>4} {o['errors']:>6} {gap:>8}")
    return lines


def _span(values) -> str:
    values = sorted(set(values))
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def to_markdown(report: dict) -> str:
    """The report as Markdown: header from the rows themselves (so merged reports stay exact), overall and
    per-task tables, videos, errors."""
    meta, rows = report["meta"], report["summary"]["rows"]
    per_cond = _span(r["n"] + r["errors"] for r in rows) if rows else "0"
    seeds = f"{min(r['seeds'][0] for r in rows)}..{max(r['seeds'][1] for r in rows)}" if rows else "–"
    execution = (f"Execution: {meta['exec_mode']}, simulated inference delay {meta.get('delay_steps', 0)} control "
                 "steps (switch jump: mean |Δaction| of the arm dims where a new chunk takes over)."
                 if meta.get("exec_mode", "sync") != "sync" or meta.get("delay_steps") else "")
    lines = [f"# Sim eval: {meta['policy']}", "", *([execution, ""] if execution else []),
             f"Tasks: {', '.join(meta['tasks'])} · episodes per condition: {per_cond}"
             + (" (n per row below)" if "–" in per_cond else "")
             + f" · seeds {seeds} · workers: {meta['workers']} · {meta['seconds']:.0f} s", "",
             "Errored episodes (the policy or simulator failed) are counted apart and not in the success rates.", "",
             "## Overall (all tasks)", "",
             "| condition | success | 95 % CI (Wilson) | n | errors | gap vs nominal | retention |",
             "|---|---|---|---|---|---|---|"]
    for o in report["summary"]["overall"]:
        lines.append(f"| {o['condition']} | {_rate_cells(o)} | {_fmt(o['gap_vs_nominal'])} | "
                     f"{_fmt(o['retention'], pct=False)} |")
    lines += ["", "## Per task", "",
              "| task | condition | success | 95 % CI (Wilson) | n | errors | gap vs nominal | retention | mean steps "
              "| queries/ep | renders/ep | steps to success | switch jump | EE jerk m/s³ | failed seeds |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        failed = ", ".join(map(str, r["failed_seeds"][:10])) + (" …" if len(r["failed_seeds"]) > 10 else "")
        means = " | ".join("–" if r.get(k) is None else f"{r[k]:{f}}" for k, f in
                           (("mean_steps", ".0f"), ("mean_queries", ".1f"), ("mean_renders", ".1f"),
                            ("mean_steps_to_success", ".0f"), ("mean_discontinuity", ".3f"), ("mean_jerk", ".1f")))
        lines.append(f"| {r['task']} | {r['condition']} | {_rate_cells(r)} | {_fmt(r['gap_vs_nominal'])} | "
                     f"{_fmt(r['retention'], pct=False)} | {means} | {failed} |")
    from sim_eval.language_report import language_markdown

    lines += recipe_markdown(meta.get("recipe"), meta.get("training"))
    lines += language_markdown(report.get("language"))
    if report.get("videos"):
        lines += ["", "## Videos", ""] + [f"- [{v}]({v})" for v in report["videos"]]
    if report.get("errors"):
        lines += ["", "## Errors", ""] + [f"- {e}" for e in report["errors"][:20]]
    if report.get("retried"):
        lines += ["", "## Retried episodes (their worker died; the rerun's result is counted)", ""] + \
            [f"- {e}" for e in report["retried"][:20]]
    return "\n".join(lines) + "\n"


def recipe_markdown(recipe: dict | None, training: dict | None = None) -> list[str]:
    """How the evaluated policy was trained, when the report says (``vla demo`` does): its demo sets, the nuisance
    factors its demos randomized and those it never saw (what the table measures out of distribution)."""
    if not recipe:
        return []
    lines = ["", "## Training recipe", ""]
    lines += [f"- demos `{name}`: {d['episodes']} episodes, sampling weight {d['weight']:g}"
              for name, d in (recipe.get("demos") or {}).items()]
    lines += [f"- randomized in training: {', '.join(recipe.get('randomized_in_training') or []) or 'none'}",
              f"- held out (never in training): {', '.join(recipe.get('held_out') or []) or 'none'}",
              f"- image encoder {recipe.get('image_encoder', '?')}, augmentation {recipe.get('augment', '?')}"]
    if recipe.get("action_noise"):
        lines.append(f"- demos collected with action noise {recipe['action_noise']:g} (DART: the robot executed the "
                     "expert's action plus a drift, the demos record the expert's correction)")
    if training and training.get("steps"):
        sps = training.get("samples_per_second")
        lines.append(f"- {training['steps']} training steps" + (f", {sps:.0f} samples/s" if sps else ""))
    return lines


def plot(report: dict, path) -> None:
    """Write :func:`figure` as a PNG."""
    fig = figure(report)  # selects the Agg backend before pyplot is imported here
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure(report: dict):
    """Bar chart: success rate with Wilson 95 % CI per condition (one group of bars per task); each bar is
    labelled with its rate and n above its CI whisker. Rows without a run episode are left out."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in report["summary"]["rows"] if r["n"]]
    tasks = sorted({r["task"] for r in rows})
    ran = {r["condition"] for r in rows}
    conds = [o["condition"] for o in report["summary"]["overall"] if o["condition"] in ran]
    width = 0.8 / max(len(conds), 1)
    fig_w = max(6.0, 0.75 * len(tasks) * max(len(conds), 1) + 2)
    fig, ax = plt.subplots(figsize=(fig_w, 4.6))
    cmap = plt.get_cmap("tab10")
    narrow = len(tasks) * len(conds) > 8
    for j, cond in enumerate(conds):
        bars = [(i, r) for i, task in enumerate(tasks) for r in rows if r["task"] == task and r["condition"] == cond]
        xs = [i - 0.4 + width * (j + 0.5) for i, _ in bars]
        ys = [r["success_rate"] for _, r in bars]
        lo = [max(0.0, r["success_rate"] - r["ci95"][0]) for _, r in bars]  # clip float round-off at 0 / 1
        hi = [max(0.0, r["ci95"][1] - r["success_rate"]) for _, r in bars]
        ax.bar(xs, ys, width * 0.9, yerr=[lo, hi], capsize=3, label=cond, color=cmap(j % 10),
               edgecolor="black" if cond == "nominal" else None)
        for x, (_, r) in zip(xs, bars):  # above the whisker: never on top of the error bar
            label = f"{r['success_rate']:.0%} n={r['n']}" if narrow else f"{r['success_rate']:.0%}\nn={r['n']}"
            ax.text(x, r["ci95"][1] + 0.02, label, ha="center", va="bottom", fontsize=7, rotation=90 if narrow else 0)
    ax.set_xticks(np.arange(len(tasks)))
    ax.set_xticklabels(tasks)
    ax.set_ylim(0, 1.32 if narrow else 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("success rate (Wilson 95 % CI)")
    title = f"{report['meta']['policy']}: success by condition"
    ax.set_title("\n".join(textwrap.wrap(title, width=int(fig_w * 11))), fontsize=10)
    ax.legend(fontsize=8, ncol=min(len(conds), 4), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return fig


def write_video(frames, path, fps: int = 20, scale: int = 2) -> None:
    """mp4 (H.264 via PyAV) of uint8 frames, upscaled ``scale`` x by pixel repetition."""
    import av
    import numpy as np

    frames = [np.repeat(np.repeat(f, scale, 0), scale, 1) for f in frames]
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "23"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
