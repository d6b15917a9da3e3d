"""Simulated tasks behind one wrapper that speaks the shared Observation vocabulary.

``make_env("Lift", image_size=96)`` returns a :class:`RobosuiteEnv` whose ``reset(seed)`` /
``step(action)`` / ``observe(render=...)`` produce ``Observation`` dicts (upright images keyed by
the embodiment's camera names, float32 state, the task instruction). Rendering only happens
when asked (``observe(render=True)``), so rollouts render only when the policy is queried.
Meta-World tasks live in :mod:`sim_eval.metaworld_env` behind the same interface; task names,
instructions and embodiment specs in :mod:`sim_eval.tasks`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim_eval.gl import gl_guard
from sim_eval.logs import import_robosuite
from sim_eval.tasks import (  # noqa: F401 - re-exported: the registry's public names
    METAWORLD_TASKS,
    ROBOSUITE_TASKS,
    SUITES,
    TaskInfo,
    robosuite_panda_spec,
    suite_tasks,
    task_info,
    task_spec,
)
from vla.types import Observation

# robosuite camera name per embodiment camera
_CAMERA_MAP = {"agentview": "agentview", "wrist": "robot0_eye_in_hand"}


def _controller_config():
    from robosuite.controllers import load_composite_controller_config

    return load_composite_controller_config(controller="BASIC", robot="Panda")


class RobosuiteEnv:
    """A robosuite task with model edits (factors), explicit rendering and Observation output."""

    def __init__(
        self,
        task: str,
        image_size: int = 96,
        cameras: Sequence[str] | None = None,
        factors: Sequence[Any] = (),
        seed: int = 0,
    ):
        gl_guard()
        suite = import_robosuite()

        if task not in ROBOSUITE_TASKS:
            raise ValueError(f"unknown robosuite task {task!r}; choose from {sorted(ROBOSUITE_TASKS)}")
        self.task = ROBOSUITE_TASKS[task]
        self.image_size = int(image_size)
        self.spec = robosuite_panda_spec(self.image_size)
        self.cameras = tuple(cameras) if cameras is not None else self.spec.cameras
        for c in self.cameras:
            if c not in _CAMERA_MAP:
                raise ValueError(f"unknown camera {c!r}; choose from {sorted(_CAMERA_MAP)}")
        self.max_steps = self.task.max_steps
        if self.task.grounded:
            import sim_eval.language_envs  # noqa: F401 - registers LiftColor / PickPlaceOne with robosuite
        self._target: str | None = None
        self.scene_target: str | None = None  # the object the episode seed drew (an ablation may name another)
        self.achieved: str | None = None  # grounded tasks: the first object lifted / placed this episode
        self.env = suite.make(
            self.task.env_name,
            robots="Panda",
            controller_configs=_controller_config(),
            has_renderer=False,
            has_offscreen_renderer=True,
            use_camera_obs=False,
            use_object_obs=True,
            reward_shaping=False,
            control_freq=20,
            horizon=10_000,  # we enforce max_steps ourselves
            ignore_done=True,
            hard_reset=False,
            seed=seed,
            **dict(self.task.env_kwargs),
        )
        from sim_eval.factors import FactorSet

        self.factors = FactorSet(factors)
        self.factors.prepare(self)  # may recompile the scene once (e.g. to add distractors)
        self._setup_renderer()
        self.instruction = self.task.instruction
        self._obs: dict[str, np.ndarray] = {}
        self._t = 0

    def _setup_renderer(self) -> None:
        """Offscreen buffer of the image size, no multisampling, no reflections: ~3x faster on CPU GL."""
        import mujoco

        model = self.sim.model
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth = model.vis.global_.offheight = self.image_size
        ctx = self.sim._render_context_offscreen
        ctx.con.free()
        ctx._set_mujoco_context_and_buffers()
        ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self.renders = 0

    # -- episode ------------------------------------------------------------------------------
    @property
    def sim(self):
        return self.env.sim

    @property
    def model(self):
        return self.env.sim.model

    def cam_id(self, camera: str) -> int:
        return self.sim.model.camera_name2id(_CAMERA_MAP[camera])

    def reset(self, seed: int, render: bool = True) -> Observation:
        """Start the episode fully determined by ``seed`` (and the factors' own seeds)."""
        self.factors.before_reset(self, seed)  # a randomized object size may recompile the scene
        self.env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        self._obs = self.env.reset()
        self._set_instruction(seed)
        self.factors.apply(self, seed)
        self.sim.forward()
        self._obs = self.env._get_observations(force_update=True)
        self._t = 0
        return self.observe(render=render)

    def _set_instruction(self, seed: int) -> None:
        """The canonical instruction; a grounded task's names the object the seed draws."""
        from sim_eval.language import draw_target, say

        self.achieved = None
        self.scene_target = draw_target(self.task, seed) if self.task.grounded else None
        self.target = self.scene_target
        self.instruction = say(self.task.instruction, self.target)

    @property
    def target(self) -> str | None:
        """The object the instruction names (grounded tasks; success means this one), else None."""
        return self._target

    @target.setter
    def target(self, name: str | None) -> None:
        if self.task.grounded and name not in self.task.targets:
            raise ValueError(f"{self.task.name}: target {name!r} is not in the scene (its objects: "
                             f"{', '.join(self.task.targets)})")
        self._target = name
        if name is not None:
            self.env.target = name

    def step(self, action: np.ndarray) -> tuple[bool, bool]:
        """Apply one 7-D action; return (done, success). ``done`` = success or step limit; on a grounded task
        also the first object achieved (lifted / placed): a success only if it is the target."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (7,) or not np.all(np.isfinite(a)):
            raise ValueError(f"{self.task.name}: action must be 7 finite floats, got shape {a.shape}: {a}")
        self._obs, _, _, _ = self.env.step(np.clip(a, -1.0, 1.0))
        self._t += 1
        if self.task.grounded:
            done = self._t >= self.max_steps
            if self.achieved is None:
                first = self.env.achieved()
                if first:
                    self.achieved = self.target if self.target in first else first[0]
            return done or self.achieved is not None, self.achieved == self.target
        success = self.success()
        return success or self._t >= self.max_steps, success

    def success(self) -> bool:
        if self.task.grounded:
            return self.achieved is not None and self.achieved == self.target
        return bool(self.env._check_success())

    def language_outcome(self) -> dict:
        """The episode's instruction and, on grounded tasks, its target, the seed's target and what was achieved."""
        if not self.task.grounded:
            return {"instruction": self.instruction}
        return {"instruction": self.instruction, "target": self.target, "scene_target": self.scene_target,
                "achieved": self.achieved}

    @property
    def t(self) -> int:
        return self._t

    # -- observations -------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        o = self._obs
        return np.concatenate([o["robot0_eef_pos"], o["robot0_eef_quat"], o["robot0_gripper_qpos"]]).astype(np.float32)

    def render(self, camera: str, size: int | None = None) -> np.ndarray:
        """Upright uint8[H, W, 3] image of one embodiment camera (size at most the image size)."""
        s = min(size or self.image_size, self.image_size)
        self.renders += 1
        img = self.sim.render(width=s, height=s, camera_name=_CAMERA_MAP[camera])
        return np.ascontiguousarray(img[::-1])

    def observe(self, render: bool = True) -> Observation:
        images = {c: self.render(c) for c in self.cameras} if render else {}
        return {"images": images, "state": self.state(), "prompt": self.instruction}

    def raw(self) -> dict[str, np.ndarray]:
        """Privileged simulator observations (object poses) for scripted experts."""
        return self._obs

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a half-built renderer must not mask the real error
            self.env.close()


def make_env(task: str, image_size: int = 96, cameras: Sequence[str] | None = None, factors: Sequence[Any] = (),
             seed: int = 0):
    """Build the env for a task name (robosuite or Meta-World)."""
    info = task_info(task)
    if info.suite == "robosuite":
        return RobosuiteEnv(task, image_size=image_size, cameras=cameras, factors=factors, seed=seed)
    from sim_eval.metaworld_env import MetaWorldEnv

    return MetaWorldEnv(task, image_size=image_size, cameras=cameras, factors=factors, seed=seed)
