"""The evaluation API: ``evaluate(policy, tasks, factors, episodes, workers, out_dir) -> report``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from sim_eval.factors import FactorSetting
from sim_eval.rollout import EpisodeResult, Job, PolicySource, RolloutConfig, run_jobs
from sim_eval.seeds import EVAL_SEED, episode_seeds


def _conditions(factors: Sequence[str | FactorSetting], factor_seed: int) -> list[tuple[str, tuple]]:
    conds: list[tuple[str, tuple]] = [("nominal", ())]
    for f in factors:
        s = f if isinstance(f, FactorSetting) else FactorSetting.parse(f, seed=factor_seed)
        if s.severity == 0:
            continue
        conds.append((s.label, (s,)))
    return conds


def evaluate(
    policy: str | PolicySource | object = "expert",
    tasks: Sequence[str] = ("Lift",),
    factors: Sequence[str | FactorSetting] = (),
    episodes: int = 10,
    workers: int = 1,
    out_dir: str | os.PathLike | None = None,
    *,
    seed: int = EVAL_SEED,
    factor_seed: int = 0,
    image_size: int | None = None,
    embodiment: str | None = None,
    videos_per_condition: int = 2,
    max_steps: int | None = None,
    execute_horizon: int | None = None,
    progress: bool = True,
    exec_mode: str = "sync",
    delay_steps: int | None = None,
    delay_ms: float | str | None = None,
    instruction_ablation: Sequence[str] = (),
    instruction: str | None = None,
    ray: str | None = None,
) -> dict:
    """Run ``episodes`` seeded episodes per (task, condition) and return (and write) the report.

    ``policy``: ``"expert"``, a checkpoint dir, ``http://…`` (serve), ``ws://…`` (openpi server), a
    :class:`PolicySource`, or a Policy object (run in-process; ``workers`` must be 1).
    ``factors``: names like ``"lighting@2"`` (severity 0..3, default 2); nominal is always included.
    ``embodiment``: the policy's embodiment that drives the tasks' robot (default: the robot's own name);
    ``image_size``: default the embodiment spec's. ``seed``: the first episode seed (default
    :data:`sim_eval.seeds.EVAL_SEED`, apart from the seeds ``collect`` records demos on).
    ``exec_mode`` / ``delay_steps`` / ``delay_ms``: latency-aware execution (:func:`resolve_delay`): the
    robot keeps executing the old chunk for the delay; ``sync`` waits for every chunk (today's behaviour).
    ``delay_ms="measured"``: a served policy's median round trip (:func:`measured_latency_ms`).
    ``instruction_ablation``: ``"empty"`` / ``"mismatched"`` add conditions re-running the nominal seeds with the
    prompt replaced (:mod:`sim_eval.language`); ``instruction``: a fixed prompt for every episode (a grounded
    task's must name one object of its scene). Language metrics go to ``report["language"]``.
    Inputs are checked before any worker starts (:func:`sim_eval.checks.resolve_eval`). Episodes that
    error are listed apart (``errors``) and left out of the success rates (``None`` where no episode
    ran). ``ray``: ``"auto"`` or a Ray cluster address runs the episodes as Ray tasks (:mod:`sim_eval.ray_backend`);
    an episode retried after its worker died is listed under ``retried``. Writes ``report.json``, ``report.md``,
    ``success.png`` (not when every episode errored) and
    ``videos/*.mp4`` into ``out_dir``.
    """
    from sim_eval.checks import resolve_eval

    if episodes <= 0:
        raise ValueError(f"--episodes must be > 0, got {episodes}")
    from sim_eval.language import Instruction, check_instruction, parse_ablations

    source, label, obj = _source(policy)
    conds = _conditions(factors, factor_seed) + [(a.label, (a,)) for a in parse_ablations(instruction_ablation)]
    if instruction is not None:
        for task in tasks:
            check_instruction(task, instruction)
        conds = [(c, fs + (Instruction("fixed", instruction),)) for c, fs in conds]
    plan = resolve_eval(source, list(tasks), embodiment=embodiment, image_size=image_size, policy=obj)
    measured = None
    if delay_ms == "measured":
        delay_ms = measured = measured_latency_ms(source, plan, tasks[0])
    delay = resolve_delay(tasks, exec_mode, delay_steps, delay_ms, execute_horizon, source)
    # the first seeds of each condition are filmed in the main pass; _record_videos re-runs a seed only
    # when a condition has both outcomes and the filmed ones show just one
    jobs = [Job(task, s, cond, fs, video=out_dir is not None and i < videos_per_condition)
            for task in tasks for cond, fs in conds for i, s in enumerate(episode_seeds(seed, episodes))]
    cfg = RolloutConfig(image_size=plan.image_size, embodiment=plan.embodiment, cameras=plan.cameras,
                        max_steps=max_steps, execute_horizon=execute_horizon, exec_mode=exec_mode, delay_steps=delay)
    t0 = time.perf_counter()
    results: list[EpisodeResult] = list(run_jobs(jobs, source, cfg, workers=workers, desc="eval", policy=obj,
                                                 progress=progress, ray=ray))
    seconds = time.perf_counter() - t0
    from sim_eval.language_report import language_summary
    from sim_eval.report import summarize

    report = {
        "meta": {"policy": label, "tasks": list(tasks), "conditions": [c for c, _ in conds], "episodes": episodes,
                 "seed": seed, "factor_seed": factor_seed, "workers": workers, "image_size": plan.image_size,
                 "embodiment": plan.embodiment, "seconds": seconds, "exec_mode": exec_mode, "delay_steps": delay,
                 "measured_latency_ms": measured, "instruction": instruction, "ray": ray},
        "summary": summarize(results),
        "language": language_summary(results),
        "episodes": [{"task": r.task, "condition": r.condition, "seed": r.seed, "success": r.success, "steps": r.steps,
                      "queries": r.queries, "renders": r.renders, "seconds": round(r.seconds, 3),
                      "error": r.error.splitlines()[0] if r.error else "", "language": r.language,
                      "retries": r.retries} for r in results],
        "errors": [f"{r.task} {r.condition} seed {r.seed}: {r.error.splitlines()[0]}" for r in results if r.error],
        "retried": [f"{r.task} {r.condition} seed {r.seed}: run again {r.retries} time(s) after its Ray worker died"
                    for r in results if r.retries],
        "videos": [],
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if videos_per_condition > 0 and len(report["errors"]) < len(results):
            report["videos"] = _record_videos(results, source, cfg, out / "videos", videos_per_condition, conds, obj,
                                              workers, ray)
        write_report(report, out)
    return report


EXEC_MODES = ("sync", "naive", "blend", "rtc")


def resolve_delay(tasks: Sequence[str], exec_mode: str, delay_steps: int | None, delay_ms: float | None,
                  execute_horizon: int | None, source: PolicySource) -> int:
    """The simulated delay in control steps: ``delay_steps``, or ``delay_ms`` rounded up at the tasks' control
    rate; checked against the execution mode and the execute horizon (one-line ``ValueError`` naming the flag)."""
    import math

    from sim_eval.tasks import task_spec

    if exec_mode not in EXEC_MODES:
        raise ValueError(f"--exec-mode must be one of {EXEC_MODES}, got {exec_mode!r}")
    if delay_steps is not None and delay_ms is not None:
        raise ValueError("--delay-steps and --delay-ms: give one of them")
    specs = [task_spec(t) for t in tasks]
    if delay_ms is not None:
        if delay_ms < 0:
            raise ValueError(f"--delay-ms must be >= 0, got {delay_ms}")
        rates = sorted({s.control_hz for s in specs})
        if len(rates) > 1:
            raise ValueError(f"--delay-ms: tasks {list(tasks)} run at different control rates {rates} Hz; "
                             "evaluate them separately or pass --delay-steps")
        delay_steps = math.ceil(delay_ms / 1000.0 * rates[0] - 1e-9)
    d = delay_steps or 0
    if d < 0:
        raise ValueError(f"--delay-steps must be >= 0, got {d}")
    horizon = min(execute_horizon or s.execute_horizon for s in specs)
    if exec_mode != "sync" and d > horizon:
        raise ValueError(f"--delay-steps {d}: at most the execute horizon ({horizon}) for asynchronous execution")
    if exec_mode == "rtc" and source.kind == "expert":
        raise ValueError("--exec-mode rtc: the scripted expert takes no committed prefix; use a flow-matching "
                         "checkpoint or a vla serve URL")
    return d


def measured_latency_ms(source: PolicySource, plan, task: str, tries: int = 5) -> float:
    """Median round trip (ms) of ``tries`` queries (after one warm-up) of the served policy at ``source`` (http or
    ws) on a blank observation of ``task``'s robot: what ``--delay-ms measured`` converts to control steps."""
    import statistics

    import numpy as np

    from sim_eval.tasks import task_spec

    if source.kind not in ("http", "openpi"):
        raise ValueError("--delay-ms measured: only for a served policy (http://… or ws://…); pass a number of ms")
    spec = task_spec(task, plan.image_size)
    cams = plan.cameras or spec.cameras
    obs = {"images": {c: np.zeros((plan.image_size, plan.image_size, 3), np.uint8) for c in cams},
           "state": np.zeros(spec.state_dim, np.float32), "prompt": "measure the round trip"}
    if source.kind == "http":
        from serve.client import RemotePolicy

        policy = RemotePolicy(source.target)
    else:
        from sim_eval.remote import OpenPIPolicy

        policy = OpenPIPolicy(source.target, spec)
    times = []
    for i in range(tries + 1):
        t0 = time.perf_counter()
        policy.predict([obs], embodiment=plan.embodiment, seed=i)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times[1:])


def _source(policy) -> tuple[PolicySource, str, object]:
    """(how workers build the policy, its label in the report, the Policy object if one was given)."""
    if isinstance(policy, PolicySource):
        return policy, f"{policy.kind}:{policy.target}" if policy.target else policy.kind, None
    if isinstance(policy, str):
        return PolicySource.parse(policy), policy, None
    label = getattr(getattr(policy, "metadata", None), "model", "") or type(policy).__name__
    return PolicySource("object", obj=policy), label, policy  # pickled into the worker processes


def _record_videos(results, source, cfg, vdir: Path, per_condition: int, conds, obj, workers: int = 1,
                   ray: str | None = None) -> list[str]:
    """mp4s of the filmed episodes; where a condition has successes and failures but the filmed ones
    show only one outcome, one episode of the other outcome is re-run with frames on."""
    from sim_eval.report import write_video

    factors_of = dict(conds)
    filmed: list[EpisodeResult] = [r for r in results if r.frames and not r.error]
    by_key: dict[tuple[str, str], list[EpisodeResult]] = {}
    for r in results:
        if not r.error:
            by_key.setdefault((r.task, r.condition), []).append(r)
    extra: list[Job] = []
    for (task, cond), rs in sorted(by_key.items()):
        seen = {r.success for r in filmed if (r.task, r.condition) == (task, cond)}
        for outcome in (True, False):
            if outcome not in seen:
                other = sorted((r for r in rs if r.success == outcome), key=lambda r: r.seed)
                if other:
                    extra.append(Job(task, other[0].seed, cond, factors_of[cond], video=True))
    if extra:
        filmed += [r for r in run_jobs(extra, source, cfg, workers=workers, desc="videos", policy=obj, ray=ray)
                   if r.frames and not r.error]
    vdir.mkdir(parents=True, exist_ok=True)
    names = []
    for res in filmed:
        outcome = "success" if res.success else "failure"
        name = f"{res.task}_{res.condition.replace('@', '-').replace(':', '-')}_seed{res.seed}_{outcome}.mp4"
        write_video(res.frames, vdir / name)
        names.append(f"videos/{name}")
        res.frames = []
    return sorted(names)


def write_report(report: dict, out: Path) -> None:
    """report.json, report.md and (when any episode ran without error) success.png."""
    from sim_eval.report import plot, to_markdown

    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(to_markdown(report))
    if any(row["n"] for row in report["summary"]["rows"]):
        plot(report, out / "success.png")
