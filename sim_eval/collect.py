"""Demo collection: run the scripted expert, keep only successful episodes, write RLDS."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sim_eval.rollout import Job, PolicySource, RolloutConfig, run_jobs
from sim_eval.seeds import COLLECT_FACTOR_SEED, COLLECT_SEED, check_collect_seeds, episode_seeds

VERSION = "1.0.0"


class DatasetExistsError(FileExistsError):
    """The output dataset directory already holds data and ``overwrite`` was not asked for."""

    def __init__(self, path: Path):
        super().__init__(f"{path} already holds a dataset (overwrite=True replaces it)")
        self.path = path


@dataclass(frozen=True, kw_only=True)
class CollectSummary:
    task: str
    requested: int
    recorded: int
    discarded: int  # failed expert episodes (not written)
    errors: int
    path: str
    steps: int
    seconds: float
    randomize: tuple[str, ...] = ()  # "factor@max_severity" drawn per episode (see sim_eval.randomize)
    factor_seed: int | None = None  # the factor seed of those draws (None: nothing randomized)
    first_seed: int | None = None  # the first episode seed tried (episodes use first_seed, first_seed + 1, ...)
    action_noise: float = 0.0  # std of the executed-action perturbation (sim_eval.noise; 0 = none)

    def line(self) -> str:
        rand = f" randomizing {', '.join(self.randomize)}" if self.randomize else ""
        rand += f" with action noise {self.action_noise:g}" if self.action_noise else ""
        return (f"{self.task}: recorded {self.recorded}/{self.requested} successful episodes ({self.steps} steps)"
                f"{rand} to {self.path}; discarded {self.discarded} failed episode(s)"
                + (f", {self.errors} errored" if self.errors else "") + f" [{self.seconds:.0f} s]")


def dataset_path(out_dir: str | os.PathLike, task: str, dataset_name: str | None = None) -> Path:
    """Where ``collect`` writes: ``out_dir/<name>/1.0.0`` (name defaults to ``<task>_expert``)."""
    return Path(out_dir) / (dataset_name or f"{task.lower().replace('-', '_')}_expert") / VERSION


def collect(
    task: str,
    episodes: int,
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    image_size: int = 96,
    seed: int = COLLECT_SEED,
    dataset_name: str | None = None,
    factors: Sequence = (),
    randomize: Sequence = (),
    max_attempts: int | None = None,
    max_steps: int | None = None,
    overwrite: bool = False,
    action_noise: float = 0.0,
    progress: bool = True,
    ray: str | None = None,
) -> CollectSummary:
    """Record ``episodes`` successful expert demos of ``task`` into ``out_dir/<name>/1.0.0`` (RLDS).

    Seeds ``seed, seed+1, ...`` are tried in order (by one pool of ``workers`` that runs ahead) until
    enough succeed or ``max_attempts`` (default 2N+10) episodes ran: the demos are the first N
    successful seeds. Failed ones (including those not done within ``max_steps``, default the task's
    limit) are discarded and counted. An existing non-empty dataset raises :class:`DatasetExistsError`
    unless ``overwrite``. Episode seeds must stay below :data:`sim_eval.seeds.EVAL_SEED`.

    ``randomize``: ``"factor[@max_severity]"`` strings or :class:`sim_eval.randomize.Randomize` items;
    each episode draws each factor's severity from 0..max (default 2) and its perturbation, with
    :data:`sim_eval.seeds.COLLECT_FACTOR_SEED`; the draws go to the episode metadata ``randomization``
    (a JSON string ``{factor: {"severity": s, ...drawn values}}``). ``ray``: ``"auto"`` or a Ray cluster
    address runs the episodes as Ray tasks (:mod:`sim_eval.ray_backend`); the demos are the same.
    ``action_noise`` > 0: the robot executes the expert's action plus a seeded drift of that std while the demo
    records the expert's own action (:mod:`sim_eval.noise`, DART), so the data shows how to recover.
    """
    from tqdm import tqdm

    from data_pipelines.rlds.writer import check_dataset_name, write_rlds
    from sim_eval.language import Instruction
    from sim_eval.noise import ActionNoise
    from sim_eval.randomize import parse_randomize
    from sim_eval.tasks import task_info, task_spec

    if episodes <= 0:
        raise ValueError(f"--episodes must be > 0, got {episodes}")
    info = task_info(task)
    rands = parse_randomize(randomize, info.suite)
    noise = ActionNoise(float(action_noise)) if action_noise else None
    spec = task_spec(task, image_size)
    path = dataset_path(out_dir, task, dataset_name)
    check_dataset_name(path.parent.name)
    if not overwrite and path.is_dir() and any(path.iterdir()):
        raise DatasetExistsError(path)
    limit = max_attempts or 2 * episodes + 10
    check_collect_seeds(seed, limit)
    cfg = RolloutConfig(image_size=image_size, max_steps=max_steps)
    stats = {"ok": 0, "failed": 0, "errors": 0, "steps": 0}
    t0 = time.perf_counter()

    # one bar for the whole collection, opened before the writer's own (so it stays the top line and
    # ends with a newline: what is printed next starts on a line of its own)
    bar = tqdm(total=episodes, desc=f"collect {task}", unit="demo", disable=not progress, dynamic_ncols=True)

    # demos of a task with training wordings (grounded tasks, MT10) say it in one drawn per episode (the
    # held-out paraphrases stay for evaluation)
    wording = (Instruction("train"),) if info.templates else ()

    def episodes_iter() -> Iterator[dict]:
        cond = "randomize:" + ",".join(r.label for r in rands) if rands else "nominal"
        jobs = [Job(task, s, cond, factors=tuple(factors) + rands + wording, record=True, action_noise=noise)
                for s in episode_seeds(seed, limit)]
        results = run_jobs(jobs, PolicySource("expert"), cfg, workers=workers, progress=False, ordered=True,
                           ray=ray)
        try:
            for tried, res in enumerate(results, 1):
                if res.error:
                    stats["errors"] += 1
                    bar.write(f"[collect] {task} seed {res.seed}: error: {res.error.splitlines()[0]}")
                elif not res.success:
                    stats["failed"] += 1
                else:
                    stats["ok"] += 1
                    stats["steps"] += res.steps
                    bar.update(1)
                    yield res.episode
                bar.set_postfix(tried=tried)
                if stats["ok"] >= episodes:
                    break
        finally:
            results.close()  # stops the workers still running ahead

    try:
        written = write_rlds(episodes_iter(), out_dir, path.parent.name, spec, version=VERSION, overwrite=overwrite,
                             description=f"scripted-expert demos of {task} ({info.instruction!r}), sim_eval collect")
    except FileExistsError:  # created by someone else meanwhile
        raise DatasetExistsError(path) from None
    finally:
        bar.close()
    summary = CollectSummary(task=task, requested=episodes, recorded=stats["ok"], discarded=stats["failed"],
                             errors=stats["errors"], path=str(written), steps=stats["steps"],
                             seconds=time.perf_counter() - t0, randomize=tuple(r.label for r in rands),
                             factor_seed=COLLECT_FACTOR_SEED if rands else None, first_seed=seed,
                             action_noise=float(action_noise))
    (Path(written) / "collect_summary.json").write_text(json.dumps(asdict(summary), indent=2))
    return summary
