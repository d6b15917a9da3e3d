"""Key mappings of the lab-contributed OXE datasets: which published key feeds which camera / state / action slot.

Facts per entry: cameras (primary = third person, secondary/tertiary/quaternary = more third-person views, wrist =
hand cameras), the action's published layout and its gripper convention (converted to the uniform [0, 1],
1 = open), the state layout, the action space, and the control frequency. Sources: the TFDS catalog feature
descriptions (layouts, gripper semantics where described), Octo's ``oxe_dataset_configs.py`` and OpenVLA's
``configs.py``/``transforms.py`` (camera roles, gripper inversions, which action/state dims are meaningful) and
the OXE dataset sheet's control frequencies (as listed in LeRobot's ``openx/configs.yaml``). Every dataset here
carries a per-step ``language_instruction``; a blank one gives the empty prompt.
"""

from __future__ import annotations

from data_pipelines.standardize import KeyMapping

_S = "steps/observation/"
_A = "steps/action"
_LI = "steps/language_instruction"
_EEF7 = "eef_delta_pos3_rot3_gripper1"


def _m(name: str, cams: dict[str, str], action: tuple[str, ...], *, state: tuple[str, ...] = (),
       grip: tuple[int, ...] = (), conv: str = "raw", space: str = _EEF7, state_space: str = "", hz: float,
       instruction: str | None = _LI, desc: str = "") -> KeyMapping:
    """A mapping with observation keys given relative to ``steps/observation/``."""
    return KeyMapping(name=name, cameras={c: _S + k for c, k in cams.items()}, action=action,
                      state=tuple(k if k.startswith("steps/") else _S + k for k in state), gripper_dims=grip,
                      gripper_convention=conv if grip else "raw", instruction=instruction, action_space=space,
                      state_space=state_space, control_hz=hz, description=desc)


_PW = {"primary": "image", "wrist": "wrist_image"}
_P = {"primary": "image"}

MAPPINGS: dict[str, KeyMapping] = {
    "austin_buds_dataset_converted_externally_to_rlds": _m(
        "franka_buds", _PW, (_A,), state=("state[0:8]",), grip=(6,), conv="close_pm1",
        state_space="joint_pos7_gripper1", hz=20.0),
    "austin_sailor_dataset_converted_externally_to_rlds": _m(
        "franka_sailor", _PW, (_A,), state=("state",), grip=(6,), conv="close_pm1",
        state_space="eef_pos3_quat4_gripper1", hz=20.0),
    "austin_sirius_dataset_converted_externally_to_rlds": _m(
        "franka_sirius", _PW, (_A,), state=("state",), grip=(6,), conv="close_pm1",
        state_space="joint_pos7_gripper1", hz=20.0),
    "asu_table_top_converted_externally_to_rlds": _m(
        "ur5_asu_table_top", _P, (_A,), state=("steps/ground_truth_states/EE", "state[6:7]"), grip=(6,),
        conv="open_1", state_space="eef_pos3_rpy3_gripper1", hz=12.5,
        desc="catalog describes the 7-D action as joint velocities; Octo/OpenVLA treat it as an EEF delta"),
    "berkeley_fanuc_manipulation": _m(
        "fanuc_mate", _PW, (_A, _S + "state[6:7]"), state=("state[0:7]",), grip=(6,), conv="close_1",
        state_space="joint_pos6_gripper1", hz=10.0,
        desc="the action stores no gripper command: the gripper dim is the observed gripper status (as OpenVLA)"),
    "berkeley_gnm_cory_hall": _m("gnm_cory_hall", {"wrist": "image"}, (_A,), state=("state",),
                                 space="base_delta_pos2", state_space="base_pos2_yaw1", hz=5.0),
    "berkeley_gnm_recon": _m("gnm_recon", {"wrist": "image"}, (_A,), state=("state",), space="base_delta_pos2",
                             state_space="base_pos2_yaw1", hz=3.0),
    "berkeley_gnm_sac_son": _m("gnm_sac_son", {"wrist": "image"}, (_A,), state=("state",), space="base_delta_pos2",
                               state_space="base_pos2_yaw1", hz=10.0),
    "berkeley_mvp_converted_externally_to_rlds": _m(
        "xarm_mvp", {"wrist": "hand_image"}, (_A,), state=("pose", "gripper"), grip=(7,), conv="close_1",
        space="joint_delta7_gripper1", state_space="eef_pos3_quat4_gripper_closed1", hz=5.0),
    "berkeley_rpt_converted_externally_to_rlds": _m(
        "franka_rpt", {"wrist": "hand_image"}, (_A,), state=("joint_pos", "gripper"), grip=(7,), conv="close_1",
        space="joint_delta7_gripper1", state_space="joint_pos7_gripper_closed1", hz=30.0),
    "cmu_franka_exploration_dataset_converted_externally_to_rlds": _m(
        "franka_cmu_exploration", {"primary": "highres_image"}, (_A + "[0:7]",), grip=(6,), conv="open_1", hz=10.0),
    "cmu_play_fusion": _m(
        "franka_play_fusion", _P, (_A + "[0:8]",), state=("state",), grip=(7,), conv="open_1",
        space="eef_delta_pos3_quat4_gripper1", state_space="joint_pos7_gripper1", hz=5.0),
    "cmu_stretch": _m("hello_stretch", _P, (_A + "[0:7]",), state=("state",), grip=(6,), conv="open_1",
                      state_space="eef_pos3_gripper1", hz=10.0),
    "dlr_edan_shared_control_converted_externally_to_rlds": _m(
        "dlr_edan", _P, (_A,), state=("state",), grip=(6,), conv="close_1", state_space="eef_pos3_euler3_gripper1",
        hz=5.0),
    "dlr_sara_grid_clamp_converted_externally_to_rlds": _m(
        "dlr_sara_grid_clamp", _P, (_A,), state=("state[0:6]",), grip=(6,), conv="open_1",
        state_space="eef_pos3_euler3", hz=10.0),
    "dlr_sara_pour_converted_externally_to_rlds": _m(
        "dlr_sara_pour", _P, (_A,), state=("state",), grip=(6,), conv="open_1", state_space="eef_pos3_euler3",
        hz=10.0),
    "iamlab_cmu_pickup_insert_converted_externally_to_rlds": _m(
        "franka_iamlab", _PW, (_A,), state=("state[0:8]",), grip=(7,), conv="open_1",
        space="eef_abs_pos3_quat4_gripper1", state_space="joint_pos7_gripper1", hz=20.0),
    "imperialcollege_sawyer_wrist_cam": _m(
        "sawyer_imperial", _PW, (_A + "[0:7]",), state=("state",), grip=(6,), conv="open_1",
        state_space="gripper1", hz=10.0),
    "kaist_nonprehensile_converted_externally_to_rlds": _m(
        "franka_kaist", _P, (_A + "[0:6]",), state=("state[14:21]",), space="eef_delta_pos3_axisangle3",
        state_space="eef_pos3_quat4", hz=10.0,
        desc="action dims 6:20 (joint gains and damping) are dropped, as in Octo/OpenVLA"),
    "maniskill_dataset_converted_externally_to_rlds": _m(
        "franka_maniskill_sim", _PW, (_A,), state=("tcp_pose", "state[7:8]"), grip=(6,), conv="open_pm1",
        space="eef_delta_pos3_axisangle3_gripper1", state_space="eef_pos3_quat4_gripper1", hz=20.0),
    "nyu_franka_play_dataset_converted_externally_to_rlds": _m(
        "franka_nyu_play", {"primary": "image", "secondary": "image_additional_view"}, (_A + "[7:13]", _A + "[13:14]"),
        state=("state[7:13]",), grip=(6,), conv="open_1", state_space="eef_pos3_rpy3", hz=3.0),
    "nyu_rot_dataset_converted_externally_to_rlds": _m(
        "xarm_nyu_rot", _P, (_A + "[0:7]",), state=("state",), grip=(6,), conv="close_1",
        state_space="eef_pos3_rpy3_gripper_closed1", hz=3.0),
    "stanford_kuka_multimodal_dataset_converted_externally_to_rlds": _m(
        "kuka_iiwa_stanford", _P, (_A,), state=("ee_position", "ee_orientation"), grip=(3,), conv="open_1",
        space="eef_delta_pos3_gripper1", state_space="eef_pos3_quat4", hz=20.0),
    "stanford_mask_vit_converted_externally_to_rlds": _m(
        "sawyer_mask_vit", _P, (_A,), state=("end_effector_pose",), grip=(4,), conv="close_pm1",
        space="eef_delta_pos3_yaw1_gripper1", state_space="eef_pos3_yaw1_gripper1", hz=10.0,
        desc="control frequency not published (10 Hz assumed)"),
    "stanford_robocook_converted_externally_to_rlds": _m(
        "franka_robocook", {"primary": "image_1", "secondary": "image_2", "tertiary": "image_3",
                            "quaternary": "image_4"}, (_A,), state=("state",), grip=(6,), conv="open_1",
        space="eef_vel_pos3_rot3_gripper1", state_space="eef_pos3_euler3_gripper1", hz=5.0),
    "tokyo_u_lsmo_converted_externally_to_rlds": _m(
        "cobotta_lsmo", _P, (_A,), state=("state",), grip=(6,), conv="open_1", space="eef_pos3_euler3_gripper1",
        state_space="eef_pos3_euler3_joint6_gripper1", hz=10.0),
    "ucsd_kitchen_dataset_converted_externally_to_rlds": _m(
        "xarm_ucsd_kitchen", _P, (_A + "[0:7]",), state=("state[0:7]",), grip=(6,), conv="open_1",
        state_space="joint_pos7", hz=2.0),
    "ucsd_pick_and_place_dataset_converted_externally_to_rlds": _m(
        "xarm_ucsd_pick_place", _P, (_A,), state=("state",), grip=(3,), conv="open_1",
        space="eef_vel_pos3_gripper1", state_space="eef_pos3_rot3_finger_distance1", hz=3.0),
    "uiuc_d3field": _m(
        "kinova_d3field", {"primary": "image_1", "secondary": "image_2", "tertiary": "image_3",
                           "quaternary": "image_4"}, (_A,), space="eef_delta_pos3", hz=1.0,
        desc="state (a 4x4 end-effector pose) not used, as in Octo/OpenVLA"),
    "utaustin_mutex": _m("franka_mutex", _PW, (_A,), state=("state[0:8]",), grip=(6,), conv="close_pm1",
                         state_space="joint_pos7_gripper1", hz=20.0),
    "utokyo_pr2_opening_fridge_converted_externally_to_rlds": _m(
        "pr2_utokyo_fridge", _P, (_A + "[0:7]",), state=("state",), grip=(6,), conv="open_1",
        space="eef_pos3_rpy3_gripper1", state_space="eef_pos3_rpy3_gripper1", hz=10.0),
    "utokyo_pr2_tabletop_manipulation_converted_externally_to_rlds": _m(
        "pr2_utokyo_tabletop", _P, (_A + "[0:7]",), state=("state",), grip=(6,), conv="open_1",
        space="eef_pos3_rpy3_gripper1", state_space="eef_pos3_rpy3_gripper1", hz=10.0),
    "utokyo_xarm_bimanual_converted_externally_to_rlds": _m(
        "xarm_bimanual_utokyo", _P, (_A,), state=("pose_l", "pose_r"), grip=(6, 13), conv="open_1",
        space="bimanual_eef_pos3_ypr3_gripper1_x2", state_space="bimanual_eef_pos3_ypr3_x2", hz=10.0),
    "utokyo_xarm_pick_and_place_converted_externally_to_rlds": _m(
        "xarm_utokyo_pick_place", {"primary": "image", "secondary": "image2", "wrist": "hand_image"}, (_A,),
        state=("end_effector_pose",), grip=(6,), conv="open_1", space="eef_pos3_ypr3_gripper1",
        state_space="eef_pos3_ypr3", hz=10.0),
    "furniture_bench_dataset_converted_externally_to_rlds": _m(
        "franka_furniture_bench", _PW, (_A,), state=("state[0:7]", "state[34:35]"), grip=(7,), conv="close_pm1",
        space="eef_vel_pos3_quat4_gripper1", state_space="eef_pos3_quat4_gripper_width1", hz=10.0),
    "dobbe": _m("hello_stretch_dobbe", {"wrist": "wrist_image"}, (_A,), state=("state",), grip=(6,), conv="open_1",
                hz=3.75, desc="action/state layouts unpublished; gripper taken as the last dim (as OpenVLA)"),
    "fmb": _m("franka_fmb", {"primary": "image_side_1", "secondary": "image_side_2", "wrist": "image_wrist_1",
                             "wrist_2": "image_wrist_2"}, (_A,), state=("eef_pose", "state_gripper_pose"), grip=(6,),
              conv="open_1", state_space="eef_pos3_quat4_gripper1", hz=10.0),
    "robo_set": _m("franka_roboset", {"primary": "image_left", "secondary": "image_right", "tertiary": "image_top",
                                      "wrist": "image_wrist"}, (_A,), state=("state",), grip=(7,), conv="close_pm1",
                   space="joint_pos7_gripper1", state_space="joint_pos7_gripper1", hz=5.0),
    "droid": _m("franka_droid", {"primary": "exterior_image_1_left", "secondary": "exterior_image_2_left",
                                 "wrist": "wrist_image_left"},
                ("steps/action_dict/cartesian_velocity", "steps/action_dict/gripper_position"),
                state=("cartesian_position", "gripper_position"), grip=(6,), conv="close_1",
                space="eef_vel_pos3_rot3_gripper1", state_space="eef_pos3_euler3_gripper1", hz=15.0,
                desc="base-frame velocity action with the commanded gripper position (1 = closed), as OpenVLA"),
}
