"""Scripted experts: state machines on privileged simulator state, behind the ``Policy`` interface.

An expert is attached to the env it controls (``expert.attach(env)``) and reads object poses from
``env.raw()``; the observation it is given is only used for the robot state. ``predict`` returns a
chunk of ``chunk`` actions: the first is the closed-loop action, the rest are an open-loop plan
that assumes the arm tracks its target (so ``chunk=1`` is fully closed-loop).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vla.types import ActionChunk, EmbodimentSpec, Observation, PolicyMetadata

OPEN, CLOSE = -1.0, 1.0
_POS_SCALE = 0.05  # metres per unit of OSC_POSE position action
_ROT_SCALE = 0.5  # radians per unit of OSC_POSE rotation action


def _tu():
    """robosuite's rotation helpers (quaternions xyzw, as robosuite observations are); imported when a
    robosuite expert runs, so Meta-World workers never import robosuite."""
    from robosuite.utils import transform_utils

    return transform_utils


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _axis_angle(r: np.ndarray) -> np.ndarray:
    """Rotation matrix -> axis * angle (angle in [0, pi])."""
    tu = _tu()
    return tu.quat2axisangle(tu.mat2quat(r)).astype(np.float64)


def _yaw(q: np.ndarray) -> float:
    """Heading of an xyzw quaternion about the world z axis."""
    return _yaw_of(_tu().quat2mat(np.asarray(q)))


def _wrap(a: float, period: float) -> float:
    """Wrap an angle to [-period/2, period/2)."""
    return (a + period / 2.0) % period - period / 2.0


class ScriptedExpert:
    """Base class: phase machine emitting (target position, target yaw, gripper) per step."""

    task = ""

    def __init__(self, spec: EmbodimentSpec, chunk: int = 1, gain: float = 12.0, uses_images: bool = False):
        self.spec = spec
        self.chunk = int(chunk)
        self.gain = gain
        self.env = None
        self._meta = PolicyMetadata(
            embodiments={spec.name: spec},
            default_embodiment=spec.name,
            action_horizon=self.chunk,
            model=f"scripted-expert:{self.task}",
            extra={"uses_images": uses_images, "scripted": True},  # True: make rollouts render as for a VLA
        )
        self.reset()

    # -- Policy interface ----------------------------------------------------------------------
    @property
    def metadata(self) -> PolicyMetadata:
        return self._meta

    def attach(self, env) -> ScriptedExpert:
        self.env = env
        self.reset()
        return self

    def reset(self) -> None:
        self.phase = 0
        self.counter = 0
        self.memo: dict = {}
        self._base_rot = None

    def predict(
        self,
        observations: list[Observation],
        *,
        embodiment: str | None = None,
        seed: int | Sequence[int] | None = None,
    ) -> list[ActionChunk]:
        if self.env is None:
            raise RuntimeError(f"{type(self).__name__}: attach(env) before predict (experts read privileged state)")
        if len(observations) != 1:
            raise ValueError(f"{type(self).__name__}: a scripted expert controls one env; "
                             f"got {len(observations)} observations")
        raw = self.env.raw()
        eef = np.asarray(raw["robot0_eef_pos"], dtype=np.float64)
        quat = np.asarray(raw["robot0_eef_quat"], dtype=np.float64)
        if self._base_rot is None:
            self._base_rot = _tu().quat2mat(quat)
        target, yaw, grip = self.plan(raw, eef)
        actions = []
        pos = eef.copy()
        rot = _tu().quat2mat(quat)
        for _ in range(self.chunk):
            a = np.zeros(7, dtype=np.float32)
            dpos = np.clip(self.gain * (target - pos), -1.0, 1.0)
            want = _rot_z(yaw) @ self._base_rot
            drot = np.clip(3.0 * _axis_angle(want @ rot.T) / _ROT_SCALE * 0.5, -1.0, 1.0)
            a[:3], a[3:6], a[6] = dpos, drot, grip
            actions.append(a)
            # open-loop prediction of where the arm goes (assumes ~60 % tracking per step)
            pos = pos + 0.6 * dpos * _POS_SCALE
            rot = _tu().quat2mat(_tu().axisangle2quat(0.6 * _ROT_SCALE * drot)) @ rot
        self.counter += self.chunk  # phase timers count control steps
        return [np.stack(actions)]

    # -- helpers for subclasses ----------------------------------------------------------------
    def plan(self, raw: dict, eef: np.ndarray) -> tuple[np.ndarray, float, float]:
        raise NotImplementedError

    def _next(self) -> None:
        self.phase += 1
        self.counter = 0

    @staticmethod
    def _near(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
        return bool(np.linalg.norm(np.asarray(a) - np.asarray(b)) < tol)

    def _grasp_yaw(self, obj_quat: np.ndarray, symmetry: float) -> float:
        """Yaw offset (from the start pose) that aligns the fingers with a face of a symmetric object."""
        if symmetry <= 0:
            return 0.0
        return _wrap(_yaw(obj_quat) - _yaw_of(self._base_rot), symmetry)


def _yaw_of(m: np.ndarray) -> float:
    return float(np.arctan2(m[1, 0], m[0, 0]))


class _PickExpert(ScriptedExpert):
    """Shared pick phases: above -> down -> close -> lift; subclasses add the place phases."""

    obj_key = "cube"
    symmetry = np.pi / 2
    avoid_key = ""  # another object the open fingers must not land on ...
    avoid_within = np.inf  # ... when it is this close (m); farther away the grasp yaw depends on the object alone
    grasp_dz = 0.0
    release_phase = 99  # phases >= this have let go on purpose

    def _choose_yaw(self, raw: dict, obj: np.ndarray) -> float:
        yaw = self._grasp_yaw(np.asarray(raw[f"{self.obj_key}_quat"]), self.symmetry)
        if not self.avoid_key or self.symmetry <= 0:
            return yaw
        away = np.asarray(raw[f"{self.avoid_key}_pos"])[:2] - obj[:2]
        gap = np.linalg.norm(away)
        if gap > self.avoid_within:  # too far for a finger to touch it: the canonical yaw
            return yaw
        away = away / (gap + 1e-9)
        base = _yaw_of(self._base_rot)
        best = min(
            (yaw, _wrap(yaw + self.symmetry, np.pi)),  # the fingers are symmetric under a half turn
            key=lambda y: abs(np.dot([-np.sin(base + y), np.cos(base + y)], away)) + 0.1 * abs(y),
        )
        return float(best)

    def _pick(self, raw: dict, eef: np.ndarray):
        obj = np.asarray(raw[f"{self.obj_key}_pos"])
        if "yaw" not in self.memo:
            self.memo["yaw"] = self._choose_yaw(raw, obj)
        yaw = self.memo["yaw"]
        slipped = self.phase >= 3 and self.phase < self.release_phase and np.linalg.norm(obj - eef) > 0.05
        if slipped and self.memo.get("retries", 0) < 3:  # the object slipped out of the hand: start over
            self.memo = {"retries": self.memo.get("retries", 0) + 1}
            self.phase, self.counter = 0, 0
            return self._pick(raw, eef)
        above = obj + np.array([0, 0, 0.10])
        grasp = obj + np.array([0, 0, self.grasp_dz])
        if self.phase == 0:  # move above the object, open, align yaw
            if self._near(eef[:2], above[:2], 0.008) and abs(eef[2] - above[2]) < 0.03 and self.counter > 5:
                self._next()
            return above, yaw, OPEN
        if self.phase == 1:  # descend
            if self._near(eef, grasp, 0.008) or self.counter > 60:
                self._next()
            return grasp, yaw, OPEN
        if self.phase == 2:  # close
            if self.counter > 8:
                self._next()
                self.memo["lift_from"] = obj.copy()
            return grasp, yaw, CLOSE
        return None


class LiftExpert(_PickExpert):
    task = "Lift"

    def plan(self, raw, eef):
        out = self._pick(raw, eef)
        if out is not None:
            return out
        return self.memo["lift_from"] + np.array([0, 0, 0.2]), self.memo["yaw"], CLOSE


class StackExpert(_PickExpert):
    task = "Stack"
    obj_key = "cubeA"
    avoid_key = "cubeB"
    # An open finger reaches ~4 cm from the grasp centre; cube B (5 cm wide, >= 6.4 cm away) is only in the
    # way when its centre is within ~7.5 cm (measured: the expert without this rule failed only there).
    # Farther away the yaw is cube A's alone, so the demos' wrist rotation does not hinge on where cube B
    # happens to lie (a discontinuous rule a policy learns slowly from 50 demos).
    avoid_within = 0.075
    release_phase = 6

    def plan(self, raw, eef):
        out = self._pick(raw, eef)
        if out is not None:
            return out
        yaw = self.memo["yaw"]
        cube_b = np.asarray(raw["cubeB_pos"])
        cube_a = np.asarray(raw["cubeA_pos"])
        offset = eef - cube_a  # keep the grasp offset when placing
        high = cube_b + np.array([0, 0, 0.12]) + offset
        place = cube_b + np.array([0, 0, 0.052]) + offset
        if self.phase == 3:  # lift
            target = np.array([eef[0], eef[1], cube_b[2] + 0.12 + offset[2]])
            if eef[2] > target[2] - 0.02:
                self._next()
            return target, yaw, CLOSE
        if self.phase == 4:  # carry above cube B
            if self._near(cube_a[:2], cube_b[:2], 0.006) and self.counter > 5:
                self._next()
            return high, yaw, CLOSE
        if self.phase == 5:  # lower onto cube B
            if cube_a[2] - cube_b[2] < 0.056 or self.counter > 60:
                self._next()
            return place, yaw, CLOSE
        if self.phase == 6:  # release
            if self.counter > 8:
                self._next()
            return eef, yaw, OPEN
        return eef + np.array([0, 0, 0.05]), yaw, OPEN


class PickPlaceCanExpert(_PickExpert):
    task = "PickPlaceCan"
    obj_key = "Can"
    symmetry = 0.0  # round: any yaw
    grasp_dz = 0.01
    release_phase = 6

    def plan(self, raw, eef):
        out = self._pick(raw, eef)
        if out is not None:
            return out
        env = self.env.env
        goal = self._goal()
        can = np.asarray(raw[f"{self.obj_key}_pos"])
        carry_z = env.bin2_pos[2] + 0.22
        if self.phase == 3:  # lift straight up
            target = np.array([eef[0], eef[1], carry_z])
            if eef[2] > carry_z - 0.03:
                self._next()
            return target, self.memo["yaw"], CLOSE
        if self.phase == 4:  # carry over the goal bin
            target = np.array([goal[0], goal[1], carry_z])
            if self._near(can[:2], goal[:2], 0.02) and self.counter > 5:
                self._next()
            return target, self.memo["yaw"], CLOSE
        if self.phase == 5:  # lower a bit
            target = np.array([goal[0], goal[1], env.bin2_pos[2] + 0.15])
            if eef[2] < target[2] + 0.02 or self.counter > 40:
                self._next()
            return target, self.memo["yaw"], CLOSE
        if self.phase == 6:  # release
            if self.counter > 10:
                self._next()
            return eef, self.memo["yaw"], OPEN
        return np.array([goal[0], goal[1], carry_z + 0.05]), self.memo["yaw"], OPEN

    def _goal(self) -> np.ndarray:
        # inside the can's quadrant of the goal bin, on the side nearest the robot (the far corner is at
        # the edge of the Panda's reach)
        env = self.env.env
        return np.array([env.bin2_pos[0] + 0.04, env.bin2_pos[1] + 0.04, env.bin2_pos[2]])


class LiftColorExpert(LiftExpert):
    """Lift the cube the instruction names (``env.target``), fingers turned away from the nearest other cube."""

    task = "LiftColor"

    def plan(self, raw, eef):
        if "key" not in self.memo:
            target = self.env.target
            others = [c for c in self.env.task.targets if c != target]
            pos = np.asarray(raw[f"cube_{target}_pos"])
            nearest = min(others, key=lambda c: np.linalg.norm(np.asarray(raw[f"cube_{c}_pos"])[:2] - pos[:2]))
            self.memo.update(key=f"cube_{target}", avoid=f"cube_{nearest}")
        self.obj_key, self.avoid_key = self.memo["key"], self.memo["avoid"]
        return super().plan(raw, eef)

    def _pick(self, raw, eef):
        keys = {k: self.memo[k] for k in ("key", "avoid")}
        out = super()._pick(raw, eef)
        self.memo.update(keys)  # a retry after a slip clears the memo
        return out


class PickPlaceOneExpert(PickPlaceCanExpert):
    """Carry the object the instruction names (``env.target``) to its quadrant of the right bin.

    Measured on seeds 0-11 (3 per object): can 3/3, milk 2/3, bread 2/3, cereal 0/3 (the tall, light box
    slips out of the grasp while carried); ``vla collect`` keeps only successful demos."""

    task = "PickPlaceOne"
    _SYMMETRY = {"can": 0.0, "milk": np.pi / 2, "bread": np.pi, "cereal": np.pi}
    _GRASP_DZ = {"can": 0.01, "milk": 0.03, "bread": 0.0, "cereal": 0.03}

    def plan(self, raw, eef):
        target = self.env.target
        self.obj_key = target.capitalize()
        self.symmetry, self.grasp_dz = self._SYMMETRY[target], self._GRASP_DZ[target]
        return super().plan(raw, eef)

    def _goal(self) -> np.ndarray:
        """Between the bin centre and the object's quadrant centre (the far corners are at the edge of reach)."""
        env = self.env.env
        quadrant = np.asarray(env.target_bin_placements[env.object_to_id[self.env.target]])
        return env.bin2_pos + 0.45 * (quadrant - env.bin2_pos)


class DoorExpert(ScriptedExpert):
    """Press the lever handle down to unlatch, then pull the door open by the lever (pressing it while
    it is not yet hanging, hooking it from behind once it hangs).

    Targets are kept in the door's frame (relative to the latch), so they follow the swinging panel.
    """

    task = "Door"
    behind = -0.035  # y offset from the lever tip: fingers overlap the lever's door-side edge

    def _retry(self) -> None:
        retries = self.memo.get("retries", 0)
        if retries >= 3:
            self._next()
            return
        self.memo["retries"] = retries + 1
        self.phase, self.counter = -1, 0

    def _local(self, world_offset, rot):
        return rot.T @ np.asarray(world_offset, dtype=np.float64)

    def plan(self, raw, eef):
        env = self.env.env
        model, data = env.sim.model, env.sim.data
        rot = data.body_xmat[model.body_name2id(env.door.door_body)].reshape(3, 3)
        latch = data.body_xpos[model.body_name2id(env.door.latch_body)].copy()
        handle_q = abs(float(np.asarray(raw.get("handle_qpos", [2.0])).reshape(-1)[0]))
        if "tip" not in self.memo:  # door closed: world offsets -> door-frame offsets
            tip = np.asarray(raw["handle_pos"], dtype=np.float64) - latch
            self.memo["tip"] = self._local(tip + [0.0, self.behind, 0.0], rot)
            self.memo["behind"] = self._local([0.0, self.behind, 0.0], rot)
            self.memo["hook"] = self._local([-0.03, tip[1] + self.behind - 0.005, -0.09], rot)
        press = latch + rot @ self.memo["tip"]
        normal = -rot[:, 1]  # panel normal toward the robot
        yaw = -np.pi / 2  # the hand's narrow side faces the door
        if self.phase == -1:  # back off toward the robot before pressing again
            if self.counter > 12:
                self._next()
            return press + normal * 0.08 + np.array([0.0, 0.0, 0.02 * self.counter]), yaw, CLOSE
        if self.phase == 0:  # above the lever tip
            target = press + np.array([0.0, 0.0, 0.08])
            if self._near(eef, target, 0.012) and self.counter > 3:
                self._next()
            return target, yaw, CLOSE
        if self.phase == 1:  # press the lever down until it hangs
            if handle_q > 1.45:
                self._next()
            elif self.counter > 40:
                self._retry()
            tip_now = np.asarray(raw["handle_pos"], dtype=np.float64) + rot @ self.memo["behind"]
            return tip_now + np.array([0.0, 0.0, -0.06]), yaw, CLOSE
        hinge_q = float(np.asarray(raw["hinge_qpos"]).reshape(-1)[0])
        if self.counter > 15 and hinge_q < 0.05 and handle_q < 1.3:  # lever sprang back: press again
            self._retry()
        if handle_q > 1.45:  # lever hangs free: hook it from behind and pull
            return latch + rot @ self.memo["hook"] + normal * 0.08, yaw, CLOSE
        tip_now = np.asarray(raw["handle_pos"], dtype=np.float64) + rot @ self.memo["behind"]
        return tip_now + np.array([0.0, 0.0, -0.04]) + normal * 0.08, yaw, CLOSE  # keep pressing, pull open


EXPERTS = {"Lift": LiftExpert, "Stack": StackExpert, "PickPlaceCan": PickPlaceCanExpert, "Door": DoorExpert,
           "LiftColor": LiftColorExpert, "PickPlaceOne": PickPlaceOneExpert}


def make_expert(task: str, spec: EmbodimentSpec | None = None, chunk: int = 1, env=None, uses_images: bool = False):
    """The scripted expert for a task (robosuite state machines or Meta-World's own policies)."""
    if task in EXPERTS:
        from sim_eval.tasks import robosuite_panda_spec

        expert = EXPERTS[task](spec or robosuite_panda_spec(), chunk=chunk, uses_images=uses_images)
    else:
        from sim_eval.metaworld_env import MetaWorldExpert

        expert = MetaWorldExpert(task, spec=spec, chunk=chunk)
    if env is not None:
        expert.attach(env)
    return expert
