"""Published TFDS feature specs of the Google / RT-X-format OXE datasets and the Octo/OpenVLA BridgeData V2 copy.

Transcribed from each dataset's TFDS catalog page, "Feature structure"
(``https://www.tensorflow.org/datasets/catalog/<name>``; ``tensorflow/datasets`` ``docs/catalog/<name>.md``) and
checked against the datasets' ``features.json`` (image encodings: jpeg where published as jpeg, else the TFDS
default png); ``bridge_dataset`` from the ``features.json`` of the Octo/OpenVLA re-export
(``../shared/data/bridge_dataset``).
"""

from __future__ import annotations

from data_pipelines.rlds.features import image, scalar, steps, tensor, text

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
    "bc_z": {"steps": steps({
        "action": {"future/axis_angle_residual": tensor((30,)), "future/target_close": tensor((10,), "int64"),
                   "future/xyz_residual": tensor((30,))},
        "observation": {"episode_success": scalar("float32"), "image": image(171, 213), **_NL,
                        "present/autonomous": scalar("int64"), "present/axis_angle": tensor((3,)),
                        "present/intervention": scalar("int64"), "present/sensed_close": tensor((1,)),
                        "present/xyz": tensor((3,)), "sequence_length": scalar("int64")},
        **_RLDS})},
}
