"""Eval reports: success with Wilson 95 % CI per condition, per-factor gap and retention vs nominal;
JSON + Markdown, a PNG plot and mp4 videos."""

from __future__ import annotations

import math


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k/n`` (``(0, 1)`` when ``n == 0``)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def summarize(results, nominal: str = "nominal") -> dict:
    """Aggregate EpisodeResults into per-(task, condition) rows plus per-factor gap/retention vs nominal."""
    from collections import defaultdict

    groups: dict[tuple[str, str], list] = defaultdict(list)
    for r in results:
        groups[(r.task, r.condition)].append(r)
    rows = []
    for (task, cond), rs in sorted(groups.items()):
        n = len(rs)
        k = sum(r.success for r in rs)
        lo, hi = wilson(k, n)
        rows.append({
            "task": task, "condition": cond, "factor": cond.split("@")[0], "severity": _severity(cond),
            "n": n, "successes": k, "success_rate": k / n if n else 0.0, "ci95": [lo, hi],
            "mean_steps": sum(r.steps for r in rs) / n, "mean_queries": sum(r.queries for r in rs) / n,
            "mean_renders": sum(r.renders for r in rs) / n, "errors": sum(bool(r.error) for r in rs),
            "failed_seeds": sorted(r.seed for r in rs if not r.success),
        })
    nominal_rate = {r["task"]: r["success_rate"] for r in rows if r["condition"] == nominal}
    for r in rows:
        base = nominal_rate.get(r["task"])
        r["gap_vs_nominal"] = None if base is None else r["success_rate"] - base
        r["retention"] = None if not base else r["success_rate"] / base
    # overall per condition (across tasks)
    overall = []
    conds = sorted({r["condition"] for r in rows}, key=lambda c: (c != nominal, c))
    for cond in conds:
        rs = [r for r in rows if r["condition"] == cond]
        n, k = sum(r["n"] for r in rs), sum(r["successes"] for r in rs)
        lo, hi = wilson(k, n)
        overall.append({"condition": cond, "n": n, "successes": k, "success_rate": k / n if n else 0.0, "ci95": [lo, hi]})
    base = next((o["success_rate"] for o in overall if o["condition"] == nominal), None)
    for o in overall:
        o["gap_vs_nominal"] = None if base is None else o["success_rate"] - base
        o["retention"] = None if not base else o["success_rate"] / base
    return {"rows": rows, "overall": overall}


def _severity(cond: str) -> int:
    return int(cond.split("@")[1]) if "@" in cond else 0


def _fmt(x, pct=True) -> str:
    if x is None:
        return "–"
    return f"{x:+.1%}" if pct else f"{x:.2f}"


def to_markdown(report: dict) -> str:
    meta = report["meta"]
    lines = [f"# Sim eval: {meta['policy']}", "",
             f"Tasks: {', '.join(meta['tasks'])} · episodes per condition: {meta['episodes']} · seeds "
             f"{meta['seed']}..{meta['seed'] + meta['episodes'] - 1} · workers: {meta['workers']} · "
             f"{meta['seconds']:.0f} s", "",
             "## Overall (all tasks)", "",
             "| condition | success | 95 % CI (Wilson) | n | gap vs nominal | retention |",
             "|---|---|---|---|---|---|"]
    for o in report["summary"]["overall"]:
        lines.append(f"| {o['condition']} | {o['success_rate']:.1%} | [{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}] | {o['n']} | "
                     f"{_fmt(o['gap_vs_nominal'])} | {_fmt(o['retention'], pct=False)} |")
    lines += ["", "## Per task", "",
              "| task | condition | success | 95 % CI (Wilson) | n | gap vs nominal | retention | mean steps | queries/ep | renders/ep | failed seeds |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["summary"]["rows"]:
        failed = ", ".join(map(str, r["failed_seeds"][:10])) + (" …" if len(r["failed_seeds"]) > 10 else "")
        lines.append(f"| {r['task']} | {r['condition']} | {r['success_rate']:.1%} | [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | "
                     f"{r['n']} | {_fmt(r['gap_vs_nominal'])} | {_fmt(r['retention'], pct=False)} | {r['mean_steps']:.0f} | "
                     f"{r['mean_queries']:.1f} | {r['mean_renders']:.1f} | {failed} |")
    if report.get("videos"):
        lines += ["", "## Videos", ""] + [f"- [{v}]({v})" for v in report["videos"]]
    if report.get("errors"):
        lines += ["", "## Errors", ""] + [f"- {e}" for e in report["errors"][:20]]
    return "\n".join(lines) + "\n"


def plot(report: dict, path) -> None:
    """Bar chart: success rate with Wilson 95 % CI per condition (one group of bars per task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = report["summary"]["rows"]
    tasks = sorted({r["task"] for r in rows})
    conds = [o["condition"] for o in report["summary"]["overall"]]
    width = 0.8 / max(len(conds), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(tasks) * max(len(conds), 1) * 0.6 + 2), 4.2))
    cmap = plt.get_cmap("tab10")
    for j, cond in enumerate(conds):
        xs, ys, lo, hi = [], [], [], []
        for i, task in enumerate(tasks):
            r = next((r for r in rows if r["task"] == task and r["condition"] == cond), None)
            if r is None:
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(r["success_rate"])
            lo.append(max(0.0, r["success_rate"] - r["ci95"][0]))  # clip float round-off at 0 / 1
            hi.append(max(0.0, r["ci95"][1] - r["success_rate"]))
        ax.bar(xs, ys, width * 0.9, yerr=[lo, hi], capsize=3, label=cond, color=cmap(j % 10),
               edgecolor="black" if cond == "nominal" else None)
        for x, y in zip(xs, ys):
            ax.text(x, 0.02, f"{y:.0%}", ha="center", va="bottom", fontsize=7, rotation=90 if len(conds) > 4 else 0)
    ax.set_xticks(np.arange(len(tasks)))
    ax.set_xticklabels(tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (Wilson 95 % CI)")
    ns = sorted({r["n"] for r in rows})
    n_text = f"n={ns[0]} per bar" if len(ns) == 1 else f"n={ns[0]}-{ns[-1]} per bar"
    ax.set_title(f"{report['meta']['policy']}: success by factor ({n_text})")
    ax.legend(fontsize=8, ncol=min(len(conds), 4), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
