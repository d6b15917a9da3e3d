"""Meta-World MT10 behind the same interface as the robosuite envs, with Meta-World's own experts.

One instruction per task makes MT10 a language-conditioned multi-task suite. An episode seed picks
one of the task's 50 MT10 variations (object/goal placements) and seeds the reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sim_eval.gl import gl_guard
from sim_eval.tasks import METAWORLD_TASKS, metaworld_spec  # noqa: F401 - re-exported
from vla.types import ActionChunk, EmbodimentSpec, Observation, PolicyMetadata

_CAMERA_MAP = {"agentview": "corner2", "wrist": "gripperPOV"}
_POLICY_CLASS = {
    "reach-v3": "SawyerReachV3Policy", "push-v3": "SawyerPushV3Policy", "pick-place-v3": "SawyerPickPlaceV3Policy",
    "door-open-v3": "SawyerDoorOpenV3Policy", "drawer-open-v3": "SawyerDrawerOpenV3Policy",
    "drawer-close-v3": "SawyerDrawerCloseV3Policy", "button-press-topdown-v3": "SawyerButtonPressTopdownV3Policy",
    "peg-insert-side-v3": "SawyerPegInsertionSideV3Policy", "window-open-v3": "SawyerWindowOpenV3Policy",
    "window-close-v3": "SawyerWindowCloseV3Policy",
}


_MT10_BENCH = None


def _benchmark():
    global _MT10_BENCH
    if _MT10_BENCH is None:
        import metaworld

        _MT10_BENCH = metaworld.MT10(seed=0)
    return _MT10_BENCH


class MetaWorldEnv:
    """One MT10 task; ``reset(seed)`` picks variation ``seed % 50`` and seeds the env."""

    def __init__(self, task: str, image_size: int = 96, cameras: Sequence[str] | None = None,
                 factors: Sequence[Any] = (), seed: int = 0):
        if task not in METAWORLD_TASKS:
            raise ValueError(f"unknown Meta-World MT10 task {task!r}; choose from {sorted(METAWORLD_TASKS)}")
        gl_guard()
        bench = _benchmark()
        self.task = METAWORLD_TASKS[task]
        self.image_size = int(image_size)
        self.spec = metaworld_spec(self.image_size)
        self.cameras = tuple(cameras) if cameras is not None else self.spec.cameras
        self.max_steps = self.task.max_steps
        self.env = bench.train_classes[task]()
        self._variations = [t for t in bench.train_tasks if t.env_name == task]
        self.instruction = self.task.instruction
        self.renders = 0
        self._renderer = None
        self._t = 0
        self._raw = np.zeros(39)
        self._success = False
        from sim_eval.factors import FactorSet

        self.factors = FactorSet(factors)
        self.factors.prepare(self)

    @property
    def model(self):
        return self.env.model

    def cam_id(self, camera: str) -> int:
        import mujoco

        return mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, _CAMERA_MAP.get(camera, camera))

    def reset(self, seed: int, render: bool = True) -> Observation:
        self.env.set_task(self._variations[seed % len(self._variations)])
        self._raw, _ = self.env.reset(seed=int(seed))
        self.instruction = self.task.instruction
        self.factors.apply(self, seed)
        self._t, self._success = 0, False
        return self.observe(render)

    def step(self, action: np.ndarray) -> tuple[bool, bool]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (4,) or not np.all(np.isfinite(a)):
            raise ValueError(f"{self.task.name}: action must be 4 finite floats, got shape {a.shape}: {a}")
        self._raw, _, _, _, info = self.env.step(np.clip(a, -1.0, 1.0).astype(np.float32))
        self._t += 1
        self._success = self._success or bool(info.get("success", 0.0))
        return self._success or self._t >= self.max_steps, self._success

    def success(self) -> bool:
        return self._success

    @property
    def t(self) -> int:
        return self._t

    def state(self) -> np.ndarray:
        return np.asarray(self._raw[:4], dtype=np.float32)

    def render(self, camera: str, size: int | None = None) -> np.ndarray:
        import mujoco

        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
        self._renderer.update_scene(self.env.data, camera=self.cam_id(camera))
        self.renders += 1
        return np.ascontiguousarray(self._renderer.render()[::-1])  # OpenGL rows are bottom-up

    def observe(self, render: bool = True) -> Observation:
        images = {c: self.render(c) for c in self.cameras} if render else {}
        return {"images": images, "state": self.state(), "prompt": self.instruction}

    def raw(self) -> np.ndarray:
        return self._raw

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self.env.close()


class MetaWorldExpert:
    """Meta-World's scripted policy for a task behind the Policy interface."""

    def __init__(self, task: str, spec: EmbodimentSpec | None = None, chunk: int = 1):
        import metaworld.policies as mp

        self.task = task
        self.spec = spec or metaworld_spec()
        self.chunk = int(chunk)
        self._policy = getattr(mp, _POLICY_CLASS[task])()
        self.env = None
        self._meta = PolicyMetadata(embodiments={self.spec.name: self.spec}, default_embodiment=self.spec.name,
                                    action_horizon=self.chunk, model=f"metaworld-expert:{task}",
                                    extra={"uses_images": False, "scripted": True})

    @property
    def metadata(self) -> PolicyMetadata:
        return self._meta

    def attach(self, env) -> MetaWorldExpert:
        self.env = env
        return self

    def reset(self) -> None:
        pass

    def predict(self, observations, *, embodiment=None, seed=None) -> list[ActionChunk]:
        if self.env is None:
            raise RuntimeError("MetaWorldExpert: attach(env) before predict (it reads the full simulator state)")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.clip(np.asarray(self._policy.get_action(self.env.raw()), np.float32), -1, 1)
        return [np.repeat(a[None], self.chunk, axis=0)]
