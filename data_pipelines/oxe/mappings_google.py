"""Key mappings of the Google / RT-X-format OXE datasets and the Octo/OpenVLA BridgeData V2 copy.

Camera roles and gripper conventions follow the published feature descriptions and Octo's / OpenVLA's
standardization (``oxe_dataset_configs.py``, ``transforms.py``); control frequencies from the OXE dataset sheet.
"""

from __future__ import annotations

from data_pipelines.standardize import KeyMapping

_EEF7 = "eef_delta_pos3_rot3_gripper1"
_WV_RD = ("steps/action/world_vector", "steps/action/rotation_delta")
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

    "columbia_cairlab_pusht_real": KeyMapping(
        name="ur5_pusht_columbia", cameras={"primary": "steps/observation/image",
                                            "wrist": "steps/observation/wrist_image"},
        action=(*_WV_RD, "steps/action/gripper_closedness_action"), gripper_dims=(6,),
        gripper_convention="relative_close_pm1", instruction=_NLI, action_space=_EEF7,
        state=("steps/observation/robot_state",), state_space="eef_pos2", control_hz=10.0),
    "nyu_door_opening_surprising_effectiveness": KeyMapping(
        name="hello_stretch_nyu_door", cameras={"wrist": "steps/observation/image"},
        action=(*_WV_RD, "steps/action/gripper_closedness_action"), gripper_dims=(6,),
        gripper_convention="relative_close_pm1", instruction=_NLI, action_space=_EEF7, state=(), control_hz=3.0),
    "bc_z": KeyMapping(
        name="google_bc_z", cameras={"primary": "steps/observation/image"},
        action=("steps/action/future/xyz_residual[0:3]", "steps/action/future/axis_angle_residual[0:3]",
                "steps/action/future/target_close[0:1]"), gripper_dims=(6,), gripper_convention="close_1",
        instruction=_NLI, action_space="eef_delta_pos3_axisangle3_gripper1",
        state=("steps/observation/present/xyz", "steps/observation/present/axis_angle",
               "steps/observation/present/sensed_close"), state_space="eef_pos3_axisangle3_gripper_closed1",
        control_hz=10.0, description="action: the first of the 10 future steps published per step"),
}
