"""Registry of Open X-Embodiment datasets: published feature specs, key mappings, embodiments.

Feature specs are transcribed from each dataset's TFDS catalog page
(``https://www.tensorflow.org/datasets/catalog/<name>``, "Feature structure") and checked against the
datasets' ``features.json`` (image encodings: jpeg where published as jpeg, else the TFDS default
png); the Octo/OpenVLA ``bridge_dataset`` layout from its ``features.json``. Standardized vocabulary:
cameras ``primary`` (third person), ``secondary``/``tertiary`` (more third-person views), ``wrist``; actions keep each
robot's own dims with the gripper made uniform (``[0, 1]``, 1 = open); state is the robot's own
proprioception (listed per entry).
"""

from __future__ import annotations

from data_pipelines.errors import UnknownDatasetError
from data_pipelines.rlds.features import image, scalar, steps, tensor, text
from data_pipelines.standardize import DatasetEntry, KeyMapping

_CATALOG = "https://www.tensorflow.org/datasets/catalog/"
_RLDS = {"is_first": scalar("bool"), "is_last": scalar("bool"), "is_terminal": scalar("bool"),
         "reward": scalar("float32")}
_NL = {"natural_language_embedding": tensor((512,)), "natural_language_instruction": tensor((), "string")}
_RT1_ACTION = {  # RT-1 style dict action (fractal, kuka)
    "base_displacement_vector": tensor((2,)),
    "base_displacement_vertical_rotation": tensor((1,)),
    "gripper_closedness_action": tensor((1,)),
    "rotation_delta": tensor((3,)),
    "terminate_episode": tensor((3,), "int32"),
    "world_vector": tensor((3,)),
}
_EEF7 = "eef_delta_pos3_rot3_gripper1"
_WV_RD = ("steps/action/world_vector", "steps/action/rotation_delta")

FEATURES: dict[str, dict] = {
    "fractal20220817_data": {"steps": steps({
        "action": _RT1_ACTION,
        "observation": {
            "base_pose_tool_reached": tensor((7,)), "gripper_closed": tensor((1,)),
            "gripper_closedness_commanded": tensor((1,)), "height_to_bottom": tensor((1,)),
            "image": image(256, 320, encoding="jpeg"), **_NL, "orientation_box": tensor((2, 3)),
            "orientation_start": tensor((4,)),
            "robot_orientation_positions_box": tensor((3, 3)), "rotation_delta_to_go": tensor((3,)),
            "src_rotation": tensor((4,)), "vector_to_go": tensor((3,)), "workspace_bounds": tensor((3, 3)),
        },
        **_RLDS})},
    "bridge": {"steps": steps({
        "action": {"open_gripper": scalar("bool"), "rotation_delta": tensor((3,)),
                   "terminate_episode": scalar("float32"), "world_vector": tensor((3,))},
        "observation": {"image": image(480, 640), **_NL, "state": tensor((7,))},
        **_RLDS})},
    "bridge_dataset": {  # Octo/OpenVLA re-export of BridgeData V2 (the layout of ../shared/data/bridge_dataset)
        "episode_metadata": {"episode_id": scalar("int32"), "file_path": text(), "has_image_0": scalar("bool"),
                             "has_image_1": scalar("bool"), "has_image_2": scalar("bool"),
                             "has_image_3": scalar("bool"), "has_language": scalar("bool")},
        "steps": steps({
            "action": tensor((7,)), "discount": scalar("float32"), "is_first": scalar("bool"),
            "is_last": scalar("bool"), "is_terminal": scalar("bool"), "language_embedding": tensor((512,)),
            "language_instruction": text(),
            "observation": {f"image_{i}": image(256, 256, encoding="jpeg") for i in range(4)} | {"state": tensor((7,))},
            "reward": scalar("float32")})},
    "taco_play": {"steps": steps({
        "action": {"actions": tensor((7,)), "rel_actions_gripper": tensor((7,)), "rel_actions_world": tensor((7,)),
                   "terminate_episode": scalar("float32")},
        "observation": {"depth_gripper": tensor((84, 84)), "depth_static": tensor((150, 200)), **_NL,
                        "rgb_gripper": image(84, 84), "rgb_static": image(150, 200), "robot_obs": tensor((15,)),
                        "structured_language_instruction": tensor((), "string")},
        **_RLDS})},
    "jaco_play": {"steps": steps({
        "action": {"gripper_closedness_action": tensor((1,)), "terminate_episode": tensor((3,), "int32"),
                   "world_vector": tensor((3,))},
        "observation": {"end_effector_cartesian_pos": tensor((7,)), "end_effector_cartesian_velocity": tensor((6,)),
                        "image": image(224, 224), "image_wrist": image(224, 224), "joint_pos": tensor((8,)), **_NL},
        **_RLDS})},
    "berkeley_cable_routing": {"steps": steps({
        "action": {"rotation_delta": tensor((3,)), "terminate_episode": scalar("float32"),
                   "world_vector": tensor((3,))},
        "observation": {"image": image(128, 128), **_NL, "robot_state": tensor((7,)), "top_image": image(128, 128),
                        "wrist225_image": image(128, 128), "wrist45_image": image(128, 128)},
        **_RLDS})},
    "roboturk": {"steps": steps({
        "action": {"gripper_closedness_action": tensor((1,)), "rotation_delta": tensor((3,)),
                   "terminate_episode": scalar("float32"), "world_vector": tensor((3,))},
        "observation": {"front_rgb": image(480, 640), **_NL},
        **_RLDS})},
    "viola": {"steps": steps({
        "action": {"gripper_closedness_action": scalar("float32"), "rotation_delta": tensor((3,)),
                   "terminate_episode": scalar("float32"), "world_vector": tensor((3,))},
        "observation": {"agentview_rgb": image(224, 224), "ee_states": tensor((16,)),
                        "eye_in_hand_rgb": image(224, 224),
                        "gripper_states": tensor((1,)), "joint_states": tensor((7,)), **_NL},
        **_RLDS})},
    "berkeley_autolab_ur5": {"steps": steps({
        "action": {"gripper_closedness_action": scalar("float32"), "rotation_delta": tensor((3,)),
                   "terminate_episode": scalar("float32"), "world_vector": tensor((3,))},
        "observation": {"hand_image": image(480, 640), "image": image(480, 640),
                        "image_with_depth": image(480, 640, 1, dtype="float32"), **_NL, "robot_state": tensor((15,))},
        **_RLDS})},
    "toto": {"steps": steps({
        "action": {"open_gripper": scalar("bool"), "rotation_delta": tensor((3,)),
                   "terminate_episode": scalar("float32"),
                   "world_vector": tensor((3,))},
        "observation": {"image": image(480, 640), **_NL, "state": tensor((7,))},
        **_RLDS})},
    "kuka": {"success": scalar("bool"), "steps": steps({
        "action": _RT1_ACTION,
        "observation": {"clip_function_input": {"base_pose_tool_reached": tensor((7,)),
                                                "workspace_bounds": tensor((3, 3))},
                        "gripper_closed": tensor((1,)), "height_to_bottom": tensor((1,)),
                        "image": image(512, 640, encoding="jpeg"),
                        **_NL, "task_id": tensor((1,))},
        **_RLDS})},
    "language_table": {"steps": steps({
        "action": tensor((2,)),
        "observation": {"effector_target_translation": tensor((2,)), "effector_translation": tensor((2,)),
                        "instruction": tensor((512,), "int32"), "rgb": image(360, 640, encoding="jpeg")},
        **_RLDS})},
    "stanford_hydra_dataset_converted_externally_to_rlds": {
        "episode_metadata": {"file_path": text()},
        "steps": steps({
            "action": tensor((7,)), "discount": scalar("float32"), "is_dense": scalar("bool"),
            "is_first": scalar("bool"),
            "is_last": scalar("bool"), "is_terminal": scalar("bool"), "language_embedding": tensor((512,)),
            "language_instruction": text(),
            "observation": {"image": image(240, 320, encoding="png"), "state": tensor((27,)),
                            "wrist_image": image(240, 320, encoding="png")},
            "reward": scalar("float32")})},
}

_NLI = "steps/observation/natural_language_instruction"
MAPPINGS: dict[str, KeyMapping] = {
    "fractal20220817_data": KeyMapping(
        name="rt1_everyday_robot", cameras={"primary": "steps/observation/image"},
        action=(*_WV_RD, "steps/action/gripper_closedness_action"), gripper_dims=(6,),
        gripper_convention="relative_close_pm1", instruction=_NLI, action_space=_EEF7,
        state=("steps/observation/base_pose_tool_reached", "steps/observation/gripper_closed"),
        state_space="eef_pos3_quat4_gripper_closed1", control_hz=3.0, execute_horizon=2),
    "bridge": KeyMapping(
        name="widowx_bridge", cameras={"primary": "steps/observation/image"},
        action=(*_WV_RD, "steps/action/open_gripper"), gripper_dims=(6,), gripper_convention="open_bool",
        instruction=_NLI, action_space=_EEF7, state=("steps/observation/state",),
        state_space="eef_pos3_rpy3_gripper1", control_hz=5.0),
    "bridge_dataset": KeyMapping(
        name="widowx_bridge", cameras={"primary": "steps/observation/image_0", "secondary": "steps/observation/image_1",
                                       "tertiary": "steps/observation/image_2", "wrist": "steps/observation/image_3"},
        action=("steps/action",), gripper_dims=(6,), gripper_convention="open_1", action_space=_EEF7,
        state=("steps/observation/state",), state_space="eef_pos3_rpy3_gripper1", control_hz=5.0),
    "taco_play": KeyMapping(
        name="franka_taco", cameras={"primary": "steps/observation/rgb_static",
                                     "wrist": "steps/observation/rgb_gripper"},
        action=("steps/action/rel_actions_world",), gripper_dims=(6,), gripper_convention="open_pm1", instruction=_NLI,
        action_space=_EEF7, state=("steps/observation/robot_obs[0:7]",), state_space="eef_pos3_euler3_gripper_width1",
        control_hz=15.0),
    "jaco_play": KeyMapping(
        name="jaco2", cameras={"primary": "steps/observation/image", "wrist": "steps/observation/image_wrist"},
        action=("steps/action/world_vector", "steps/action/gripper_closedness_action"), gripper_dims=(3,),
        gripper_convention="relative_close_pm1", instruction=_NLI, action_space="eef_delta_pos3_gripper1",
        state=("steps/observation/end_effector_cartesian_pos",), state_space="eef_pos3_quat4", control_hz=10.0),
    "berkeley_cable_routing": KeyMapping(
        name="franka_cable_routing",
        cameras={"primary": "steps/observation/image", "secondary": "steps/observation/top_image",
                 "wrist": "steps/observation/wrist45_image", "wrist_225": "steps/observation/wrist225_image"},
        action=_WV_RD, instruction=_NLI, action_space="eef_vel_pos3_rot3", state=("steps/observation/robot_state",),
        state_space="robot_state7", control_hz=10.0),
    "roboturk": KeyMapping(
        name="sawyer_roboturk", cameras={"primary": "steps/observation/front_rgb"},
        action=(*_WV_RD, "steps/action/gripper_closedness_action"), gripper_dims=(6,), gripper_convention="close_pm1",
        instruction=_NLI, action_space=_EEF7, state=(), control_hz=10.0),
    "viola": KeyMapping(
        name="franka_viola", cameras={"primary": "steps/observation/agentview_rgb",
                                      "wrist": "steps/observation/eye_in_hand_rgb"},
        action=(*_WV_RD, "steps/action/gripper_closedness_action"), gripper_dims=(6,), gripper_convention="close_pm1",
        instruction=_NLI, action_space=_EEF7, state=("steps/observation/joint_states",
                                                     "steps/observation/gripper_states"),
        state_space="joint_pos7_gripper_width1", control_hz=20.0),
    "berkeley_autolab_ur5": KeyMapping(
        name="ur5_autolab", cameras={"primary": "steps/observation/image", "wrist": "steps/observation/hand_image"},
        action=(*_WV_RD, "steps/action/gripper_closedness_action"), gripper_dims=(6,),
        gripper_convention="relative_close_pm1", instruction=_NLI, action_space=_EEF7,
        state=("steps/observation/robot_state",), state_space="robot_state15", control_hz=5.0),
    "toto": KeyMapping(
        name="franka_toto", cameras={"primary": "steps/observation/image"},
        action=(*_WV_RD, "steps/action/open_gripper"), gripper_dims=(6,), gripper_convention="open_bool",
        instruction=_NLI, action_space=_EEF7, state=("steps/observation/state",), state_space="joint_pos7",
        control_hz=30.0),
    "kuka": KeyMapping(
        name="kuka_iiwa_qtopt", cameras={"primary": "steps/observation/image"},
        action=(*_WV_RD, "steps/action/gripper_closedness_action"), gripper_dims=(6,), gripper_convention="close_1",
        instruction=_NLI, action_space=_EEF7,
        state=("steps/observation/clip_function_input/base_pose_tool_reached", "steps/observation/gripper_closed"),
        state_space="eef_pos3_quat4_gripper_closed1", control_hz=10.0),
    "language_table": KeyMapping(
        name="xarm_language_table", cameras={"primary": "steps/observation/rgb"}, action=("steps/action",),
        instruction="steps/observation/instruction", instruction_encoding="utf8_codes", action_space="eef_delta_pos2",
        state=("steps/observation/effector_translation",), state_space="eef_pos2", control_hz=10.0),
    "stanford_hydra_dataset_converted_externally_to_rlds": KeyMapping(
        name="franka_hydra", cameras={"primary": "steps/observation/image", "wrist": "steps/observation/wrist_image"},
        action=("steps/action",), gripper_dims=(6,), gripper_convention="close_1", action_space=_EEF7,
        # state27 = [eef pos3, quat4, euler3, joints7, joint vel7, gripper3]
        state=("steps/observation/state[0:3]", "steps/observation/state[7:10]", "steps/observation/state[24:25]"),
        state_space="eef_pos3_euler3_gripper1", control_hz=10.0),
}

_ALIASES = {"rt1": "fractal20220817_data", "fractal": "fractal20220817_data", "bridge_v2": "bridge_dataset",
            "language_table_dataset": "language_table",
            "stanford_hydra": "stanford_hydra_dataset_converted_externally_to_rlds"}


def _dims(mapping: KeyMapping, feats: dict) -> tuple[int, int]:
    import numpy as np

    step = feats["steps"]["feature"]

    def width(key: str) -> int:
        from data_pipelines.standardize import _SLICE

        m = _SLICE.match(key)
        node = step
        for part in m["path"].split("/")[1:]:
            node = node[part]
        n = int(np.prod(node["shape"])) if node["shape"] else 1
        if m["lo"] is not None and (m["lo"] or m["hi"]):
            n = len(range(n)[slice(int(m["lo"]) if m["lo"] else None, int(m["hi"]) if m["hi"] else None)])
        return n

    return sum(width(k) for k in mapping.state), sum(width(k) for k in mapping.action)


def _entry(name: str) -> DatasetEntry:
    mapping, feats = MAPPINGS[name], FEATURES[name]
    s, a = _dims(mapping, feats)
    spec = mapping.embodiment(state_dim=s, action_dim=a)
    return DatasetEntry(name=name, features=feats, mapping=mapping, spec=spec,
                        aliases=tuple(k for k, v in _ALIASES.items() if v == name), source=_CATALOG + name)


REGISTRY: dict[str, DatasetEntry] = {n: _entry(n) for n in FEATURES}


def known_datasets() -> list[str]:
    return sorted(REGISTRY)


def get_entry(name: str) -> DatasetEntry:
    """The registry entry for a dataset name (or alias); raises listing the known names."""
    key = _ALIASES.get(name, name)
    if key not in REGISTRY:
        raise UnknownDatasetError(f"unknown dataset {name!r}; registered: {known_datasets()} "
                                  f"(aliases: {sorted(_ALIASES)}); for other data pass a key mapping file")
    return REGISTRY[key]
