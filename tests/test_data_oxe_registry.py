"""Every registered OXE dataset, written as a real TFDS directory from its published feature spec and read back
through the pipeline, lands each published key in the slot an independent statement of the spec says.

``SLOTS`` below is that statement, written from the TFDS catalog descriptions and Octo's/OpenVLA's published
standardization, not from the registry entries: per dataset the camera slots and their keys, the keys whose
concatenation is the state and the action (paths under ``steps``, ``.``-separated, one key may contain '/'),
the expected dims, which raw value means "gripper open" and which "closed" (the pipeline must turn them into
1 and 0), the instruction source and the control rate. The fixture gives each camera a distinct constant
image, so a camera landing in the wrong slot shows.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_pipelines import oxe
from data_pipelines.rlds import features as F
from data_pipelines.rlds.writer import write_tfds
from data_pipelines.sources import open_dataset

INSTRUCTION = "put the red block in the bowl"
OB, A = "observation.", "action"

# name: (cameras {slot: key}, state keys, action keys, (state_dim, action_dim),
#        gripper [(key, index or None, raw open, raw closed, action dim)], language source, control Hz)
PW = {"primary": OB + "image", "wrist": OB + "wrist_image"}
P = {"primary": OB + "image"}
NLI = "obs"  # observation.natural_language_instruction; "step": language_instruction; "codes": language_table
SLOTS: dict[str, tuple] = {
    "fractal20220817_data": (P, [OB + "base_pose_tool_reached", OB + "gripper_closed"],
                             ["action.world_vector", "action.rotation_delta", "action.gripper_closedness_action"],
                             (8, 7), [("action.gripper_closedness_action", 0, -1, 1, 6)], NLI, 3),
    "kuka": (P, [OB + "clip_function_input.base_pose_tool_reached", OB + "gripper_closed"],
             ["action.world_vector", "action.rotation_delta", "action.gripper_closedness_action"], (8, 7),
             [("action.gripper_closedness_action", 0, 0, 1, 6)], NLI, 10),
    "bridge": (P, [OB + "state"], ["action.world_vector", "action.rotation_delta", "action.open_gripper"], (7, 7),
               [("action.open_gripper", None, True, False, 6)], NLI, 5),
    "bridge_dataset": ({"primary": OB + "image_0", "secondary": OB + "image_1", "tertiary": OB + "image_2",
                        "wrist": OB + "image_3"}, [OB + "state"], [A], (7, 7), [(A, 6, 1, 0, 6)], "step", 5),
    "taco_play": ({"primary": OB + "rgb_static", "wrist": OB + "rgb_gripper"}, [OB + "robot_obs[0:7]"],
                  ["action.rel_actions_world"], (7, 7), [("action.rel_actions_world", 6, 1, -1, 6)], NLI, 15),
    "jaco_play": ({"primary": OB + "image", "wrist": OB + "image_wrist"}, [OB + "end_effector_cartesian_pos"],
                  ["action.world_vector", "action.gripper_closedness_action"], (7, 4),
                  [("action.gripper_closedness_action", 0, -1, 1, 3)], NLI, 10),
    "berkeley_cable_routing": ({"primary": OB + "image", "secondary": OB + "top_image", "wrist": OB + "wrist45_image",
                                "wrist_225": OB + "wrist225_image"}, [OB + "robot_state"],
                               ["action.world_vector", "action.rotation_delta"], (7, 6), [], NLI, 10),
    "roboturk": ({"primary": OB + "front_rgb"}, [], ["action.world_vector", "action.rotation_delta",
                                                   "action.gripper_closedness_action"], (0, 7),
                 [("action.gripper_closedness_action", 0, -1, 1, 6)], NLI, 10),
    "nyu_door_opening_surprising_effectiveness": (
        {"wrist": OB + "image"}, [], ["action.world_vector", "action.rotation_delta",
                                     "action.gripper_closedness_action"], (0, 7),
        [("action.gripper_closedness_action", 0, -1, 1, 6)], NLI, 3),
    "viola": ({"primary": OB + "agentview_rgb", "wrist": OB + "eye_in_hand_rgb"},
              [OB + "joint_states", OB + "gripper_states"],
              ["action.world_vector", "action.rotation_delta", "action.gripper_closedness_action"], (8, 7),
              [("action.gripper_closedness_action", None, -1, 1, 6)], NLI, 20),
    "berkeley_autolab_ur5": ({"primary": OB + "image", "wrist": OB + "hand_image"}, [OB + "robot_state"],
                             ["action.world_vector", "action.rotation_delta", "action.gripper_closedness_action"],
                             (15, 7), [("action.gripper_closedness_action", None, -1, 1, 6)], NLI, 5),
    "toto": (P, [OB + "state"], ["action.world_vector", "action.rotation_delta", "action.open_gripper"], (7, 7),
             [("action.open_gripper", None, True, False, 6)], NLI, 30),
    "language_table": ({"primary": OB + "rgb"}, [OB + "effector_translation"], [A], (2, 2), [], "codes", 10),
    "columbia_cairlab_pusht_real": (PW, [OB + "robot_state"], ["action.world_vector", "action.rotation_delta",
                                                             "action.gripper_closedness_action"], (2, 7),
                                    [("action.gripper_closedness_action", None, -1, 1, 6)], NLI, 10),
    "stanford_kuka_multimodal_dataset_converted_externally_to_rlds": (
        P, [OB + "ee_position", OB + "ee_orientation"], [A], (7, 4), [(A, 3, 1, 0, 3)], "step", 20),
    "nyu_rot_dataset_converted_externally_to_rlds": (P, [OB + "state"], [A + "[0:7]"], (7, 7), [(A, 6, 0, 1, 6)],
                                                     "step", 3),
    "stanford_hydra_dataset_converted_externally_to_rlds": (
        PW, [OB + "state[0:3]", OB + "state[7:10]", OB + "state[24:25]"], [A], (7, 7), [(A, 6, 0, 1, 6)], "step", 10),
    "austin_buds_dataset_converted_externally_to_rlds": (PW, [OB + "state[0:8]"], [A], (8, 7), [(A, 6, -1, 1, 6)],
                                                         "step", 20),
    "nyu_franka_play_dataset_converted_externally_to_rlds": (
        {"primary": OB + "image", "secondary": OB + "image_additional_view"}, [OB + "state[7:13]"],
        [A + "[7:13]", A + "[13:14]"], (6, 7), [(A, 13, 1, 0, 6)], "step", 3),
    "maniskill_dataset_converted_externally_to_rlds": (PW, [OB + "tcp_pose", OB + "state[7:8]"], [A], (8, 7),
                                                       [(A, 6, 1, -1, 6)], "step", 20),
    "furniture_bench_dataset_converted_externally_to_rlds": (PW, [OB + "state[0:7]", OB + "state[34:35]"], [A], (8, 8),
                                                             [(A, 7, -1, 1, 7)], "step", 10),
    "cmu_franka_exploration_dataset_converted_externally_to_rlds": (
        {"primary": OB + "highres_image"}, [], [A + "[0:7]"], (0, 7), [(A, 6, 1, 0, 6)], "step", 10),
    "ucsd_kitchen_dataset_converted_externally_to_rlds": (P, [OB + "state[0:7]"], [A + "[0:7]"], (7, 7),
                                                          [(A, 6, 1, 0, 6)], "step", 2),
    "ucsd_pick_and_place_dataset_converted_externally_to_rlds": (P, [OB + "state"], [A], (7, 4), [(A, 3, 1, 0, 3)],
                                                                 "step", 3),
    "austin_sailor_dataset_converted_externally_to_rlds": (PW, [OB + "state"], [A], (8, 7), [(A, 6, -1, 1, 6)],
                                                           "step", 20),
    "austin_sirius_dataset_converted_externally_to_rlds": (PW, [OB + "state"], [A], (8, 7), [(A, 6, -1, 1, 6)],
                                                           "step", 20),
    "bc_z": (P, [OB + "present/xyz", OB + "present/axis_angle", OB + "present/sensed_close"],
             ["action.future/xyz_residual[0:3]", "action.future/axis_angle_residual[0:3]",
              "action.future/target_close[0:1]"], (7, 7), [("action.future/target_close", 0, 0, 1, 6)], NLI, 10),
    "utokyo_pr2_opening_fridge_converted_externally_to_rlds": (P, [OB + "state"], [A + "[0:7]"], (7, 7),
                                                               [(A, 6, 1, 0, 6)], "step", 10),
    "utokyo_pr2_tabletop_manipulation_converted_externally_to_rlds": (P, [OB + "state"], [A + "[0:7]"], (7, 7),
                                                                      [(A, 6, 1, 0, 6)], "step", 10),
    "utokyo_xarm_pick_and_place_converted_externally_to_rlds": (
        {"primary": OB + "image", "secondary": OB + "image2", "wrist": OB + "hand_image"}, [OB + "end_effector_pose"],
        [A], (6, 7), [(A, 6, 1, 0, 6)], "step", 10),
    "utokyo_xarm_bimanual_converted_externally_to_rlds": (P, [OB + "pose_l", OB + "pose_r"], [A], (12, 14),
                                                          [(A, 6, 1, 0, 6), (A, 13, 1, 0, 13)], "step", 10),
    "berkeley_mvp_converted_externally_to_rlds": ({"wrist": OB + "hand_image"}, [OB + "pose", OB + "gripper"], [A],
                                                  (8, 8), [(A, 7, 0, 1, 7)], "step", 5),
    "berkeley_rpt_converted_externally_to_rlds": ({"wrist": OB + "hand_image"}, [OB + "joint_pos", OB + "gripper"], [A],
                                                  (8, 8), [(A, 7, 0, 1, 7)], "step", 30),
    "kaist_nonprehensile_converted_externally_to_rlds": (P, [OB + "state[14:21]"], [A + "[0:6]"], (7, 6), [], "step",
                                                         10),
    "stanford_mask_vit_converted_externally_to_rlds": (P, [OB + "end_effector_pose"], [A], (5, 5), [(A, 4, -1, 1, 4)],
                                                       "step", 10),
    "tokyo_u_lsmo_converted_externally_to_rlds": (P, [OB + "state"], [A], (13, 7), [(A, 6, 1, 0, 6)], "step", 10),
    "dlr_sara_pour_converted_externally_to_rlds": (P, [OB + "state"], [A], (6, 7), [(A, 6, 1, 0, 6)], "step", 10),
    "dlr_sara_grid_clamp_converted_externally_to_rlds": (P, [OB + "state[0:6]"], [A], (6, 7), [(A, 6, 1, 0, 6)],
                                                         "step", 10),
    "dlr_edan_shared_control_converted_externally_to_rlds": (P, [OB + "state"], [A], (7, 7), [(A, 6, 0, 1, 6)],
                                                             "step", 5),
    "asu_table_top_converted_externally_to_rlds": (P, ["ground_truth_states.EE", OB + "state[6:7]"], [A], (7, 7),
                                                   [(A, 6, 1, 0, 6)], "step", 12.5),
    "stanford_robocook_converted_externally_to_rlds": (
        {"primary": OB + "image_1", "secondary": OB + "image_2", "tertiary": OB + "image_3",
         "quaternary": OB + "image_4"}, [OB + "state"], [A], (7, 7), [(A, 6, 1, 0, 6)], "step", 5),
    "imperialcollege_sawyer_wrist_cam": (PW, [OB + "state"], [A + "[0:7]"], (1, 7), [(A, 6, 1, 0, 6)], "step", 10),
    "iamlab_cmu_pickup_insert_converted_externally_to_rlds": (PW, [OB + "state[0:8]"], [A], (8, 8),
                                                              [(A, 7, 1, 0, 7)], "step", 20),
    "uiuc_d3field": ({"primary": OB + "image_1", "secondary": OB + "image_2", "tertiary": OB + "image_3",
                      "quaternary": OB + "image_4"}, [], [A], (0, 3), [], "step", 1),
    "utaustin_mutex": (PW, [OB + "state[0:8]"], [A], (8, 7), [(A, 6, -1, 1, 6)], "step", 20),
    "berkeley_fanuc_manipulation": (PW, [OB + "state[0:7]"], [A, OB + "state[6:7]"], (7, 7),
                                    [(OB + "state", 6, 0, 1, 6)], "step", 10),
    "cmu_play_fusion": (P, [OB + "state"], [A + "[0:8]"], (8, 8), [(A, 7, 1, 0, 7)], "step", 5),
    "cmu_stretch": (P, [OB + "state"], [A + "[0:7]"], (4, 7), [(A, 6, 1, 0, 6)], "step", 10),
    "berkeley_gnm_recon": ({"wrist": OB + "image"}, [OB + "state"], [A], (3, 2), [], "step", 3),
    "berkeley_gnm_cory_hall": ({"wrist": OB + "image"}, [OB + "state"], [A], (3, 2), [], "step", 5),
    "berkeley_gnm_sac_son": ({"wrist": OB + "image"}, [OB + "state"], [A], (3, 2), [], "step", 10),
    "dobbe": ({"wrist": OB + "wrist_image"}, [OB + "state"], [A], (7, 7), [(A, 6, 1, 0, 6)], "step", 3.75),
    "fmb": ({"primary": OB + "image_side_1", "secondary": OB + "image_side_2", "wrist": OB + "image_wrist_1",
             "wrist_2": OB + "image_wrist_2"}, [OB + "eef_pose", OB + "state_gripper_pose"], [A], (8, 7),
            [(A, 6, 1, 0, 6)], "step", 10),
    "droid": ({"primary": OB + "exterior_image_1_left", "secondary": OB + "exterior_image_2_left",
               "wrist": OB + "wrist_image_left"}, [OB + "cartesian_position", OB + "gripper_position"],
              ["action_dict.cartesian_velocity", "action_dict.gripper_position"], (7, 7),
              [("action_dict.gripper_position", 0, 0, 1, 6)], "step", 15),
    "robo_set": ({"primary": OB + "image_left", "secondary": OB + "image_right", "tertiary": OB + "image_top",
                  "wrist": OB + "image_wrist"}, [OB + "state"], [A], (8, 8), [(A, 7, -1, 1, 7)], "step", 5),
}
_KEY = re.compile(r"^(?P<path>[^\[]+)(?:\[(?P<lo>\d+):(?P<hi>\d+)\])?$")


def _node(steps: dict, dotted: str):
    """(parent dict, leaf name) of a ``.``-separated path under ``steps``."""
    parts = dotted.split(".")
    node = steps
    for p in parts[:-1]:
        node = node[p]
    return node, parts[-1]


def _read(steps: dict, key: str, T: int) -> np.ndarray:
    m = _KEY.match(key)
    parent, leaf = _node(steps, m["path"])
    arr = np.asarray(parent[leaf], np.float32).reshape(T, -1)
    return arr[:, int(m["lo"]):int(m["hi"])] if m["lo"] else arr


def _image_leaves(spec: dict, prefix: str = "") -> list[str]:
    """Dotted paths (under ``steps``) of every image feature."""
    out = []
    for k, v in spec.items():
        if F.is_leaf(v):
            if v["kind"] == "image":
                out.append(prefix + k)
        elif isinstance(v, dict):
            out.extend(_image_leaves(v, prefix + k + "."))
    return out


def _episode(name: str, T: int = 2) -> dict:
    """A random episode of the published spec; constant per-camera images, known gripper and instruction values."""
    cams, _, _, _, grippers, lang, _ = SLOTS[name]
    entry = oxe.get_entry(name)
    ep = F.random_episode(entry.features, np.random.default_rng(7), T)
    st = ep["steps"]
    for i, path in enumerate(_image_leaves(entry.features["steps"]["feature"])):
        parent, leaf = _node(st, path)
        parent[leaf] = np.full_like(parent[leaf], 11 + 17 * i)  # distinct, non-blank, cheap to encode
    for key, index, raw_open, raw_closed, _ in grippers:
        parent, leaf = _node(st, key)
        vals = np.asarray(parent[leaf]).copy()
        col = np.array([raw_open, raw_closed]).astype(vals.dtype)
        if index is None:
            vals[...] = col.reshape(vals.shape)
        else:
            vals.reshape(T, -1)[:, index] = col
        parent[leaf] = vals
    if lang == "codes":
        codes = np.zeros((T, 512), np.int32)
        codes[:, :len(INSTRUCTION)] = np.frombuffer(INSTRUCTION.encode(), np.uint8)
        st["observation"]["instruction"] = codes
    elif lang == "obs":
        st["observation"]["natural_language_instruction"] = [INSTRUCTION] * T
    else:
        st["language_instruction"] = [INSTRUCTION] * T
    return ep


def test_every_octo_openvla_name_is_registered_or_listed_unspecified():
    octo_openvla = set(SLOTS) | {"robo_net", "cmu_playing_with_food", "droid", "rh20t", "bridge_orig", "bridge_oxe",
                                 "fmb_dataset", "roboset"}
    registered = {oxe.canonical_name(n) for n in octo_openvla} & set(oxe.REGISTRY)
    assert {n for n in octo_openvla if oxe.canonical_name(n) not in registered} == set(oxe.UNSPECIFIED)
    assert set(oxe.REGISTRY) == set(SLOTS)


@pytest.mark.parametrize("name", sorted(SLOTS))
def test_published_spec_lands_in_the_stated_slots(name, tmp_path):
    cams, state_keys, action_keys, (s_dim, a_dim), grippers, _, hz = SLOTS[name]
    ep = _episode(name)
    root = write_tfds({"train": [ep]}, oxe.get_entry(name).features, tmp_path, name)
    src = open_dataset(root)  # found by the directory's own TFDS name
    out = next(src.iter_episodes())
    st = ep["steps"]
    assert (src.spec.state_dim, src.spec.action_dim, src.spec.control_hz) == (s_dim, a_dim, hz)
    assert set(out["images"]) == set(cams)
    for slot, key in cams.items():
        parent, leaf = _node(st, key)
        np.testing.assert_array_equal(out["images"][slot], parent[leaf], err_msg=f"{name}: camera {slot}")
    expect_state = np.concatenate([_read(st, k, 2) for k in state_keys], 1) if state_keys else np.zeros((2, 0))
    np.testing.assert_allclose(out["state"], expect_state, err_msg=f"{name}: state")
    expect_action = np.concatenate([_read(st, k, 2) for k in action_keys], 1)
    grip_dims = [g[4] for g in grippers]
    other = [d for d in range(a_dim) if d not in grip_dims]
    np.testing.assert_allclose(out["actions"][:, other], expect_action[:, other], err_msg=f"{name}: action")
    for d in grip_dims:  # raw "open" then raw "closed" -> 1 (open), 0 (closed)
        np.testing.assert_array_equal(out["actions"][:, d], [1.0, 0.0], err_msg=f"{name}: gripper dim {d}")
    assert out["prompt"] == INSTRUCTION


def test_blank_instruction_is_the_empty_prompt(tmp_path):
    name = "berkeley_gnm_recon"  # navigation data: its published language field is typically blank
    ep = _episode(name)
    ep["steps"]["language_instruction"] = [""] * 2
    src = open_dataset(write_tfds({"train": [ep]}, oxe.get_entry(name).features, tmp_path, name))
    assert next(src.iter_episodes())["prompt"] == ""


def test_vla_stats_list_shows_every_dataset_without_tensorflow():
    code = ("import sys; from vla.cli import main; rc = main(['stats', '--list']); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'; sys.exit(rc)")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{len(SLOTS)} registered OXE datasets")
    for name, (cams, _, _, (s_dim, a_dim), _, _, hz) in SLOTS.items():
        i = lines.index(next(x for x in lines if x.strip().split(" [alias")[0] == name))
        info = lines[i + 1]
        assert f"cams={','.join(cams)}" in info or set(info.split("cams=")[1].split()[0].split(",")) == set(cams)
        assert f" state={s_dim} " in info and f" action={a_dim} " in info and f" {hz:g}Hz " in info
    assert "openvla/oxe_magic_soup: 23 datasets" in out.stdout and "octo/oxe_magic_soup: 25 datasets" in out.stdout
    assert any(x.startswith("not registered") and all(n in x for n in oxe.UNSPECIFIED) for x in lines)
