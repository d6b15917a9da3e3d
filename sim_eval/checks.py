"""Up-front checks of an eval's inputs, before any worker starts: a typo, a wrong folder, a server that
is down or a policy for another robot is a one-line ``ValueError``, never a report of 0 % successes.

:func:`resolve_eval` checks the task names, reaches the policy (reads a checkpoint's embodiment specs
from disk without loading weights, asks a server for its metadata) and picks, per task, the policy's
embodiment that drives the task's robot (``--embodiment`` or the task's own) and the image size.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

from sim_eval.tasks import task_info, task_spec
from vla.types import EmbodimentSpec

# spec fields that must agree for a policy embodiment to drive a task's robot
_MUST_MATCH = ("state_dim", "action_dim", "state_space", "action_space", "action_is_delta", "gripper_dims")
DEFAULT_IMAGE_SIZE = 96


@dataclass(frozen=True)
class EvalPlan:
    """What the rollouts use: the embodiment name passed to ``predict``, its cameras and the image size."""

    embodiment: str | None  # None: the task's own (scripted experts, openpi servers)
    cameras: tuple[str, ...] | None
    image_size: int


def resolve_eval(source, tasks: Sequence[str], *, embodiment: str | None = None, image_size: int | None = None,
                 policy=None) -> EvalPlan:
    """Check ``tasks`` and the policy ``source`` (a :class:`sim_eval.rollout.PolicySource`); return the plan."""
    if not tasks:
        raise ValueError("no task to evaluate: pass --task NAME or --suite robosuite|mt10")
    for task in tasks:
        task_info(task)  # unknown name: the same one-line error as `vla collect`
    specs = policy_specs(source, policy)
    if specs is None:  # the policy is built for the task's own robot
        if embodiment is not None:
            raise ValueError(f"--embodiment {embodiment}: only applies to checkpoints and vla serve policies")
        return EvalPlan(None, None, image_size or DEFAULT_IMAGE_SIZE)
    chosen = [match_embodiment(task, specs, embodiment, source) for task in tasks]
    names = {s.name for s in chosen}
    if len(names) > 1:
        raise ValueError(f"tasks {list(tasks)} need different embodiments {sorted(names)}: evaluate them separately")
    spec = chosen[0]
    size = image_size or (spec.image_size[0] if spec.image_size else DEFAULT_IMAGE_SIZE)
    return EvalPlan(spec.name, tuple(spec.cameras), int(size))


def match_embodiment(task: str, specs: dict[str, EmbodimentSpec], embodiment: str | None, source) -> EmbodimentSpec:
    """The policy's spec that drives ``task`` (named by ``embodiment``, else the task's own name)."""
    robot = task_spec(task)
    name = embodiment or robot.name
    where = f"--policy {source.target}"
    if name not in specs:
        hint = (f"; pass --embodiment NAME if one of them is fine-tuned for {robot.name!r}"
                if embodiment is None else "")
        raise ValueError(f"{where} has embodiment(s) {sorted(specs)}, not {name!r} (the robot of task {task!r})"
                         + hint)
    spec = specs[name]
    diffs = [f"{f} {getattr(spec, f)} vs {getattr(robot, f)}" for f in _MUST_MATCH
             if _norm(getattr(spec, f)) != _norm(getattr(robot, f))]
    missing = [c for c in spec.cameras if c not in robot.cameras]
    if missing:
        diffs.append(f"cameras {list(spec.cameras)} vs {list(robot.cameras)}")
    if diffs:
        raise ValueError(f"{where}: embodiment {name!r} cannot drive task {task!r} ({robot.name}): "
                         + "; ".join(diffs))
    return spec


def _norm(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v


def policy_specs(source, policy=None) -> dict[str, EmbodimentSpec] | None:
    """The policy's embodiment specs (None for scripted experts and openpi servers, which drive the task's
    own robot). Raises a one-line ``ValueError`` when the policy cannot be reached or read."""
    if source.kind == "expert":
        return None
    if source.kind == "object":
        return dict((policy or source.obj).metadata.embodiments)
    if source.kind == "checkpoint":
        return checkpoint_specs(source.target)
    if source.kind == "http":
        return _server_specs(source.target)
    if source.kind == "openpi":
        _check_port(source.target)
        return None
    raise ValueError(f"unknown policy kind {source.kind!r}")


def checkpoint_specs(path: str) -> dict[str, EmbodimentSpec]:
    """A checkpoint directory's embodiment specs, read from its JSON files (no weights loaded)."""
    from vla.checkpoint import read_embodiments, read_meta

    meta = read_meta(path, flag="--policy")  # no such dir / a training run's folder: "did you mean …/policy?"
    return {spec.name: spec for spec in read_embodiments(path, meta.embodiment_ids)}


def _server_specs(url: str) -> dict[str, EmbodimentSpec]:
    from serve.client import RemotePolicy, RemotePolicyError

    remote = RemotePolicy(url, retries=0, timeout_s=10.0, connect_timeout_s=3.0)
    try:
        return dict(remote.metadata.embodiments)
    except (RemotePolicyError, OSError, KeyError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"--policy {url}: no vla serve policy answers there ({first})") from None
    finally:
        remote.close()


def _check_port(url: str) -> None:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "", u.port or 80), timeout=3.0):
            pass
    except OSError as e:
        raise ValueError(f"--policy {url}: nothing listens there ({e.strerror or e})") from None
