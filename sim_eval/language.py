"""Instructions of sim episodes: which object a grounded task's instruction names, how its wording is drawn,
and the instruction ablations (no simulator import).

A grounded task (``TaskInfo.targets``, e.g. LiftColor's cube colours) picks its episode target from the
episode seed (:func:`draw_target`: ``seed % n``, so n consecutive seeds cover every target equally) and
says it with the canonical wording at evaluation, a training wording drawn per episode in ``vla collect``
(:func:`training_instruction`) and a held-out paraphrase under the ``paraphrase`` factor. An
:class:`Instruction` item among an env's factors replaces the instruction after reset:

- ``train``: a training wording (collection);
- ``empty``: a content-free prompt, :data:`EMPTY_PROMPT` (the Policy interface refuses a literally empty one
  for embodiments that require a prompt); success still means the scene's target;
- ``mismatched``: another target of the same scene (grounded tasks: success now means the *named* object,
  and ``scene_target`` keeps the one the seed drew) or another task's instruction (other tasks);
- ``fixed``: a given text; on a grounded task it must name exactly one object of the scene.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from sim_eval.tasks import SUITES, TaskInfo, task_info

MODES = ("train", "empty", "mismatched", "fixed")
EMPTY_PROMPT = "do the task"  # names no object and no task: what the "empty" ablation says
ABLATIONS = ("empty", "mismatched")


def _rng(seed: int, tag: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(tag.encode())])


def draw_target(info: TaskInfo, seed: int) -> str:
    """The object episode ``seed`` of a grounded task is about (balanced over consecutive seeds)."""
    return info.targets[int(seed) % len(info.targets)]


def say(template: str, target: str | None) -> str:
    return template.format(target=target) if target is not None else template


def training_instruction(info: TaskInfo, target: str | None, seed: int) -> str:
    """A training wording drawn from the task's ``templates`` by the episode seed (canonical if none)."""
    pool = info.templates or (info.instruction,)
    return say(pool[int(_rng(seed, "train_instruction").integers(len(pool)))], target)


def parse_target(info: TaskInfo, text: str) -> str:
    """The one object of ``info.targets`` that ``text`` names; a one-line ValueError otherwise."""
    objects = ", ".join(info.targets)
    if not text.strip():
        raise ValueError(f"{info.name} needs an instruction naming one of its objects ({objects}); got an empty "
                         "prompt (to measure a policy without one use --instruction-ablation empty)")
    named = [t for t in info.targets if re.search(rf"\b{re.escape(t)}\b", text.lower())]
    if not named:
        raise ValueError(f"instruction {text!r} names no object of the {info.name} scene (its objects: {objects})")
    if len(named) > 1:
        raise ValueError(f"instruction {text!r} names {len(named)} objects of the {info.name} scene ({named}); "
                         "name exactly one")
    return named[0]


def check_instruction(task: str, text: str) -> None:
    """Refuse a fixed instruction ``text`` for ``task`` up front (empty, or not naming a scene object)."""
    info = task_info(task)
    if info.grounded:
        try:
            parse_target(info, text)
        except ValueError as e:
            raise ValueError(f"--instruction: {e}") from None
    elif not text.strip():
        raise ValueError(f"--instruction: empty prompt for task {task!r}; to measure a policy without one use "
                         "--instruction-ablation empty")


def mismatched(info: TaskInfo, target: str | None, seed: int) -> tuple[str, str | None]:
    """(instruction, new target) naming something else than the episode's own goal, drawn by ``seed``."""
    rng = _rng(seed, "mismatched")
    if info.grounded:
        others = [t for t in info.targets if t != target]
        new = others[int(rng.integers(len(others)))]
        return say(info.instruction, new), new
    suite = "mt10" if info.suite == "metaworld" else info.suite
    others = [task_info(t).instruction for t in SUITES[suite] if task_info(t).instruction != info.instruction]
    return others[int(rng.integers(len(others)))], None


@dataclass(frozen=True)
class Instruction:
    """Replace an episode's instruction after reset (see the module docstring for the modes)."""

    mode: str
    text: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown instruction mode {self.mode!r}; choose from {MODES}")

    @property
    def label(self) -> str:
        return f"instruction:{self.text!r}" if self.mode == "fixed" else f"instruction:{self.mode}"

    def apply(self, env, seed: int) -> dict:
        """Set ``env.instruction`` (and ``env.target`` where the goal moves); return what was drawn."""
        info, target = env.task, getattr(env, "target", None)  # Meta-World envs have no target
        if self.mode == "train":
            env.instruction = training_instruction(info, target, seed)
        elif self.mode == "empty":
            env.instruction = EMPTY_PROMPT
        elif self.mode == "mismatched":
            env.instruction, new = mismatched(info, target, seed)
            if new is not None:
                env.target = new
        else:
            check_instruction(info.name, self.text)  # also checked before an eval starts
            if info.grounded:
                env.target = parse_target(info, self.text)
            env.instruction = self.text
        return {"instruction": env.instruction, "target": getattr(env, "target", None)}


def parse_ablations(items) -> tuple[Instruction, ...]:
    """``--instruction-ablation empty mismatched`` -> Instruction items (one-line ValueError on a bad name)."""
    out = []
    for item in items or ():
        if item not in ABLATIONS:
            raise ValueError(f"--instruction-ablation {item!r}: choose from {ABLATIONS}")
        if Instruction(item) not in out:
            out.append(Instruction(item))
    return tuple(out)
