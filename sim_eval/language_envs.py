"""robosuite environments of the instruction-grounded tasks (importing this module registers them).

- ``LiftColor``: three cubes (red, green, blue) at random, well-separated table positions and yaws;
  ``target`` names the one to lift. An object counts as *achieved* once its centre is 8 cm above the table
  top (a cube resting on another is 6 cm up, so stacking is not lifting).
- ``PickPlaceOne``: robosuite's PickPlace scene with all four objects (milk, bread, cereal, can) in the
  left bin; ``target`` names the one that must reach its own quadrant of the right bin; an object is
  achieved when robosuite's own check puts it in its bin.

Both expose ``achieved()`` (the objects achieved now, in a fixed order) so the wrapper can tell a success
from a wrong object; ``_check_success`` is true when the target is achieved.
"""

from __future__ import annotations

import numpy as np
from robosuite.environments.manipulation.lift import Lift
from robosuite.environments.manipulation.pick_place import PickPlace
from robosuite.models.arenas import TableArena
from robosuite.models.objects import BoxObject
from robosuite.models.tasks import ManipulationTask
from robosuite.utils.observables import Observable, sensor
from robosuite.utils.transform_utils import convert_quat

CUBE_COLORS = {"red": (0.85, 0.1, 0.1, 1.0), "green": (0.1, 0.7, 0.15, 1.0), "blue": (0.1, 0.25, 0.9, 1.0)}
CUBE_HALF = 0.021
LIFTED_DZ = 0.08  # object centre above the table top that counts as lifted
MIN_GAP = 0.10  # centre distance between cubes: the open gripper fits between them
X_RANGE, Y_RANGE = 0.09, 0.15  # half-ranges of cube centres around the table centre


class LiftColor(Lift):
    """Lift with three coloured cubes; success = the ``target`` colour lifted."""

    def __init__(self, *args, target: str = "red", **kwargs):
        self.target = target
        super().__init__(*args, **kwargs)

    def _load_model(self):
        super(Lift, self)._load_model()
        xpos = self.robots[0].robot_model.base_xpos_offset["table"](self.table_full_size[0])
        self.robots[0].robot_model.set_base_xpos(xpos)
        arena = TableArena(table_full_size=self.table_full_size, table_friction=self.table_friction,
                           table_offset=self.table_offset)
        arena.set_origin([0, 0, 0])
        self.cubes = {c: BoxObject(name=f"cube_{c}", size=[CUBE_HALF] * 3, rgba=list(rgba), rng=self.rng)
                      for c, rgba in CUBE_COLORS.items()}
        self.model = ManipulationTask(mujoco_arena=arena, mujoco_robots=[r.robot_model for r in self.robots],
                                      mujoco_objects=list(self.cubes.values()))

    def _setup_references(self):
        super(Lift, self)._setup_references()
        self.cube_body_ids = {c: self.sim.model.body_name2id(o.root_body) for c, o in self.cubes.items()}

    def _setup_observables(self):
        observables = super(Lift, self)._setup_observables()
        for c in self.cubes:
            for name, s in _cube_sensors(self, c):
                observables[name] = Observable(name=name, sensor=s, sampling_rate=self.control_freq)
        return observables

    def _reset_internal(self):
        super(Lift, self)._reset_internal()
        if self.deterministic_reset:
            return
        placed: list[np.ndarray] = []
        for obj in self.cubes.values():
            for _ in range(1000):
                xy = self.table_offset[:2] + self.rng.uniform([-X_RANGE, -Y_RANGE], [X_RANGE, Y_RANGE])
                if all(np.linalg.norm(xy - p) >= MIN_GAP for p in placed):
                    break
            placed.append(xy)
            yaw = self.rng.uniform(0, 2 * np.pi)
            quat = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])  # wxyz
            pos = np.array([xy[0], xy[1], self.table_offset[2] + CUBE_HALF + 0.001])
            self.sim.data.set_joint_qpos(obj.joints[0], np.concatenate([pos, quat]))

    def achieved(self) -> list[str]:
        top = self.table_offset[2]
        return [c for c, b in self.cube_body_ids.items() if self.sim.data.body_xpos[b][2] > top + LIFTED_DZ]

    def _check_success(self):
        return self.target in self.achieved()

    def reward(self, action=None):
        return float(self._check_success())

    def visualize(self, vis_settings):
        super(Lift, self).visualize(vis_settings=vis_settings)


def _cube_sensors(env: LiftColor, color: str):
    bid = env.cube_body_ids[color]

    @sensor(modality="object")
    def pos(obs_cache):
        return np.array(env.sim.data.body_xpos[bid])

    @sensor(modality="object")
    def quat(obs_cache):
        return convert_quat(np.array(env.sim.data.body_xquat[bid]), to="xyzw")

    return [(f"cube_{color}_pos", pos), (f"cube_{color}_quat", quat)]


class PickPlaceOne(PickPlace):
    """PickPlace with all four objects; success = the ``target`` object in its quadrant of the right bin."""

    def __init__(self, *args, target: str = "can", **kwargs):
        self.target = target
        kwargs.setdefault("single_object_mode", 0)
        super().__init__(*args, **kwargs)

    def achieved(self) -> list[str]:
        super()._check_success()  # updates objects_in_bins
        return [o.name.lower() for o, ok in zip(self.objects, self.objects_in_bins) if ok]

    def _check_success(self):
        return self.target in self.achieved()
