"""A LeRobot v3.0 directory built here per the documented layout (parquet + mp4, several episodes per
file) reads with the right frames, actions, tasks and chunk masks; v2.1 per-episode files too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_pipelines.errors import DataError
from data_pipelines.lerobot import LeRobotSource, delta_timestamps_to_offsets
from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig
from data_pipelines.sources import open_dataset

FPS = 10
LENGTHS = [6, 8, 5]
TASKS = ["pick up the cube", "open the drawer"]
EP_TASK = [0, 1, 0]
CAMS = ["observation.images.top", "observation.images.wrist"]
HW = 32


def color(cam: int, g: int) -> np.ndarray:
    """A distinct solid colour per camera and global frame index (survives lossy coding)."""
    return np.array([(g * 40 + 20) % 240 + 8, (cam * 120 + g * 12) % 240 + 8, 128 if cam else 64], np.uint8)


def actions_for(e: int, T: int) -> np.ndarray:
    return (np.arange(T * 3, dtype=np.float32).reshape(T, 3) + 100 * e) / 7.0


def write_video(path: Path, frames: list[np.ndarray]):
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = HW, HW, "yuv420p"
        s.options = {"qp": "0", "g": "4"}  # keyframe every 4 frames: seeking must land mid-file
        for i, img in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts = i
            for pkt in s.encode(fr):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def build_v3(root: Path) -> Path:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    starts = np.cumsum([0] + LENGTHS[:-1])
    rows = {"observation.state": [], "action": [], "timestamp": [], "frame_index": [], "episode_index": [],
            "index": [], "task_index": []}
    for e, (T, g0) in enumerate(zip(LENGTHS, starts)):
        a = actions_for(e, T)
        for t in range(T):
            rows["observation.state"].append([float(e), float(t), 0.5, -0.5])
            rows["action"].append(a[t].tolist())
            rows["timestamp"].append(t / FPS)
            rows["frame_index"].append(t)
            rows["episode_index"].append(e)
            rows["index"].append(int(g0 + t))
            rows["task_index"].append(EP_TASK[e])
    (root / "data" / "chunk-000").mkdir(parents=True)
    table = pa.table({
        "observation.state": pa.array(rows["observation.state"], pa.list_(pa.float32(), 4)),
        "action": pa.array(rows["action"], pa.list_(pa.float32(), 3)),
        "timestamp": pa.array(rows["timestamp"], pa.float32()),
        **{k: pa.array(rows[k], pa.int64()) for k in ("frame_index", "episode_index", "index", "task_index")}})
    pq.write_table(table, root / "data" / "chunk-000" / "file-000.parquet")
    total = sum(LENGTHS)
    for ci, cam in enumerate(CAMS):
        frames = [np.broadcast_to(color(ci, g), (HW, HW, 3)).copy() for g in range(total)]
        write_video(root / "videos" / cam / "chunk-000" / "file-000.mp4", frames)
    meta = root / "meta"
    (meta / "episodes" / "chunk-000").mkdir(parents=True)
    ep_rows = []
    for e, (T, g0) in enumerate(zip(LENGTHS, starts)):
        r = {"episode_index": e, "tasks": [TASKS[EP_TASK[e]]], "length": T, "data/chunk_index": 0,
             "data/file_index": 0, "dataset_from_index": int(g0), "dataset_to_index": int(g0 + T)}
        for cam in CAMS:
            r.update({f"videos/{cam}/chunk_index": 0, f"videos/{cam}/file_index": 0,
                      f"videos/{cam}/from_timestamp": g0 / FPS, f"videos/{cam}/to_timestamp": (g0 + T) / FPS})
        ep_rows.append(r)
    pd.DataFrame(ep_rows).to_parquet(meta / "episodes" / "chunk-000" / "file-000.parquet")
    pd.DataFrame({"task_index": [0, 1]}, index=pd.Index(TASKS, name="task")).to_parquet(meta / "tasks.parquet")
    video_feat = {"dtype": "video", "shape": [HW, HW, 3], "names": ["height", "width", "channels"],
                  "info": {"video.fps": FPS, "video.codec": "h264", "video.pix_fmt": "yuv420p"}}
    info = {"codebase_version": "v3.0", "robot_type": "so100_test", "total_episodes": 3, "total_frames": total,
            "total_tasks": 2, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": FPS, "splits": {"train": "0:3"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": {CAMS[0]: video_feat, CAMS[1]: video_feat,
                         "observation.state": {"dtype": "float32", "shape": [4], "names": None},
                         "action": {"dtype": "float32", "shape": [3], "names": None},
                         "timestamp": {"dtype": "float32", "shape": [1], "names": None},
                         **{k: {"dtype": "int64", "shape": [1], "names": None}
                            for k in ("frame_index", "episode_index", "index", "task_index")}}}
    (meta / "info.json").write_text(json.dumps(info, indent=2))
    acts = np.concatenate([actions_for(e, T) for e, T in enumerate(LENGTHS)])
    (meta / "stats.json").write_text(json.dumps({"action": {"mean": acts.mean(0).tolist(), "std": acts.std(0).tolist(),
                                                            "min": acts.min(0).tolist(), "max": acts.max(0).tolist()}}))
    return root


@pytest.fixture(scope="module")
def v3(tmp_path_factory):
    return build_v3(tmp_path_factory.mktemp("lerobot") / "so100_test")


def test_v3_reads_frames_actions_tasks(v3):
    src = open_dataset(v3)
    assert len(src) == 3 and src.spec.cameras == ("top", "wrist")
    assert src.spec.action_dim == 3 and src.spec.state_dim == 4 and src.spec.control_hz == FPS
    starts = np.cumsum([0] + LENGTHS[:-1])
    n = 0
    for e, ep in enumerate(src.iter_episodes()):
        n += 1
        T = LENGTHS[e]
        np.testing.assert_allclose(ep["actions"], actions_for(e, T))
        np.testing.assert_allclose(ep["state"][:, :2], np.stack([np.full(T, e), np.arange(T)], 1))
        assert ep["prompt"] == TASKS[EP_TASK[e]]
        for ci, cam in enumerate(("top", "wrist")):
            frames = ep["images"][cam]
            assert frames.shape == (T, HW, HW, 3) and frames.dtype == np.uint8
            for t in range(T):  # each decoded frame is the one of this episode and step
                mean = frames[t].reshape(-1, 3).mean(0)
                assert np.abs(mean - color(ci, starts[e] + t)).max() < 6, (e, t, cam, mean)
    assert n == 3
    assert LeRobotSource(v3).published_stats()["action"]["mean"][0] == pytest.approx(
        np.concatenate([actions_for(e, T) for e, T in enumerate(LENGTHS)])[:, 0].mean(), rel=1e-5)


def test_v3_chunk_masks_and_delta_timestamps(v3):
    cfg = PipelineConfig(datasets=(DatasetConfig(str(v3)),), horizon=4, image_size=(16, 16), train=False)
    samples = list(Pipeline(cfg, progress=False))
    assert len(samples) == sum(LENGTHS)
    spec = Pipeline(cfg, progress=False).embodiments["so100_test"]
    first_ep = samples[: LENGTHS[0]]
    assert [s["action_pad"].tolist() for s in first_ep[-3:]] == [[False, False, False, True],
                                                                  [False, False, True, True],
                                                                  [False, True, True, True]]
    np.testing.assert_allclose(spec.unnormalize_action(first_ep[0]["actions"]), actions_for(0, 6)[:4], atol=1e-4)
    assert all(s["prompt"] == TASKS[1] for s in samples[LENGTHS[0]: LENGTHS[0] + LENGTHS[1]])
    # delta_timestamps (seconds) on the fps grid: every other frame
    cfg2 = cfg.replace(action_delta_timestamps=(0.0, 0.2, 0.4))
    s2 = list(Pipeline(cfg2, progress=False))
    assert s2[0]["actions"].shape == (3, 3)
    np.testing.assert_allclose(spec.unnormalize_action(s2[3]["actions"]), actions_for(0, 6)[[3, 5, 5]], atol=1e-4)
    assert s2[3]["action_pad"].tolist() == [False, False, True]
    np.testing.assert_array_equal(delta_timestamps_to_offsets([0, 0.1, 0.3], 10), [0, 1, 3])
    with pytest.raises(ValueError, match="not multiples of 1/fps"):
        delta_timestamps_to_offsets([0, 0.05], 10)


def test_v3_split_slices_and_errors(v3, tmp_path):
    assert len(LeRobotSource(v3, split="train[:2]")) == 2
    assert len(LeRobotSource(v3, split="train[67%:]")) == 1
    with pytest.raises(DataError, match="unknown split 'val'"):
        LeRobotSource(v3, split="val")
    old = tmp_path / "old"
    (old / "meta").mkdir(parents=True)
    (old / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v1.6", "fps": 10}))
    with pytest.raises(DataError, match="v1.6.*not supported.*convert"):
        open_dataset(old)


def test_v21_per_episode_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "v21"
    for e, T in enumerate(LENGTHS[:2]):
        d = root / "data" / "chunk-000"
        d.mkdir(parents=True, exist_ok=True)
        a = actions_for(e, T)
        pq.write_table(pa.table({"observation.state": pa.array([[0.0, 1.0]] * T, pa.list_(pa.float32(), 2)),
                                 "action": pa.array(a.tolist(), pa.list_(pa.float32(), 3)),
                                 "timestamp": pa.array(np.arange(T) / FPS, pa.float32()),
                                 "frame_index": pa.array(range(T), pa.int64()),
                                 "episode_index": pa.array([e] * T, pa.int64()),
                                 "task_index": pa.array([e] * T, pa.int64())}), d / f"episode_{e:06d}.parquet")
        write_video(root / "videos" / "chunk-000" / CAMS[0] / f"episode_{e:06d}.mp4",
                    [np.broadcast_to(color(0, t), (HW, HW, 3)).copy() for t in range(T)])
    meta = root / "meta"
    meta.mkdir()
    (meta / "episodes.jsonl").write_text("\n".join(json.dumps({"episode_index": e, "tasks": [TASKS[e]], "length": T})
                                                   for e, T in enumerate(LENGTHS[:2])))
    (meta / "tasks.jsonl").write_text("\n".join(json.dumps({"task_index": i, "task": t}) for i, t in enumerate(TASKS)))
    (meta / "info.json").write_text(json.dumps({
        "codebase_version": "v2.1", "fps": FPS, "chunks_size": 1000, "splits": {"train": "0:2"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {CAMS[0]: {"dtype": "video", "shape": [HW, HW, 3]},
                     "observation.state": {"dtype": "float32", "shape": [2]},
                     "action": {"dtype": "float32", "shape": [3]}}}))
    eps = list(open_dataset(root).iter_episodes())
    assert [e["prompt"] for e in eps] == TASKS
    np.testing.assert_allclose(eps[1]["actions"], actions_for(1, LENGTHS[1]))
    assert np.abs(eps[1]["images"]["top"][3].reshape(-1, 3).mean(0) - color(0, 3)).max() < 6
