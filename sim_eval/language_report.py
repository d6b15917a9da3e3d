"""Language metrics of an eval report: per-instruction success, wrong-object rate, paraphrase retention and
the instruction ablation (how much success depends on the prompt).

Rows come from :class:`sim_eval.rollout.EpisodeResult` ``language`` dicts. On grounded tasks an episode
ends at the first object achieved: ``success`` = the named target, ``wrong object`` = another one; under
``instruction:mismatched`` the named object is a new one and ``habit`` counts the episodes that achieved
the object the seed drew (the scene's own target) instead.
"""

from __future__ import annotations

from collections import defaultdict

from sim_eval.stats import wilson

ABLATION_CONDITIONS = ("instruction:empty", "instruction:mismatched")


def _rate(k: int, n: int) -> dict:
    return {"n": n, "successes": k, "success_rate": k / n if n else None, "ci95": list(wilson(k, n)) if n else None}


def language_summary(results, nominal: str = "nominal") -> dict | None:
    """``{"per_instruction": [...], "ablation": [...], "paraphrase": [...]}``; None when nothing to say."""
    ran = [r for r in results if not r.error and r.language]
    grounded = [r for r in ran if r.language.get("target") is not None]
    per_target: dict[tuple[str, str, str], list] = defaultdict(list)
    for r in grounded:
        per_target[(r.task, r.condition, r.language["target"])].append(r)
    per_instruction = []
    for (task, cond, target), rs in sorted(per_target.items()):
        wrong = sum(r.language["achieved"] not in (None, r.language["target"]) for r in rs)
        row = {"task": task, "condition": cond, "target": target, **_rate(sum(r.success for r in rs), len(rs)),
               "wrong_object": wrong, "wrong_object_rate": wrong / len(rs)}
        if cond == "instruction:mismatched":
            habit = sum(r.language["achieved"] == r.language["scene_target"] for r in rs)
            row.update(habit=habit, habit_rate=habit / len(rs))
        per_instruction.append(row)
    by_cond: dict[tuple[str, str], list] = defaultdict(list)
    for r in ran:
        by_cond[(r.task, r.condition)].append(r)
    ablation, paraphrase = [], []
    for task in sorted({t for t, _ in by_cond}):
        base = by_cond.get((task, nominal))
        base_rate = sum(r.success for r in base) / len(base) if base else None
        for cond in sorted(c for t, c in by_cond if t == task and c != nominal):
            rs = by_cond[(task, cond)]
            rate = _rate(sum(r.success for r in rs), len(rs))
            entry = {"task": task, "condition": cond, "nominal_rate": base_rate, **rate}
            if cond in ABLATION_CONDITIONS:
                entry["drop"] = None if base_rate is None else base_rate - rate["success_rate"]
                if any(r.language.get("scene_target") for r in rs):
                    habit = sum(r.language["achieved"] == r.language["scene_target"] for r in rs)
                    entry["habit_rate"] = habit / len(rs)
                    entry["wrong_object_rate"] = sum(r.language["achieved"] not in (None, r.language["target"])
                                                     for r in rs) / len(rs)
                ablation.append(entry)
            elif cond.startswith("paraphrase"):
                entry["retention"] = None if not base_rate else rate["success_rate"] / base_rate
                paraphrase.append(entry)
    if not (grounded or ablation or paraphrase):
        return None
    return {"per_instruction": per_instruction, "ablation": ablation, "paraphrase": paraphrase}


def _pct(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def language_markdown(lang: dict | None) -> list[str]:
    """The report's "Language" section (empty when there is no language summary)."""
    if not lang:
        return []
    out = ["", "## Language", ""]
    if lang["per_instruction"]:
        out += ["Per instruction (grounded tasks; an episode ends at the first object achieved):", "",
                "| task | condition | named object | success | 95 % CI | n | wrong object | scene's own target |",
                "|---|---|---|---|---|---|---|---|"]
        for r in lang["per_instruction"]:
            ci = "–" if r["ci95"] is None else "[{:.2f}, {:.2f}]".format(*r["ci95"])
            out.append(f"| {r['task']} | {r['condition']} | {r['target']} | {_pct(r['success_rate'])} | {ci} | "
                       f"{r['n']} | {_pct(r['wrong_object_rate'])} | {_pct(r.get('habit_rate'))} |")
        out.append("")
    if lang["paraphrase"]:
        out += ["Held-out paraphrases vs the canonical instruction:", "",
                "| task | condition | success | nominal | retention |", "|---|---|---|---|---|"]
        out += [f"| {p['task']} | {p['condition']} | {_pct(p['success_rate'])} | {_pct(p['nominal_rate'])} | "
                f"{'–' if p['retention'] is None else format(p['retention'], '.2f')} |" for p in lang["paraphrase"]]
        out.append("")
    if lang["ablation"]:
        out += ["Instruction ablation (same seeds; mismatched: success = the *newly named* object, habit = the "
                "scene's own target):", "",
                "| task | condition | success | nominal | drop | habit | wrong object |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {a['task']} | {a['condition']} | {_pct(a['success_rate'])} | {_pct(a['nominal_rate'])} | "
                f"{'–' if a['drop'] is None else format(a['drop'], '+.1%')} | {_pct(a.get('habit_rate'))} | "
                f"{_pct(a.get('wrong_object_rate'))} |" for a in lang["ablation"]]
    return out


def language_console(lang: dict | None) -> list[str]:
    """Short lines for ``vla eval``: per-target success and wrong-object rate, ablation drops, retention."""
    if not lang:
        return []
    lines = [f"{r['task']} {r['condition']} '{r['target']}': success {_pct(r['success_rate'])} (n={r['n']}), "
             f"wrong object {_pct(r['wrong_object_rate'])}"
             + (f", scene's own target {_pct(r['habit_rate'])}" if "habit_rate" in r else "")
             for r in lang["per_instruction"]]
    lines += [f"{p['task']} {p['condition']}: success {_pct(p['success_rate'])}, retention "
              f"{'–' if p['retention'] is None else format(p['retention'], '.2f')}" for p in lang["paraphrase"]]
    lines += [f"{a['task']} {a['condition']}: success {_pct(a['success_rate'])} vs nominal {_pct(a['nominal_rate'])}"
              + ("" if a["drop"] is None else f" (drop {a['drop']:+.1%})") for a in lang["ablation"]]
    return lines
