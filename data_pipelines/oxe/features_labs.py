"""Published TFDS feature specs of the lab-contributed OXE datasets (most named ``*_converted_externally_to_rlds``).

Transcribed from each dataset's TFDS catalog page, "Feature structure" (``tensorflow/datasets``
``docs/catalog/<name>.md``, i.e. ``https://www.tensorflow.org/datasets/catalog/<name>``), except
``furniture_bench_dataset_converted_externally_to_rlds`` and ``droid``, whose structures are the printed
``builder.info.features`` of the released directories (``droid``: its 100-episode sample, released as
``r2d2_faceblur``; their catalog pages were not available). Image encodings are the TFDS default (png)
where the catalog does not state one. Most of these share one RLDS template (:func:`_conv`).
"""

from __future__ import annotations

from data_pipelines.rlds.features import image, scalar, steps, tensor, text

_NL = {"natural_language_embedding": tensor((512,)), "natural_language_instruction": tensor((), "string")}
_RLDS = {"is_first": scalar("bool"), "is_last": scalar("bool"), "is_terminal": scalar("bool"),
         "reward": scalar("float32")}


def _conv(obs: dict, action: dict | None = None, *, scalars: str = "float32", meta: dict | None = None,
          extra: dict | None = None, instruction: dict | None = None) -> dict:
    """The converted-externally RLDS template: per-episode ``file_path``; per step action, discount, RLDS flags,
    language embedding + instruction, observation, reward (``extra`` adds step fields)."""
    return {
        "episode_metadata": {"file_path": text()} if meta is None else meta,
        "steps": steps({
            "action": action if action is not None else tensor((7,)), "discount": scalar(scalars),
            "is_first": scalar("bool"), "is_last": scalar("bool"), "is_terminal": scalar("bool"),
            "language_embedding": tensor((512,)), "language_instruction": instruction or text(),
            "observation": obs, "reward": scalar(scalars), **(extra or {})})}


FEATURES: dict[str, dict] = {
    "austin_buds_dataset_converted_externally_to_rlds": _conv(
        {"image": image(128, 128), "state": tensor((24,)), "wrist_image": image(128, 128)}),
    "austin_sailor_dataset_converted_externally_to_rlds": _conv(
        {"image": image(128, 128), "state": tensor((8,)), "state_ee": tensor((16,)), "state_gripper": tensor((1,)),
         "state_joint": tensor((7,)), "wrist_image": image(128, 128)}),
    "austin_sirius_dataset_converted_externally_to_rlds": _conv(
        {"image": image(84, 84), "state": tensor((8,)), "state_ee": tensor((16,)), "state_gripper": tensor((1,)),
         "state_joint": tensor((7,)), "wrist_image": image(84, 84)},
        extra={"action_mode": tensor((1,)), "intv_label": tensor((1,))}),
    "asu_table_top_converted_externally_to_rlds": _conv(
        {"image": image(224, 224), "state": tensor((7,)), "state_vel": tensor((7,))},
        extra={"action_delta": tensor((7,)), "action_inst": text(), "goal_object": text(),
               "ground_truth_states": {k: tensor((6,)) for k in ("EE", "bottle", "bread", "coke", "cube", "milk",
                                                                  "pepsi")}}),
    "berkeley_fanuc_manipulation": _conv(
        {"end_effector_state": tensor((7,)), "image": image(224, 224), "state": tensor((13,)),
         "wrist_image": image(224, 224)}, action=tensor((6,))),
    **{name: _conv({"image": image(*hw), "position": tensor((2,), "float64"), "state": tensor((3,), "float64"),
                    "yaw": tensor((1,), "float64")}, action=tensor((2,), "float64"), scalars="float64",
                   extra={"action_angle": tensor((3,), "float64")})
       for name, hw in (("berkeley_gnm_cory_hall", (64, 85)), ("berkeley_gnm_recon", (120, 160)),
                        ("berkeley_gnm_sac_son", (120, 160)))},
    "berkeley_mvp_converted_externally_to_rlds": _conv(
        {"gripper": scalar("bool"), "hand_image": image(480, 640), "joint_pos": tensor((7,)), "pose": tensor((7,))},
        action=tensor((8,))),
    "berkeley_rpt_converted_externally_to_rlds": _conv(
        {"gripper": scalar("bool"), "hand_image": image(480, 640), "joint_pos": tensor((7,))}, action=tensor((8,))),
    "cmu_franka_exploration_dataset_converted_externally_to_rlds": _conv(
        {"highres_image": image(480, 640), "image": image(64, 64)}, action=tensor((8,)),
        extra={"structured_action": tensor((8,))}),
    "cmu_play_fusion": _conv({"image": image(128, 128), "state": tensor((8,))}, action=tensor((9,))),
    "cmu_stretch": _conv({"image": image(128, 128), "state": tensor((4,))}, action=tensor((8,))),
    "columbia_cairlab_pusht_real": {"steps": steps({
        "action": {"gripper_closedness_action": scalar("float32"), "rotation_delta": tensor((3,)),
                   "terminate_episode": scalar("float32"), "world_vector": tensor((3,))},
        "observation": {"image": image(240, 320), **_NL, "robot_state": tensor((2,)), "wrist_image": image(240, 320)},
        **_RLDS})},
    "dlr_edan_shared_control_converted_externally_to_rlds": _conv({"image": image(360, 640), "state": tensor((7,))}),
    "dlr_sara_grid_clamp_converted_externally_to_rlds": _conv({"image": image(480, 640), "state": tensor((12,))}),
    "dlr_sara_pour_converted_externally_to_rlds": _conv({"image": image(480, 640), "state": tensor((6,))}),
    "iamlab_cmu_pickup_insert_converted_externally_to_rlds": _conv(
        {"image": image(360, 640), "state": tensor((20,)), "wrist_image": image(240, 320)}, action=tensor((8,))),
    "imperialcollege_sawyer_wrist_cam": _conv(
        {"image": image(64, 64), "state": tensor((1,)), "wrist_image": image(64, 64)}, action=tensor((8,))),
    "kaist_nonprehensile_converted_externally_to_rlds": _conv(
        {"image": image(480, 640), "partial_pointcloud": tensor((512, 3)), "state": tensor((21,))},
        action=tensor((20,))),
    "maniskill_dataset_converted_externally_to_rlds": _conv(
        {"base_pose": tensor((7,)), "depth": image(256, 256, 1, "uint16"), "image": image(256, 256),
         "main_camera_cam2world_gl": tensor((4, 4)), "main_camera_extrinsic_cv": tensor((4, 4)),
         "main_camera_intrinsic_cv": tensor((3, 3)), "state": tensor((18,)),
         "target_object_or_part_final_pose": tensor((7,)), "target_object_or_part_final_pose_valid":
             tensor((7,), "uint8"),
         "target_object_or_part_initial_pose": tensor((7,)),
         "target_object_or_part_initial_pose_valid": tensor((7,), "uint8"), "tcp_pose": tensor((7,)),
         "wrist_camera_cam2world_gl": tensor((4, 4)), "wrist_camera_extrinsic_cv": tensor((4, 4)),
         "wrist_camera_intrinsic_cv": tensor((3, 3)), "wrist_depth": image(256, 256, 1, "uint16"),
         "wrist_image": image(256, 256)},
        meta={"episode_id": text(), "file_path": text()}),
    "nyu_door_opening_surprising_effectiveness": {"steps": steps({
        "action": {"gripper_closedness_action": tensor((1,)), "rotation_delta": tensor((3,)),
                   "terminate_episode": scalar("float32"), "world_vector": tensor((3,))},
        "observation": {"image": image(720, 960), **_NL},
        **_RLDS})},
    "nyu_franka_play_dataset_converted_externally_to_rlds": _conv(
        {"depth": tensor((128, 128, 1), "int32"), "depth_additional_view": tensor((128, 128, 1), "int32"),
         "image": image(128, 128), "image_additional_view": image(128, 128), "state": tensor((13,))},
        action=tensor((15,))),
    "nyu_rot_dataset_converted_externally_to_rlds": _conv({"image": image(84, 84), "state": tensor((7,))}),
    "stanford_kuka_multimodal_dataset_converted_externally_to_rlds": _conv(
        {"contact": tensor((50,)), "depth_image": tensor((128, 128, 1)), "ee_forces_continuous": tensor((50, 6)),
         "ee_orientation": tensor((4,)), "ee_orientation_vel": tensor((3,)), "ee_position": tensor((3,)),
         "ee_vel": tensor((3,)), "ee_yaw": tensor((4,)), "ee_yaw_delta": tensor((4,)), "image": image(128, 128),
         "joint_pos": tensor((7,)), "joint_vel": tensor((7,)), "optical_flow": tensor((128, 128, 2)),
         "state": tensor((8,))}, action=tensor((4,)), meta={}),
    "stanford_mask_vit_converted_externally_to_rlds": _conv(
        {"end_effector_pose": tensor((5,)), "finger_sensors": tensor((1,)), "high_bound": tensor((5,)),
         "image": image(480, 480), "low_bound": tensor((5,)), "state": tensor((15,))}, action=tensor((5,))),
    "stanford_robocook_converted_externally_to_rlds": _conv(
        {**{f"depth_{i}": tensor((256, 256)) for i in range(1, 5)},
         **{f"image_{i}": image(256, 256) for i in range(1, 5)}, "state": tensor((7,))},
        meta={**{f"extrinsics_{i}": tensor((4, 4)) for i in range(1, 5)}, "file_path": text()}),
    "tokyo_u_lsmo_converted_externally_to_rlds": _conv({"image": image(120, 120), "state": tensor((13,))}),
    "ucsd_kitchen_dataset_converted_externally_to_rlds": _conv({"image": image(480, 640), "state": tensor((21,))},
                                                                action=tensor((8,))),
    "ucsd_pick_and_place_dataset_converted_externally_to_rlds": _conv(
        {"image": image(224, 224), "state": tensor((7,))}, action=tensor((4,)),
        meta={"disclaimer": text(), "file_path": text(), "n_transitions": scalar("int32"), "success": scalar("bool"),
              "success_labeled_by": text()}),
    "uiuc_d3field": _conv(
        {**{f"depth_{i}": image(360, 640, 1, "uint16") for i in range(1, 5)},
         **{f"image_{i}": image(360, 640) for i in range(1, 5)}, "state": tensor((4, 4))}, action=tensor((3,))),
    "utaustin_mutex": _conv({"image": image(128, 128), "state": tensor((24,)), "wrist_image": image(128, 128)}),
    **{name: _conv({"image": image(128, 128), "state": tensor((7,))}, action=tensor((8,)))
       for name in ("utokyo_pr2_opening_fridge_converted_externally_to_rlds",
                    "utokyo_pr2_tabletop_manipulation_converted_externally_to_rlds")},
    "utokyo_xarm_bimanual_converted_externally_to_rlds": _conv(
        {"action_l": tensor((7,)), "action_r": tensor((7,)), "image": image(256, 256), "pose_l": tensor((6,)),
         "pose_r": tensor((6,))}, action=tensor((14,))),
    "utokyo_xarm_pick_and_place_converted_externally_to_rlds": _conv(
        {"end_effector_pose": tensor((6,)), "hand_image": image(224, 224), "image": image(224, 224),
         "image2": image(224, 224), "joint_state": tensor((14,)), "joint_trajectory": tensor((21,))}),
    "furniture_bench_dataset_converted_externally_to_rlds": _conv(
        {"image": image(224, 224), "state": tensor((35,)), "wrist_image": image(224, 224)}, action=tensor((8,)),
        meta={"file_path": text(), "furniture": text(), "initial_randomness": text()},
        extra={"skill_completion": scalar("float32")}),
    "dobbe": _conv({"gripper": tensor((1,)), "quat": tensor((4,)), "rot": tensor((3,)), "state": tensor((7,)),
                    "wrist_image": image(256, 256), "xyz": tensor((3,))},
                   meta={"file_path": tensor((), "string")}, instruction=tensor((), "string")),
    "fmb": _conv(
        {"color_id": scalar("uint8"), "eef_force": tensor((3,)), "eef_pose": tensor((7,)), "eef_torque": tensor((3,)),
         "eef_vel": tensor((6,)),
         **{f"image_{v}": image(256, 256) for v in ("side_1", "side_2", "wrist_1", "wrist_2")},
         **{f"image_{v}_depth": tensor((256, 256)) for v in ("side_1", "side_2", "wrist_1", "wrist_2")},
         "joint_pos": tensor((7,)), "joint_vel": tensor((7,)), "length": tensor((), "string"),
         "object_id": scalar("uint8"), "primitive": tensor((), "string"), "shape_id": scalar("uint8"),
         "size": tensor((), "string"), "state_gripper_pose": scalar("float32")},
        meta={"episode_language_embedding": tensor((512,)), "episode_language_instruction": tensor((), "string"),
              "episode_task": tensor((), "string"), "file_path": tensor((), "string")},
        instruction=tensor((), "string")),
    "robo_set": {
        "episode_metadata": {"file_path": tensor((), "string"), "trial_id": tensor((), "string")},
        "steps": steps({
            "action": tensor((8,)), "discount": scalar("float32"), "is_first": scalar("bool"),
            "is_last": scalar("bool"),
            "is_terminal": scalar("bool"), "language_instruction": tensor((), "string"),
            "observation": {**{f"image_{v}": image(240, 424) for v in ("left", "right", "top", "wrist")},
                            "state": tensor((8,)), "state_velocity": tensor((8,))},
            "reward": scalar("float32")})},
    "droid": {
        "episode_metadata": {"file_path": tensor((), "string"), "recording_folderpath": tensor((), "string")},
        "steps": steps({
            "action": tensor((7,), "float64"),
            "action_dict": {k: tensor((n,), "float64") for k, n in (
                ("cartesian_position", 6), ("cartesian_velocity", 6), ("gripper_position", 1),
                ("gripper_velocity", 1), ("joint_position", 7), ("joint_velocity", 7))},
            "discount": scalar("float32"), "is_first": scalar("bool"), "is_last": scalar("bool"),
            "is_terminal": scalar("bool"), "language_instruction": tensor((), "string"),
            "language_instruction_2": tensor((), "string"), "language_instruction_3": tensor((), "string"),
            "observation": {"cartesian_position": tensor((6,), "float64"), "exterior_image_1_left": image(180, 320),
                            "exterior_image_2_left": image(180, 320), "gripper_position": tensor((1,), "float64"),
                            "joint_position": tensor((7,), "float64"), "wrist_image_left": image(180, 320)},
            "reward": scalar("float32")})},
}
