"""Read LeRobot datasets (v3.0; v2.0/v2.1 too) into the shared vocabulary.

v3.0 layout::

    meta/info.json                 fps, features, data_path / video_path templates, splits
    meta/stats.json                per-feature mean/std/min/max (q01/q99 when present)
    meta/tasks.parquet             task string <-> task_index
    meta/episodes/chunk-XXX/file-YYY.parquet   one row per episode: length, tasks,
                                   data/{chunk,file}_index, dataset_{from,to}_index,
                                   videos/<key>/{chunk_index,file_index,from_timestamp,to_timestamp}
    data/chunk-XXX/file-YYY.parquet            one row per frame (many episodes per file)
    videos/<key>/chunk-XXX/file-YYY.mp4        many episodes per file, located by from_timestamp

v2.x: ``meta/episodes.jsonl``, ``meta/tasks.jsonl``, one parquet and one mp4 per episode.
Videos are decoded with PyAV. Frames are matched to rows by timestamp (tolerance ``tolerance_s``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from data_pipelines.errors import DataError
from data_pipelines.standardize import KeyMapping
from data_pipelines.standardized import StandardizedSource


def _read_parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot read parquet: {e}", file=str(path)) from e


def _parse_split(spec: str, splits: dict[str, str], n_total: int) -> list[int]:
    """``train``, ``train[:80%]``, ``train[5:10]`` -> episode indices (LeRobot splits are 'a:b' ranges)."""
    m = re.fullmatch(r"(\w+)(?:\[(-?\d*%?):(-?\d*%?)\])?", spec.strip())
    if not m:
        raise ValueError(f"bad split {spec!r}")
    name = m.group(1)
    if name not in splits:
        raise DataError(f"unknown split {name!r}; splits here: {sorted(splits)}")
    lo, hi = (int(x) for x in splits[name].split(":"))
    idx = list(range(lo, min(hi, n_total)))

    def bound(s, default):
        if not s:
            return default
        if s.endswith("%"):
            return int(round(len(idx) * int(s[:-1]) / 100))
        return int(s)

    if m.group(2) is not None or m.group(3) is not None:
        idx = idx[bound(m.group(2), 0): bound(m.group(3), len(idx))]
    return idx


class LeRobotSource:
    """A LeRobot directory as raw episodes: ``{"steps": {column: [T, ...] arrays, "<video key>":
    uint8[T,H,W,3], "task": list[str]}, "episode_metadata": {...}, "_ref": ...}``."""

    def __init__(self, root: str | Path, split: str = "train", mapping: KeyMapping | None = None,
                 tolerance_s: float = 1e-3):
        self.dir = Path(root)
        info_path = self.dir / "meta" / "info.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"{self.dir}: not a LeRobot dataset (no meta/info.json)")
        self.info = json.loads(info_path.read_text())
        self.version = str(self.info.get("codebase_version", ""))
        if not re.match(r"v(2\.\d|3\.\d)", self.version):
            raise DataError(f"LeRobot codebase_version {self.version!r} is not supported (v2.0, v2.1, v3.0 are); "
                            "convert it with lerobot's conversion scripts to v3.0", file=str(info_path))
        self.v3 = self.version.startswith("v3")
        self.fps = float(self.info["fps"])
        self.features: dict = self.info.get("features", {})
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        self.image_keys = [k for k, f in self.features.items() if f.get("dtype") == "image"]
        self.tolerance_s = tolerance_s
        self.split = split
        self.skipped = 0
        self.tasks = self._load_tasks()
        self.episodes = self._load_episodes()
        splits = self.info.get("splits") or {"train": f"0:{len(self.episodes)}"}
        by_index = {int(e["episode_index"]): e for e in self.episodes}
        self._selection = [by_index[i] for i in _parse_split(split, splits, max(by_index) + 1 if by_index else 0)
                           if i in by_index]
        self.mapping = mapping or self.default_mapping()

    # -- metadata -------------------------------------------------------------------------
    def _load_tasks(self) -> dict[int, str]:
        meta = self.dir / "meta"
        if (meta / "tasks.parquet").is_file():
            t = _read_parquet(meta / "tasks.parquet").to_pandas()
            if "task" not in t.columns:
                t = t.reset_index().rename(columns={"index": "task", "__index_level_0__": "task"})
            return {int(i): str(s) for i, s in zip(t["task_index"], t["task"])}
        if (meta / "tasks.jsonl").is_file():
            rows = [json.loads(line) for line in (meta / "tasks.jsonl").read_text().splitlines() if line.strip()]
            return {int(r["task_index"]): str(r["task"]) for r in rows}
        raise DataError("no tasks file (meta/tasks.parquet or meta/tasks.jsonl)", file=str(meta))

    def _load_episodes(self) -> list[dict]:
        meta = self.dir / "meta"
        if self.v3:
            files = sorted((meta / "episodes").glob("chunk-*/file-*.parquet"))
            if not files:
                raise DataError("no episode metadata (meta/episodes/chunk-*/file-*.parquet)", file=str(meta))
            rows: list[dict] = []
            for f in files:
                rows.extend(_read_parquet(f).to_pylist())
            return sorted(rows, key=lambda r: int(r["episode_index"]))
        path = meta / "episodes.jsonl"
        if not path.is_file():
            raise DataError("no meta/episodes.jsonl", file=str(meta))
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def default_mapping(self) -> KeyMapping:
        cams = {k.split(".")[-1]: f"steps/{k}" for k in self.video_keys + self.image_keys}
        if not cams:
            raise DataError("no camera features (dtype video/image) in meta/info.json", file=str(self.dir))
        state = tuple(f"steps/{k}" for k in ("observation.state",) if k in self.features)
        if "action" not in self.features:
            raise DataError(f"no 'action' feature; features found: {sorted(self.features)}",
                            file=str(self.dir / "meta" / "info.json"))
        return KeyMapping(name=str(self.info.get("robot_type") or self.dir.name).replace("/", "_"), cameras=cams,
                          action=("steps/action",), state=state, instruction="steps/task",
                          action_space=f"lerobot_action{self.features['action']['shape'][0]}",
                          control_hz=self.fps, drop_blank_cameras=False)

    def published_stats(self):
        """``meta/stats.json`` as published (``{feature: {mean, std, min, max, ...}}``; {} when absent). For
        inspection only: normalization uses stats computed over the data (:mod:`data_pipelines.stats`)."""
        path = self.dir / "meta" / "stats.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def __len__(self) -> int:
        return len(self._selection)

    def fingerprint(self) -> str:
        files = sorted(self.dir.glob("data/**/*.parquet"))
        return f"{self.split}|{len(self)}|" + "|".join(f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}"
                                                        for f in files)

    def episode_order(self, seed: int | None = None) -> list[int]:
        order = list(range(len(self)))
        if seed is not None:
            order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
        return order

    def standardized(self):
        spec = None
        m = self.mapping
        if m.action == ("steps/action",) and m.state in ((), ("steps/observation.state",)):
            cam_key = self.features[m.cameras[next(iter(m.cameras))][len("steps/"):]] if m.cameras else {}
            shape = cam_key.get("shape", [None, None])
            s = int(self.features["observation.state"]["shape"][0]) if m.state else 0
            spec = m.embodiment(s, int(self.features["action"]["shape"][0]),
                                (int(shape[0]), int(shape[1])) if shape[0] else None)
        return StandardizedSource(self, self.mapping, spec, f"lerobot:{self.dir.resolve()}:{self.split}:"
                                  f"{json.dumps(self.mapping.to_dict(), sort_keys=True)}", kind="lerobot")

    # -- reading --------------------------------------------------------------------------
    def _data_path(self, ep: dict) -> Path:
        tmpl = self.info["data_path"]
        if self.v3:
            return self.dir / tmpl.format(chunk_index=int(ep["data/chunk_index"]),
                                          file_index=int(ep["data/file_index"]))
        chunk = int(ep["episode_index"]) // int(self.info.get("chunks_size", 1000))
        return self.dir / tmpl.format(episode_chunk=chunk, episode_index=int(ep["episode_index"]))

    def _video_path(self, ep: dict, key: str) -> tuple[Path, float]:
        tmpl = self.info["video_path"]
        if self.v3:
            p = tmpl.format(video_key=key, chunk_index=int(ep[f"videos/{key}/chunk_index"]),
                            file_index=int(ep[f"videos/{key}/file_index"]))
            return self.dir / p, float(ep[f"videos/{key}/from_timestamp"])
        chunk = int(ep["episode_index"]) // int(self.info.get("chunks_size", 1000))
        return self.dir / tmpl.format(episode_chunk=chunk, video_key=key, episode_index=int(ep["episode_index"])), 0.0

    def _rows(self, ep: dict) -> dict[str, Any]:
        path = self._data_path(ep)
        table = _table_cached(str(path))
        eidx = int(ep["episode_index"])
        ep_col = np.asarray(table.column("episode_index").to_numpy())
        sel = np.flatnonzero(ep_col == eidx)
        if len(sel) == 0:
            raise DataError("no rows for this episode in the data file", file=str(path), episode=eidx)
        if len(sel) != int(ep["length"]):
            raise DataError(f"episode metadata says length {ep['length']} but the data file has {len(sel)} rows",
                            file=str(path), episode=eidx)
        sub = table.take(sel)
        out: dict[str, Any] = {}
        for name in sub.column_names:
            if name in self.video_keys:
                continue
            col = sub.column(name)
            if name in self.image_keys:
                out[name] = _decode_images(col.to_pylist(), path, eidx, name)
                continue
            vals = col.to_pylist()
            try:
                out[name] = np.asarray(vals, dtype=np.float32 if name not in ("episode_index", "frame_index", "index",
                                                                                 "task_index") else np.int64)
            except (ValueError, TypeError):
                out[name] = vals
        return out

    def _frames(self, ep: dict, key: str, timestamps: np.ndarray) -> np.ndarray:
        path, offset = self._video_path(ep, key)
        if not path.is_file():
            raise DataError("video file missing", file=str(path), episode=int(ep["episode_index"]), field=key)
        want = offset + np.asarray(timestamps, np.float64)
        got_t, got_f = _decode_segment(path, float(want.min()) - 0.5 / self.fps, float(want.max()) + 0.5 / self.fps)
        if not got_t:
            raise DataError(f"no frames decoded between t={want.min():.3f}s and {want.max():.3f}s", file=str(path),
                            episode=int(ep["episode_index"]), field=key)
        got_t = np.asarray(got_t)
        idx = np.abs(got_t[None, :] - want[:, None]).argmin(axis=1)
        err = np.abs(got_t[idx] - want)
        tol = max(self.tolerance_s, 0.5 / self.fps)
        if err.max() > tol:
            bad = int(err.argmax())
            raise DataError(f"no video frame within {tol:.4f}s of t={want[bad]:.4f}s (frame {bad}; nearest "
                            f"{got_t[idx[bad]]:.4f}s)", file=str(path), episode=int(ep["episode_index"]), field=key)
        return np.stack([got_f[i] for i in idx])

    def iter_episodes(self, seed: int | None = None, skip: int = 0, keep=None,
                      decode_images: bool = True) -> Iterator[dict]:
        from data_pipelines.rlds.reader import EpisodeRef

        for pos, i in enumerate(self.episode_order(seed)):
            if pos < skip or (keep is not None and not keep(pos)):
                continue
            ep = self._selection[i]
            steps = self._rows(ep)
            T = int(ep["length"])
            ts = steps.get("timestamp", np.arange(T) / self.fps)
            if decode_images:
                for key in self.video_keys:
                    steps[key] = self._frames(ep, key, ts)
            else:
                for key in self.image_keys:
                    steps.pop(key, None)
            task_idx = steps.get("task_index")
            if task_idx is not None:
                try:
                    steps["task"] = [self.tasks[int(t)] for t in task_idx]
                except KeyError as e:
                    raise DataError(f"task_index {e} not in the tasks file", file=str(self._data_path(ep)),
                                    episode=int(ep["episode_index"]), field="task_index") from None
            else:
                tasks = ep.get("tasks") or [""]
                steps["task"] = [tasks[0]] * T
            meta = {k: v for k, v in ep.items() if not k.startswith(("stats/", "videos/", "data/"))}
            yield {"steps": steps, "episode_metadata": meta,
                   "_ref": EpisodeRef(file=str(self._data_path(ep)), record=int(ep["episode_index"]), index=i,
                                      split=self.split, split_index=int(ep["episode_index"]))}


def delta_timestamps_to_offsets(deltas: Sequence[float], fps: float, tolerance_s: float = 1e-4) -> np.ndarray:
    """LeRobot ``delta_timestamps`` (seconds) -> integer frame offsets; each must sit on the fps grid."""
    d = np.asarray(deltas, np.float64)
    off = np.round(d * fps)
    bad = np.abs(off / fps - d) > tolerance_s
    if bad.any():
        raise ValueError(f"delta_timestamps {d[bad].tolist()} are not multiples of 1/fps = {1 / fps:.6f}s")
    return off.astype(np.int64)


@lru_cache(maxsize=8)
def _table_cached(path: str):
    return _read_parquet(Path(path))


def _decode_images(items: list, path: Path, episode: int, key: str) -> np.ndarray:
    import io

    from PIL import Image

    out = []
    for i, it in enumerate(items):
        data = it.get("bytes") if isinstance(it, dict) else it
        if not data:
            raise DataError(f"frame {i}: image has no embedded bytes", file=str(path), episode=episode, field=key)
        out.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    return np.stack(out)


def _decode_segment(path: Path, t0: float, t1: float) -> tuple[list[float], list[np.ndarray]]:
    """Decode frames with presentation time in [t0, t1] (seconds) from a video file."""
    import av

    times, frames = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = float(stream.time_base)
            if t0 > 0:
                container.seek(int(max(t0, 0) / tb), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = frame.pts * tb
                if t < t0:
                    continue
                if t > t1:
                    break
                times.append(t)
                frames.append(frame.to_ndarray(format="rgb24"))
    except av.error.FFmpegError as e:
        raise DataError(f"cannot decode video: {e}", file=str(path)) from e
    return times, frames
