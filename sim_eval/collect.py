"""Demo collection: run the scripted expert, keep only successful episodes, write RLDS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from sim_eval.rollout import EpisodeResult, Job, PolicySource, RolloutConfig, run_jobs


@dataclass
class CollectSummary:
    task: str
    requested: int
    recorded: int
    discarded: int  # failed expert episodes (not written)
    errors: int
    path: str
    steps: int
    seconds: float

    def line(self) -> str:
        return (f"{self.task}: recorded {self.recorded}/{self.requested} successful episodes ({self.steps} steps) "
                f"to {self.path}; discarded {self.discarded} failed episode(s)"
                + (f", {self.errors} errored" if self.errors else "") + f" [{self.seconds:.0f} s]")


def collect(
    task: str,
    episodes: int,
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    image_size: int = 96,
    seed: int = 0,
    dataset_name: str | None = None,
    factors: Sequence = (),
    max_attempts: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> CollectSummary:
    """Record ``episodes`` successful expert demos of ``task`` into ``out_dir/<name>/1.0.0`` (RLDS).

    Seeds ``seed, seed+1, ...`` are tried until enough succeed or ``max_attempts`` (default 2N+10)
    episodes ran; failed ones are discarded and counted.
    """
    import time

    from data_pipelines.rlds.writer import write_rlds
    from sim_eval.envs import robosuite_panda_spec, task_info

    if episodes <= 0:
        raise ValueError(f"--episodes must be > 0, got {episodes}")
    info = task_info(task)
    if info.suite == "robosuite":
        spec = robosuite_panda_spec(image_size)
    else:
        from sim_eval.metaworld_env import metaworld_spec

        spec = metaworld_spec(image_size)
    name = dataset_name or f"{task.lower().replace('-', '_')}_expert"
    limit = max_attempts or 2 * episodes + 10
    cfg = RolloutConfig(image_size=image_size)
    stats = {"ok": 0, "failed": 0, "errors": 0, "steps": 0}
    t0 = time.perf_counter()

    def episodes_iter() -> Iterator[dict]:
        next_seed, tried = seed, 0
        while stats["ok"] < episodes and tried < limit:
            n = min(limit - tried, max(episodes - stats["ok"], 1) + (2 if tried else 0))
            jobs = [Job(task, s, factors=tuple(factors), record=True) for s in range(next_seed, next_seed + n)]
            next_seed += n
            tried += n
            results: list[EpisodeResult] = []
            for res in run_jobs(jobs, PolicySource("expert"), cfg, workers=workers, desc=f"collect {task}",
                                progress=progress):
                results.append(res)
            for res in sorted(results, key=lambda r: r.seed):  # deterministic order
                if res.error:
                    stats["errors"] += 1
                    print(f"[collect] {task} seed {res.seed}: error: {res.error.splitlines()[0]}")
                elif not res.success:
                    stats["failed"] += 1
                elif stats["ok"] < episodes:
                    stats["ok"] += 1
                    stats["steps"] += res.steps
                    yield res.episode

    path = write_rlds(episodes_iter(), out_dir, name, spec, overwrite=overwrite,
                      description=f"scripted-expert demos of {task} ({info.instruction!r}), sim_eval collect")
    summary = CollectSummary(task, episodes, stats["ok"], stats["failed"], stats["errors"], str(path), stats["steps"],
                             time.perf_counter() - t0)
    (Path(path) / "collect_summary.json").write_text(__import__("json").dumps(summary.__dict__, indent=2))
    return summary
