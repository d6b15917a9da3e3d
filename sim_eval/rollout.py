"""Rollouts of any Policy: execute the chunk, query (and render) only when it runs out; parallel workers.

A job is a picklable :class:`Job` (task, seed, factor condition); a worker process builds each env
and the policy once (from a picklable :class:`PolicySource`) and runs its jobs. Results come back
as :class:`EpisodeResult` (plus recorded steps when collecting demos, and video frames on request).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim_eval.seeds import query_seed


@dataclass(frozen=True)
class PolicySource:
    """How a worker builds the policy: ``expert`` | ``checkpoint`` (path) | ``http`` (url) | ``openpi`` (url)."""

    kind: str
    target: str = ""
    chunk: int = 1  # scripted experts only: actions per predicted chunk
    expert_uses_images: bool = False  # scripted experts only: render at queries as if the policy looked
    obj: Any = field(default=None, compare=False, repr=False)  # kind "object": a picklable Policy instance

    @classmethod
    def parse(cls, text: str, chunk: int = 1) -> PolicySource:
        """``expert`` | a checkpoint dir | ``http://host:port`` | ``ws://host:port`` (openpi)."""
        if text == "expert":
            return cls("expert", chunk=chunk)
        if text.startswith(("http://", "https://")):
            return cls("http", text)
        if text.startswith(("ws://", "wss://", "openpi://")):
            return cls("openpi", text)
        if os.path.isdir(text) or os.sep in text:  # a path: sim_eval.checks says what is wrong with it
            return cls("checkpoint", text)
        raise ValueError(f"--policy {text!r}: expected 'expert', a checkpoint directory, http://host:port or ws://host:port")

    def build(self, task: str, env):
        """The policy for ``task`` (experts are bound to ``env``)."""
        if self.kind == "expert":
            from sim_eval.experts import make_expert

            return make_expert(task, spec=env.spec, chunk=self.chunk, env=env, uses_images=self.expert_uses_images)
        if self.kind == "object":
            return self.obj
        if self.kind == "checkpoint":
            from vla.policy import VLAPolicy

            return VLAPolicy.from_pretrained(self.target)
        if self.kind == "http":
            from serve.client import RemotePolicy

            return RemotePolicy(self.target)
        if self.kind == "openpi":
            from sim_eval.remote import OpenPIPolicy

            return OpenPIPolicy(self.target, env.spec)
        raise ValueError(f"unknown policy kind {self.kind!r}")


@dataclass(frozen=True)
class Job:
    task: str
    seed: int
    condition: str = "nominal"  # e.g. "nominal" or "lighting@2"
    factors: tuple = ()  # FactorSetting conditions and Randomize items (drawn per episode) applied to the env
    video: bool = False
    record: bool = False  # keep every step's observation + action (demo collection)
    action_noise: Any = None  # sim_eval.noise.ActionNoise: execute action + noise, record the clean action (DART)
    exec_mode: str | None = None  # overrides RolloutConfig.exec_mode / delay_steps for this episode (sweeps)
    delay_steps: int | None = None


@dataclass(kw_only=True)
class EpisodeResult:
    """One episode's outcome (built by keyword). ``error``: set when the episode could not run; such an
    episode is neither a success nor a failure (reports count it apart)."""

    task: str
    seed: int
    condition: str
    success: bool
    steps: int
    queries: int
    renders: int
    seconds: float
    frames: list = field(default_factory=list)  # uint8[H, W, 3] video frames (agentview | wrist)
    episode: dict | None = None  # recorded steps (record=True)
    error: str = ""
    discontinuity: float | None = None  # mean |a_t - a_{t-1}| (arm dims) at chunk switches; None: no switch
    jerk: float | None = None  # mean end-effector jerk |d^3 p / dt^3| (m/s^3)
    step_change: float | None = None  # mean |a_t - a_{t-1}| (arm dims) inside chunks: the scale of a "jump"
    language: dict | None = None  # the instruction, and on grounded tasks target / scene_target / achieved object
    retries: int = 0  # times the episode was started again after its worker died (Ray backend)


@dataclass(frozen=True)
class RolloutConfig:
    image_size: int = 96
    embodiment: str | None = None  # the policy's embodiment driving the robot (default: the env's own)
    cameras: tuple[str, ...] | None = None  # cameras rendered (default: the env's)
    render_every_step: bool = False  # the naive baseline: render each step even if the policy does not query
    max_steps: int | None = None  # default: the task's own limit
    execute_horizon: int | None = None  # default: the embodiment's execute_horizon
    video_every: int = 1  # store every k-th step's frame in videos
    exec_mode: str = "sync"  # sync (the robot waits for each chunk) | naive | blend | rtc (vla_client.realtime)
    delay_steps: int = 0  # simulated inference delay in control ticks (asynchronous modes)


def run_episode(env, policy, job: Job, cfg: RolloutConfig = RolloutConfig()) -> EpisodeResult:
    """One episode of ``policy`` in ``env`` (already built with ``job``'s factors).

    Chunks are executed by the robot-side client's brokers (the one home of "execute the chunk, query only
    when it runs out"): :class:`ChunkBroker` for ``exec_mode="sync"``, else :class:`RealTimeChunkBroker`
    with a simulated delay of ``delay_steps`` ticks (the observation is taken at query time, the new chunk
    takes over ``delay_steps`` ticks later). Cameras are rendered only when the broker will query (or
    every step when recording a demo)."""
    if job.exec_mode is not None or job.delay_steps is not None:
        cfg = dataclasses.replace(cfg, exec_mode=job.exec_mode or cfg.exec_mode,
                                  delay_steps=cfg.delay_steps if job.delay_steps is None else job.delay_steps)
    t0 = time.perf_counter()
    uses_images = bool(getattr(policy, "metadata", None) is None or policy.metadata.extra.get("uses_images", True))
    record, video = job.record, job.video
    env.renders = 0
    policy.reset()
    obs = env.reset(job.seed, render=uses_images or record)
    broker = make_broker(policy, env, job, cfg)
    max_steps = cfg.max_steps or env.max_steps
    frames: list[np.ndarray] = []
    steps: list[tuple[dict, np.ndarray, np.ndarray]] = []  # (images, state, action) when recording
    actions, eef = [], [np.asarray(obs["state"][:3], np.float64)]
    perturb = (job.action_noise.stream(job.seed, env.spec.action_dim, env.spec.gripper_dims)
               if job.action_noise is not None else None)
    done = success = False
    while not done:
        if video and env.t % cfg.video_every == 0:
            frames.append(_frame(env))
        action = broker.act(obs)
        actions.append(np.asarray(action, np.float64))
        if record:
            steps.append((obs["images"], obs["state"], action))
        done, success = env.step(action if perturb is None else perturb(action))
        done = done or env.t >= max_steps
        eef.append(np.asarray(env.state()[:3], np.float64))
        if not done:
            render = record or cfg.render_every_step or (uses_images and broker.needs_observation)
            obs = env.observe(render=render)
    if video:
        frames.append(_frame(env))
    return EpisodeResult(task=job.task, seed=job.seed, condition=job.condition, success=bool(success), steps=env.t,
                         queries=broker.queries, renders=env.renders, seconds=time.perf_counter() - t0, frames=frames,
                         episode=_episode(env, job, steps) if record else None,
                         discontinuity=switch_discontinuity(actions, broker.switches, env.spec.gripper_dims),
                         step_change=within_chunk_change(actions, broker.switches, env.spec.gripper_dims),
                         jerk=eef_jerk(eef, env.spec.control_hz), language=_language(env))


def make_broker(policy, env, job: Job, cfg: RolloutConfig):
    """The chunk broker of ``cfg.exec_mode`` for one episode (seeds from the episode seed and the query tick)."""
    from serve.client import ChunkBroker, RealTimeChunkBroker

    kw = dict(execute_horizon=cfg.execute_horizon, embodiment=cfg.embodiment or env.spec.name,
              seed=lambda t: query_seed(job.seed, t), action_dim=env.spec.action_dim)
    if cfg.exec_mode == "sync":
        return ChunkBroker(policy, **kw)
    return RealTimeChunkBroker(policy, mode=cfg.exec_mode, delay_steps=cfg.delay_steps, **kw)


def switch_discontinuity(actions: list, switches: list[tuple[int, int]], gripper_dims=()) -> float | None:
    """Mean L2 jump |a_s - a_{s-1}| over the arm (non-gripper) dims at each tick s where a new chunk took over."""
    arm = [i for i in range(len(actions[0])) if i not in set(gripper_dims)] if actions else []
    jumps = [float(np.linalg.norm(actions[s][arm] - actions[s - 1][arm])) for _, s in switches
             if 0 < s < len(actions)]
    return float(np.mean(jumps)) if jumps else None


def within_chunk_change(actions: list, switches: list[tuple[int, int]], gripper_dims=()) -> float | None:
    """Mean L2 change |a_t - a_{t-1}| over the arm dims at the ticks where no new chunk took over (the reference
    scale for :func:`switch_discontinuity`)."""
    at_switch = {s for _, s in switches}
    arm = [i for i in range(len(actions[0])) if i not in set(gripper_dims)] if actions else []
    steps = [float(np.linalg.norm(actions[t][arm] - actions[t - 1][arm])) for t in range(1, len(actions))
             if t not in at_switch]
    return float(np.mean(steps)) if steps else None


def eef_jerk(positions: list, control_hz: float) -> float | None:
    """Mean norm of the end-effector position's third finite difference times ``control_hz**3`` (m/s^3)."""
    if len(positions) < 4:
        return None
    p = np.asarray(positions)
    return float(np.linalg.norm(np.diff(p, n=3, axis=0), axis=1).mean() * control_hz**3)


def _episode(env, job: Job, steps: list) -> dict:
    """Recorded steps in the RLDS writer's episode format."""
    return {
        "steps": {
            "observation": {**{c: np.stack([im[c] for im, _, _ in steps]) for c in env.cameras},
                            "state": np.stack([s for _, s, _ in steps]).astype(np.float32)},
            "action": np.stack([a for _, _, a in steps]).astype(np.float32),
            "language_instruction": env.instruction,
        },
        "metadata": {"episode_id": f"{job.task}_{job.seed}", "task": job.task, "seed": int(job.seed),
                     "condition": job.condition, **_randomization(env),
                     **({"action_noise": float(job.action_noise.scale)} if job.action_noise is not None else {}),
                     **({"target": env.target} if getattr(env, "target", None) else {})},
    }


def _language(env) -> dict:
    """What the episode was told and, on grounded tasks, which object it was about and which it achieved."""
    outcome = getattr(env, "language_outcome", None)
    return outcome() if outcome else {"instruction": env.instruction}


def _randomization(env) -> dict:
    """``{"randomization": JSON {factor: {"severity": s, ...drawn values}}}`` when the env randomizes factors."""
    import json

    factors = getattr(env, "factors", None)
    return {"randomization": json.dumps(factors.drawn, sort_keys=True)} if getattr(factors, "randomize", ()) else {}


def _frame(env) -> np.ndarray:
    """A fresh video frame (all cameras side by side); not counted as a policy render."""
    n = env.renders
    frame = np.concatenate([env.render(c) for c in env.cameras], axis=1)
    env.renders = n
    return frame


# -- worker processes --------------------------------------------------------------------------------
_W: dict[str, Any] = {}


def _worker_init(source: PolicySource, cfg: RolloutConfig) -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("USE_TF", "0")  # keep TensorFlow (and its LLVM symbols) out of render workers
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    _W.update(source=source, cfg=cfg, envs={}, policies={})


def _get(task: str, factors: tuple):
    from sim_eval.envs import make_env

    key = (task, factors)
    envs = _W["envs"]
    if key not in envs:
        if len(envs) >= 2:  # keep memory bounded: drop the oldest env
            old = next(iter(envs))
            envs.pop(old).close()
            _W["policies"].pop(old, None)
        cfg: RolloutConfig = _W["cfg"]
        envs[key] = make_env(task, image_size=cfg.image_size, cameras=cfg.cameras, factors=factors, seed=0)
    env = envs[key]
    source: PolicySource = _W["source"]
    pkey = key if source.kind == "expert" else "shared"
    if pkey not in _W["policies"]:
        _W["policies"][pkey] = source.build(task, env)
    policy = _W["policies"][pkey]
    if source.kind == "expert" and getattr(policy, "env", None) is not env:
        policy.attach(env)
    return env, policy


def _run_job(job: Job) -> EpisodeResult:
    try:
        env, policy = _get(job.task, job.factors)
        return run_episode(env, policy, job, _W["cfg"])
    except Exception as e:  # noqa: BLE001 - reported per episode, the run goes on
        import traceback

        return _failed(job, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}")


def _failed(job: Job, error: str, retries: int = 0) -> EpisodeResult:
    """The result of an episode that could not run (neither a success nor a failure)."""
    return EpisodeResult(task=job.task, seed=job.seed, condition=job.condition, success=False, steps=0, queries=0,
                         renders=0, seconds=0.0, error=error, retries=retries)


def ray_episode(run: str, setup: tuple, job: Job) -> EpisodeResult:
    """One episode as a Ray task (:mod:`sim_eval.ray_backend`): a Ray worker keeps the pool worker's state (envs,
    policy) across the tasks of one run and starts afresh for another run."""
    if _W.get("run") != run:
        for env in _W.get("envs", {}).values():
            env.close()
        _W.clear()
        _worker_init(*setup)
        _W["run"] = run
    return _run_job(job)


def run_jobs(
    jobs: Sequence[Job],
    source: PolicySource,
    cfg: RolloutConfig = RolloutConfig(),
    workers: int = 1,
    desc: str = "episodes",
    policy=None,
    progress: bool = True,
    in_process: bool = False,
    ordered: bool = False,
    ray: str | None = None,
) -> Iterator[EpisodeResult]:
    """Yield results (in completion order, or in job order with ``ordered``) of ``jobs`` run by
    ``workers`` spawned processes. Closing the generator early stops the workers.

    Workers are fresh interpreters (MuJoCo's CPU renderer crashes in a process that has loaded
    TensorFlow, as the data pipeline does). ``policy``: a Policy object (e.g. the fine-tuning loop's
    live model); it is pickled into each worker. ``in_process=True`` runs here instead (no pickling).
    ``ray``: ``"auto"`` (a local Ray of ``workers`` CPUs) or a Ray cluster address: episodes run as Ray tasks
    (:mod:`sim_eval.ray_backend`), a task whose worker died is retried (``EpisodeResult.retries``).
    """
    from tqdm import tqdm

    jobs = list(jobs)
    bar = tqdm(total=len(jobs), desc=desc, unit="ep", disable=not progress, dynamic_ncols=True)
    ok = 0
    try:
        if policy is not None:
            source = PolicySource("object", obj=policy)
        if in_process:
            _worker_init(source, cfg)
            for job in jobs:
                res = _run_job(job)
                ok += res.success
                bar.update(1)
                bar.set_postfix(success=f"{ok}/{bar.n}")
                yield res
            return
        if ray:
            from sim_eval.ray_backend import ray_results

            results = ray_results(jobs, (source, cfg), ray, ray_episode, _failed, workers=workers, ordered=ordered)
        else:
            results = _pool_results(jobs, source, cfg, workers, ordered)
        for res in results:
            ok += res.success
            bar.update(1)
            bar.set_postfix(success=f"{ok}/{bar.n}")
            yield res
    finally:
        bar.close()


def _pool_results(jobs: list[Job], source: PolicySource, cfg: RolloutConfig, workers: int,
                  ordered: bool) -> Iterator[EpisodeResult]:
    """Results of ``jobs`` from spawned worker processes. A worker that dies (a native crash in the simulator,
    renderer or policy) does not hang the run: the episodes left unfinished come back as errored results
    naming its exit code. Closing the generator stops the workers at once."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # EGL/MuJoCo state must not be forked
    pool = ProcessPoolExecutor(max(1, min(workers, len(jobs))), mp_context=ctx, initializer=_worker_init,
                               initargs=(source, cfg))
    job_of = {pool.submit(_run_job, job): job for job in jobs}
    workers_started = list((getattr(pool, "_processes", None) or {}).values())  # kept: the pool drops dead ones
    try:
        for fut in _finished(list(job_of), ordered):
            try:
                yield fut.result()
            except BrokenProcessPool:
                job = job_of[fut]
                yield _failed(job, _death_note(workers_started))
    finally:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:  # early close (or a broken pool): do not wait for episodes nobody reads
            if proc.is_alive():
                proc.terminate()


def _finished(futures: list, ordered: bool) -> Iterator:
    """``futures`` in submission order (``ordered``) or as they finish."""
    from concurrent.futures import as_completed

    yield from futures if ordered else as_completed(futures)


def _death_note(processes: list) -> str:
    codes = sorted({p.exitcode for p in processes if p.exitcode not in (None, 0)})
    return (f"a sim worker process died (exit code {', '.join(map(str, codes)) or 'unknown'}; a negative code is "
            "the signal, e.g. -11 = segmentation fault): this episode did not run")
