"""Eval reports: errored episodes apart from failures, the real n per row, a plot whose text fits."""

from __future__ import annotations

import math

import pytest


def _result(seed, condition="nominal", success=False, error=""):
    from sim_eval.rollout import EpisodeResult

    return EpisodeResult(task="Lift", seed=seed, condition=condition, success=success, steps=40, queries=5, renders=10,
                         seconds=1.0, error=error)


def _wilson_95(k, n):
    """Wilson score interval, written out independently of sim_eval.report."""
    z = 1.959963984540054
    p = k / n
    mid = (2 * n * p + z * z) / (2 * (n + z * z))
    half = z * math.sqrt(n * p * (1 - p) + z * z / 4) / (n + z * z)
    return mid - half, mid + half


def test_errored_episodes_are_not_failures():
    from sim_eval.report import summarize, to_markdown

    results = [_result(0, success=True), _result(1, success=True), _result(2, success=True), _result(3),
               _result(4, error="RemotePolicyError: connection reset"), _result(5, error="ValueError: bad chunk")]
    summary = summarize(results)
    (row,) = summary["rows"]
    assert (row["n"], row["successes"], row["errors"]) == (4, 3, 2)
    assert row["success_rate"] == 0.75 and row["failed_seeds"] == [3] and row["errored_seeds"] == [4, 5]
    assert row["ci95"] == pytest.approx(_wilson_95(3, 4), abs=1e-3)
    (overall,) = summary["overall"]
    assert (overall["n"], overall["errors"], overall["success_rate"]) == (4, 2, 0.75)
    md = to_markdown({"meta": {"policy": "p", "tasks": ["Lift"], "episodes": 6, "seed": 0, "workers": 1,
                               "seconds": 1.0}, "summary": summary})
    assert "| Lift | nominal | 75.0% | [0.30, 0.95] | 4 | 2 |" in md


def _merged_demo_report():
    """What `vla demo` merges: 20 episodes per factor condition, 50 nominal (seeds 1000..1049)."""
    from sim_eval.report import summarize

    outcomes = {"nominal": (50, 48), "camera_pose@2": (20, 0), "lighting@2": (20, 15), "object_color@3": (20, 19),
                "distractors@2": (20, 9)}
    results = [_result(1000 + s, c, success=s < k) for c, (n, k) in outcomes.items() for s in range(n)]
    meta = {"policy": "/tmp/vla-demo-runs/lift_demo_2026/train/policy", "tasks": ["Lift"], "episodes": 50,
            "seed": 1000, "workers": 2, "seconds": 321.0}
    return {"meta": meta, "summary": summarize(results)}


def test_merged_report_states_real_episode_counts():
    from sim_eval.report import to_markdown

    md = to_markdown(_merged_demo_report())
    assert "episodes per condition: 20–50 (n per row below)" in md and "seeds 1000..1049" in md
    assert "| nominal | 96.0% | [0.87, 0.99] | 50 | 0 |" in md
    assert "| camera_pose@2 | 0.0% | [0.00, 0.16] | 20 | 0 |" in md


def test_plot_title_fits_and_labels_clear_the_error_bars(tmp_path):
    from sim_eval.report import figure, plot

    report = _merged_demo_report()
    fig = figure(report)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    fig_box = fig.bbox
    title = ax.title.get_window_extent(renderer)
    assert fig_box.x0 <= title.x0 and title.x1 <= fig_box.x1 and title.y1 <= fig_box.y1  # not cut off
    from matplotlib.container import ErrorbarContainer

    whiskers = {round(float(x0), 6): max(y0, y1) for c in ax.containers if isinstance(c, ErrorbarContainer)
                for (x0, y0), (_, y1) in c.lines[2][0].get_segments()}
    rows = {r["condition"]: r for r in report["summary"]["rows"]}
    assert len(ax.texts) == len(rows) == len(whiskers)
    for text in ax.texts:
        x, _ = text.get_position()
        top = ax.transData.transform((x, whiskers[round(float(x), 6)]))[1]
        assert text.get_window_extent(renderer).y0 >= top, text.get_text()  # above the whisker, not on it
        assert text.get_window_extent(renderer).y1 <= ax.bbox.y1  # inside the axes
    assert {t.get_text().split("n=")[1] for t in ax.texts} == {"50", "20"}  # each bar says its own n
    plot(report, tmp_path / "success.png")
    assert (tmp_path / "success.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_table_keeps_errors_apart_and_all_errored_rows_readable():
    """The table `vla eval` and `vla demo` print: a row whose episodes all errored shows dashes, not 0 %."""
    from sim_eval.report import console_table, summarize

    results = [_result(0, success=True), _result(1), _result(2, "lighting@2", error="RuntimeError: worker died")]
    lines = console_table(summarize(results))
    assert lines[0].split() == ["condition", "success", "95%", "CI", "n", "errors", "gap"]
    lo, hi = _wilson_95(1, 2)
    assert lines[1].split() == ["nominal", "50.0%", f"[{lo:.2f},", f"{hi:.2f}]", "2", "0", "+0.0%"]
    assert lines[2].split() == ["lighting@2", "–", "–", "0", "1"]
