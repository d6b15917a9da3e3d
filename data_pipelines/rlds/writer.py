"""Numpy episodes (sim demos, robot logs) -> an RLDS TFDS directory in the Open X-Embodiment layout.

The result is a plain prepared TFDS dataset: ``tfds.builder_from_directory(path)`` reads it, and so do
OpenVLA/Octo-style loaders (``tfds.builder(name, data_dir=...)``). Layout written::

    <out_dir>/<dataset_name>/<version>/
        dataset_info.json  features.json  vla_embodiment.json
        <dataset_name>-<split>.tfrecord-00000-of-000NN ...

Read it back with ``RLDSSource(path)`` / ``open_dataset(path)`` here, or elsewhere with
``tfds.builder_from_directory(path)`` or ``tfds.builder(dataset_name, data_dir=out_dir)``.

Per step: ``observation/<camera>`` (uint8 image), ``observation/state`` (float32[S]), ``action``
(float32[A]), ``language_instruction`` (text), ``reward``, ``discount``, ``is_first``, ``is_last``,
``is_terminal``; per episode: ``episode_metadata`` (``file_path``, ``episode_id`` and any extra
string/int/float/bool entries given).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from data_pipelines.errors import DataError
from data_pipelines.rlds import features as F
from vla.types import EmbodimentSpec

EMBODIMENT_FILE = "vla_embodiment.json"


def _meta_leaf(name: str, value: Any) -> dict:
    if isinstance(value, (str, bytes)):
        return F.text()
    if isinstance(value, (bool, np.bool_)):
        return F.scalar("bool")
    if isinstance(value, (int, np.integer)):
        return F.scalar("int64")
    if isinstance(value, (float, np.floating)):
        return F.scalar("float32")
    raise DataError(f"episode metadata values must be str/int/float/bool; got {type(value).__name__}", field=name)


def episode_feature_spec(first: Mapping[str, Any], spec: EmbodimentSpec, image_encoding: str = "png") -> dict:
    """The feature spec (see :mod:`features`) of the episodes written for ``spec``."""
    obs = first["steps"]["observation"]
    obs_spec: dict[str, Any] = {}
    for cam in spec.cameras:
        if cam not in obs:
            raise DataError(f"camera {cam!r} of embodiment {spec.name!r} missing; "
                            f"observation keys found: {sorted(obs)}",
                            episode=0, field=f"steps/observation/{cam}")
        img = np.asarray(obs[cam])
        if img.ndim != 4 or img.shape[-1] != 3 or img.dtype != np.uint8:
            raise DataError(f"expected uint8[T,H,W,3], got {img.dtype}{list(img.shape)}", episode=0,
                            field=f"steps/observation/{cam}")
        obs_spec[cam] = F.image(img.shape[1], img.shape[2], 3, encoding=image_encoding)
    obs_spec["state"] = F.tensor((spec.state_dim,), "float32")
    meta_spec = {"file_path": F.text(), "episode_id": F.text()}
    for k, v in (first.get("metadata") or {}).items():
        if k not in meta_spec:
            meta_spec[k] = _meta_leaf(k, v)
    step_spec = {
        "observation": obs_spec,
        "action": F.tensor((spec.action_dim,), "float32"),
        "language_instruction": F.text(),
        "reward": F.scalar("float32"),
        "discount": F.scalar("float32"),
        "is_first": F.scalar("bool"),
        "is_last": F.scalar("bool"),
        "is_terminal": F.scalar("bool"),
    }
    return {"steps": F.steps(step_spec), "episode_metadata": meta_spec}


def _prepare_episode(ep: Mapping[str, Any], index: int, spec: EmbodimentSpec, fspec: dict) -> dict:
    """Validate one input episode and turn it into the dict-of-stacked-arrays TFDS expects."""
    if "steps" not in ep:
        raise DataError(f"episode needs a 'steps' dict; keys found: {sorted(ep)}", episode=index)
    st = ep["steps"]
    obs = st.get("observation", {})
    action = np.asarray(st.get("action"), dtype=np.float32) if st.get("action") is not None else None
    if action is None:
        raise DataError(f"missing 'action'; step keys found: {sorted(st)}", episode=index, field="steps/action")
    if action.ndim != 2 or action.shape[1] != spec.action_dim:
        raise DataError(f"expected float32[T,{spec.action_dim}] (embodiment {spec.name!r}), "
                        f"got shape {list(action.shape)}",
                        episode=index, field="steps/action")
    T = action.shape[0]
    if T == 0:
        raise DataError("episode has no steps", episode=index)
    state = obs.get("state")
    if state is None:
        state = np.zeros((T, spec.state_dim), np.float32)
        if spec.state_dim:
            raise DataError(f"missing 'state'; observation keys found: {sorted(obs)}", episode=index,
                            field="steps/observation/state")
    state = np.asarray(state, np.float32)
    if state.shape != (T, spec.state_dim):
        raise DataError(f"expected float32[{T},{spec.state_dim}], got shape {list(state.shape)}", episode=index,
                        field="steps/observation/state")
    out_obs: dict[str, Any] = {"state": state}
    for cam, leaf in fspec["steps"]["feature"]["observation"].items():
        if cam == "state":
            continue
        if cam not in obs:
            raise DataError(f"camera missing; observation keys found: {sorted(obs)}", episode=index,
                            field=f"steps/observation/{cam}")
        img = np.asarray(obs[cam])
        want = (T, *leaf["shape"])
        if img.shape != want or img.dtype != np.uint8:
            raise DataError(f"expected uint8{list(want)}, got {img.dtype}{list(img.shape)}", episode=index,
                            field=f"steps/observation/{cam}")
        out_obs[cam] = img
    lang = st.get("language_instruction", ep.get("language_instruction", ""))
    if isinstance(lang, (str, bytes)):
        lang = [lang] * T
    lang = [x.decode() if isinstance(x, bytes) else str(x) for x in lang]
    if len(lang) != T:
        raise DataError(f"expected {T} instructions (one per step) or one string, got {len(lang)}", episode=index,
                        field="steps/language_instruction")

    def per_step(key, default, dtype):
        v = st.get(key)
        arr = np.asarray(default if v is None else v, dtype=dtype)
        if arr.shape != (T,):
            raise DataError(f"expected shape [{T}], got {list(arr.shape)}", episode=index, field=f"steps/{key}")
        return arr

    last = np.arange(T) == T - 1
    steps = {
        "observation": out_obs,
        "action": action,
        "language_instruction": lang,
        "reward": per_step("reward", last.astype(np.float32), np.float32),
        "discount": per_step("discount", np.ones(T, np.float32), np.float32),
        "is_first": per_step("is_first", np.arange(T) == 0, bool),
        "is_last": per_step("is_last", last, bool),
        "is_terminal": per_step("is_terminal", last, bool),
    }
    meta_in = dict(ep.get("metadata") or {})
    meta = {}
    for k, leaf in fspec["episode_metadata"].items():
        v = meta_in.get(k)
        if k == "episode_id" and v is None:
            v = str(index)
        if v is None:
            v = {"text": "", "scalar": 0}[leaf["kind"]] if leaf["kind"] in ("text", "scalar") else 0
        meta[k] = str(v) if leaf["kind"] == "text" else v
    return {"steps": steps, "episode_metadata": meta}


def check_dataset_name(dataset_name: str) -> None:
    """ValueError unless the name is one TFDS can read back (a dot or dash makes it miss its own shards)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", dataset_name):
        raise ValueError(f"dataset name {dataset_name!r}: RLDS/TFDS dataset names hold only letters, digits and "
                         f"'_' (e.g. {re.sub(r'[^A-Za-z0-9_]', '_', dataset_name)!r})")


def write_rlds(
    episodes: Iterable[Mapping[str, Any]] | Mapping[str, Iterable[Mapping[str, Any]]],
    out_dir: str | os.PathLike,
    dataset_name: str,
    spec: EmbodimentSpec,
    *,
    split: str = "train",
    version: str = "1.0.0",
    image_encoding: str = "png",
    episodes_per_shard: int = 64,
    description: str = "",
    overwrite: bool = False,
) -> Path:
    """Write numpy episodes as an RLDS TFDS dataset and return its directory ``out_dir/name/version``.

    ``episodes``: an iterable of episodes (all go to ``split``) or a dict ``{split: iterable}``.
    Each episode is::

        {"steps": {"observation": {"<camera>": uint8[T,H,W,3] for every camera of spec,
                                   "state": float32[T, spec.state_dim]},
                   "action": float32[T, spec.action_dim],
                   "language_instruction": str (whole episode) or list[str] (per step),
                   # optional: "reward" float[T] (default 1 on the last step), "discount" float[T] (1),
                   #           "is_first"/"is_last"/"is_terminal" bool[T] (first/last/last)
                  },
         "metadata": {"episode_id": str|int, "file_path": str, ...extra str/int/float/bool...}}  # optional

    Images are stored ``image_encoding`` ('png', the default, is lossless: the data reads back
    bit-identical; 'jpeg' is lossy, smaller and faster to decode, as most OXE datasets). The
    embodiment spec is saved as ``vla_embodiment.json`` beside the data so readers can standardize
    it without a registry entry. Raises :class:`DataError` naming the episode and field on bad input.
    """
    check_dataset_name(dataset_name)
    splits = dict(episodes) if isinstance(episodes, Mapping) else {split: episodes}
    state: dict[str, Any] = {}

    def examples(eps):
        for index, ep in enumerate(eps):
            if "fspec" not in state:
                state["fspec"] = episode_feature_spec(ep, spec, image_encoding)
            yield _prepare_episode(ep, index, spec, state["fspec"])

    return write_tfds(
        {name: examples(eps) for name, eps in splits.items()}, lambda: state["fspec"], out_dir, dataset_name,
        version=version, episodes_per_shard=episodes_per_shard, overwrite=overwrite,
        description=description
        or f"{dataset_name}: episodes of embodiment {spec.name!r} written by vla data_pipelines",
        extra_files={EMBODIMENT_FILE: json.dumps(spec.to_dict(), indent=2)},
    )


def write_tfds(
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    feature_spec: dict | Callable[[], dict],
    out_dir: str | os.PathLike,
    dataset_name: str,
    *,
    version: str = "1.0.0",
    episodes_per_shard: int = 64,
    overwrite: bool = False,
    description: str = "",
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Low level: write examples already shaped like ``feature_spec`` (a :mod:`features` spec, or a
    callable giving it once the first example was produced) as a TFDS directory; returns its path."""
    from tqdm import tqdm

    from data_pipelines.rlds.tf_loader import tensorflow, tensorflow_datasets

    tf, tfds = tensorflow(), tensorflow_datasets()

    if not dataset_name or "/" in dataset_name or "-" in dataset_name:
        raise ValueError(f"dataset_name must be a non-empty name without '/' or '-'; got {dataset_name!r}")
    root = Path(out_dir) / dataset_name / version
    if root.exists():
        if not overwrite and any(root.iterdir()):
            raise FileExistsError(f"{root} already exists and is not empty (pass overwrite=True to replace it)")
        shutil.rmtree(root)
    tmp_root = Path(out_dir) / f".{dataset_name}-{version}.incomplete"
    if tmp_root.exists():
        shutil.rmtree(tmp_root)
    tmp = tmp_root / dataset_name / version  # write_metadata infers name/version from the path
    tmp.mkdir(parents=True)

    features = None
    split_infos = []
    for split_name, examples in splits.items():
        shard_lengths: list[int] = []
        shard_files: list[Path] = []
        num_bytes = 0
        writer = None
        for index, example in enumerate(tqdm(examples, desc=f"write {dataset_name}/{split_name}", unit="ep",
                                             leave=False)):
            if features is None:
                fspec = feature_spec() if callable(feature_spec) else feature_spec
                features = F.to_tfds(fspec)
            try:
                data = features.serialize_example(example)
            except Exception as e:  # noqa: BLE001 - re-raised with the episode named
                raise DataError(f"cannot encode episode: {e}", episode=f"{split_name}[{index}]") from e
            if writer is None or shard_lengths[-1] >= episodes_per_shard:
                if writer is not None:
                    writer.close()
                shard_files.append(tmp / f"{dataset_name}-{split_name}.tfrecord-{len(shard_files):05d}")
                writer = tf.io.TFRecordWriter(str(shard_files[-1]))
                shard_lengths.append(0)
            writer.write(data)
            shard_lengths[-1] += 1
            num_bytes += len(data)
        if writer is not None:
            writer.close()
        if not shard_lengths:
            raise DataError(f"split {split_name!r} has no episodes")
        n = len(shard_files)
        for f in shard_files:
            f.rename(f"{f}-of-{n:05d}")
        template = tfds.core.ShardedFileTemplate(data_dir=tmp, template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
                                                 dataset_name=dataset_name, split=split_name,
                                                 filetype_suffix="tfrecord")
        split_infos.append(tfds.core.SplitInfo(name=split_name, shard_lengths=shard_lengths, num_bytes=num_bytes,
                                               filename_template=template))
    tfds.folder_dataset.write_metadata(data_dir=tmp, features=features, split_infos=split_infos, version=version,
                                       check_data=False, description=description or dataset_name)
    for fname, content in (extra_files or {}).items():
        (tmp / fname).write_text(content)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(root)
    shutil.rmtree(tmp_root, ignore_errors=True)
    return root
