"""Read a prepared RLDS/TFDS directory episode by episode, as nested numpy dicts.

Metadata and the feature tree come from ``tfds.builder_from_directory``; records are streamed shard
by shard with ``tf.data.TFRecordDataset`` so each episode is attributed to its file (for errors),
the order is deterministic (optionally shard-shuffled by seed) and a position can be resumed.
Splits are TFDS split strings: ``train``, ``val``, ``train[:90%]``, ``train[90%:]``, ``train[10:20]``,
``train+val``. TensorFlow is imported lazily.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_pipelines.errors import DataError
from data_pipelines.rlds import fs

log = logging.getLogger(__name__)


def resolve_dataset_dir(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path | str:
    """Find the ``<name>/<version>`` directory holding ``dataset_info.json`` (local, or a ``gs://``-style URL).

    Accepts that directory itself, the ``<name>`` directory (picks the highest version), or a name
    looked up under ``data_dir``.
    """
    candidates = [fs.as_path(path)]
    if data_dir is not None:
        candidates.insert(0, fs.join(data_dir, str(path)))
    for p in candidates:
        try:
            return fs.version_dir(p)
        except FileNotFoundError:
            continue
    where = " or ".join(str(c) for c in candidates)
    hint = ""
    for c in candidates:
        if fs.isdir(c):
            hint = f"; it contains: {fs.listdir(c)[:20]}"
            break
    raise FileNotFoundError(f"no TFDS dataset (dataset_info.json) at {where}{hint}")


@dataclass(frozen=True)
class _Split:
    """What the reader needs of a TFDS split (``tfds.core.SplitInfo`` has the same attributes)."""

    name: str
    shard_lengths: list[int]
    filenames: list[str]

    @property
    def num_examples(self) -> int:
        return sum(self.shard_lengths)


def _remote_info(d: str):
    """(name, features, splits) of a TFDS directory at a URL, read from its JSON files through ``tf.io.gfile``."""
    import json

    from data_pipelines.rlds.tf_loader import tensorflow_datasets

    tfds = tensorflow_datasets()
    info = json.loads(fs.read_text(fs.join(d, "dataset_info.json")))
    features = tfds.features.FeatureConnector.from_json(json.loads(fs.read_text(fs.join(d, "features.json"))))
    name, fmt = info["name"], info.get("fileFormat", "tfrecord")
    splits = {}
    for sp in info.get("splits", []):
        lengths = [int(x) for x in sp.get("shardLengths", [])]
        n = len(lengths)
        template = sp.get("filepathTemplate", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}")
        files = [template.replace("{DATASET}", name).replace("{SPLIT}", sp["name"]).replace("{FILEFORMAT}", fmt)
                 .replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{n:05d}") for i in range(n)]
        splits[sp["name"]] = _Split(sp["name"], lengths, files)
    return name, features, splits


def _to_numpy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _to_numpy(v) for k, v in node.items()}
    if isinstance(node, bytes):
        return node.decode("utf-8", errors="replace")
    return node


def _stack_steps(steps: Any) -> dict:
    """A sequence of per-step nested dicts -> one nested dict of stacked arrays (text -> list[str])."""
    steps = [steps[i] for i in range(len(steps))]
    if not steps:
        return {}

    def stack(items):
        first = items[0]
        if isinstance(first, dict):
            return {k: stack([it[k] for it in items]) for k in first}
        if isinstance(first, (bytes, str)):
            return [x.decode("utf-8", errors="replace") if isinstance(x, bytes) else x for x in items]
        return np.stack([np.asarray(x) for x in items])

    return stack(steps)


@dataclass(frozen=True)
class EpisodeRef:
    """Where an episode lives: the shard file and its record index in that file."""

    file: str
    record: int
    index: int  # position within the selected split (e.g. within ``train[60%:]``)
    split: str = ""  # underlying split name
    split_index: int = 0  # index within that whole split

    def describe(self) -> str:
        return f"{self.split}[{self.split_index}]"


class RLDSSource:
    """An RLDS TFDS directory (one split selection) streamed as numpy episodes.

    Each episode is ``{"steps": {...stacked arrays [T, ...]...}, "episode_metadata": {...},
    "_ref": EpisodeRef}`` mirroring the dataset's own feature tree.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train", data_dir: str | os.PathLike | None = None,
                 on_error: str = "raise"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}")
        self.dir = resolve_dataset_dir(path, data_dir)
        self.split = split
        self.on_error = on_error
        self.skipped = 0  # episodes skipped because they could not be read (on_error='skip')
        self._builder = None
        self._remote = None  # (name, features, splits) of a directory at a URL
        self._refs: list[tuple[str, int, str, int]] | None = None

    # -- metadata ------------------------------------------------------------------------------
    @property
    def builder(self):
        if self._builder is None:
            from data_pipelines.rlds.tf_loader import tensorflow_datasets

            tfds = tensorflow_datasets()

            try:
                self._builder = tfds.builder_from_directory(str(self.dir))
            except Exception as e:  # noqa: BLE001
                raise DataError(f"cannot open TFDS metadata: {e}",
                                file=str(fs.join(self.dir, "dataset_info.json"))) from e
        return self._builder

    def _meta(self):
        """(name, features, splits): tfds' own metadata for local directories, the JSON files for URLs (streamed
        through ``tf.io.gfile``; ``tfds.builder_from_directory`` does not know every gfile scheme)."""
        if fs.is_url(self.dir):
            if self._remote is None:
                try:
                    self._remote = _remote_info(str(self.dir))
                except Exception as e:  # noqa: BLE001
                    raise DataError(f"cannot open TFDS metadata: {e}",
                                    file=str(fs.join(self.dir, "dataset_info.json"))) from e
            return self._remote
        info = self.builder.info
        return info.name, info.features, info.splits

    @property
    def name(self) -> str:
        return self._meta()[0]

    @property
    def features(self):
        return self._meta()[1]

    def feature_keys(self) -> list[str]:
        """All leaf feature paths, e.g. ``steps/observation/image``."""
        out = []

        def walk(feat, prefix):
            from data_pipelines.rlds.tf_loader import tensorflow_datasets

            tfds = tensorflow_datasets()

            if isinstance(feat, tfds.features.Dataset):
                walk(feat.feature, prefix)
            elif isinstance(feat, tfds.features.FeaturesDict):
                for k, v in feat.items():
                    walk(v, f"{prefix}/{k}" if prefix else k)
            else:
                out.append(prefix)

        walk(self.features, "")
        return out

    def _episode_refs(self) -> list[tuple[str, int, str, int]]:
        """(file, record, split, index in split) for every episode of the split selection, in order."""
        if self._refs is None:
            from data_pipelines.rlds.tf_loader import tensorflow_datasets

            tfds = tensorflow_datasets()

            splits = self._meta()[2]
            try:
                instructions = tfds.core.ReadInstruction.from_spec(self.split).to_absolute(splits)
            except (KeyError, ValueError, AssertionError) as e:
                raise DataError(f"bad split {self.split!r} (splits here: {sorted(splits.keys())}): {e}",
                                file=str(self.dir)) from e
            refs: list[tuple[str, int, str, int]] = []
            for ins in instructions:
                info = splits[ins.splitname]
                all_refs = [(str(fs.join(self.dir, fn)), r)
                            for fn, n in zip(info.filenames, info.shard_lengths) for r in range(n)]
                lo = ins.from_ or 0
                hi = ins.to if ins.to is not None else len(all_refs)
                refs.extend((f, r, ins.splitname, lo + j) for j, (f, r) in enumerate(all_refs[lo:hi]))
            self._refs = refs
        return self._refs

    def __len__(self) -> int:
        return len(self._episode_refs())

    def fingerprint(self) -> str:
        """Shard files of the selection with sizes and mtimes (changes when the data changes)."""
        files = sorted({r[0] for r in self._episode_refs()})
        parts = []
        for f in files:
            size, mtime = fs.size_mtime(f)
            parts.append(f"{fs.name(f)}:{size}:{mtime}")
        return f"{self.split}|{len(self)}|" + "|".join(parts)

    # -- reading -------------------------------------------------------------------------------
    def episode_order(self, seed: int | None = None) -> list[int]:
        """Episode indices in reading order: by shard, shard order shuffled by ``seed`` if given."""
        refs = self._episode_refs()
        files: list[str] = []
        for f, *_ in refs:
            if not files or files[-1] != f:
                files.append(f)
        if seed is not None:
            rng = np.random.default_rng(seed)
            files = [files[i] for i in rng.permutation(len(files))]
        by_file: dict[str, list[int]] = {}
        for i, (f, *_) in enumerate(refs):
            by_file.setdefault(f, []).append(i)
        return [i for f in files for i in by_file[f]]

    def _skip_image_decoders(self):
        from data_pipelines.rlds.tf_loader import tensorflow_datasets

        tfds = tensorflow_datasets()

        def walk(feat):
            if isinstance(feat, tfds.features.Dataset):
                sub = walk(feat.feature)
                return sub
            if isinstance(feat, tfds.features.FeaturesDict):
                out = {k: walk(v) for k, v in feat.items()}
                return {k: v for k, v in out.items() if v is not None} or None
            if isinstance(feat, tfds.features.Image):
                return tfds.decode.SkipDecoding()
            return None

        return walk(self.features)

    def iter_episodes(self, seed: int | None = None, skip: int = 0, keep=None,
                      decode_images: bool = True) -> Iterator[dict]:
        """Yield episodes in :meth:`episode_order`; ``skip`` resumes after that many episodes.

        ``keep(position) -> bool`` selects positions of the order (e.g. one data-loader worker's
        share) without decoding the others; ``decode_images=False`` leaves images as encoded bytes.
        """
        from data_pipelines.rlds.tf_loader import tensorflow

        tf = tensorflow()

        refs = self._episode_refs()
        order = [o for p, o in enumerate(self.episode_order(seed)) if p >= skip and (keep is None or keep(p))]
        features = self.features
        decoders = None if decode_images else self._skip_image_decoders()
        i = 0
        while i < len(order):
            file = refs[order[i]][0]
            group = []
            while i < len(order) and refs[order[i]][0] == file:
                group.append(order[i])
                i += 1
            wanted = {refs[g][1]: g for g in group}
            name = {refs[g][1]: f"{refs[g][2]}[{refs[g][3]}]" for g in group}
            last_record = max(wanted)
            if not fs.exists(file):
                raise DataError("shard file listed in dataset_info.json is missing", file=file)
            record = -1
            it = iter(tf.data.TFRecordDataset(file))
            done: set[int] = set()
            while record < last_record:
                record += 1
                try:
                    raw = next(it)
                except StopIteration:
                    raise DataError(f"shard ended after {record} records but dataset_info.json lists more "
                                    "(truncated file?)", file=file,
                                    episode=name.get(record, f"record {record}")) from None
                except tf.errors.OpError as e:
                    msg = f"corrupted or truncated record: {e.message.splitlines()[0] if e.message else e}"
                    if self.on_error == "skip":
                        lost = [g for r, g in wanted.items() if r >= record and r not in done]
                        self.skipped += len(lost)
                        log.warning("skipping %d episode(s) of %s from record %d: %s", len(lost), file, record, msg)
                        break
                    raise DataError(msg, file=file, episode=name.get(record, f"record {record}")) from e
                if record not in wanted:
                    continue
                g = wanted[record]
                done.add(record)
                try:
                    ex = features.deserialize_example_np(raw.numpy(), decoders=decoders)
                    ep = _to_numpy({k: v for k, v in ex.items() if k != "steps"})
                    ep["steps"] = _stack_steps(ex["steps"]) if "steps" in ex else {}
                except Exception as e:  # noqa: BLE001
                    if self.on_error == "skip":
                        self.skipped += 1
                        log.warning("skipping episode %s of %s: cannot decode: %s", name[record], file, e)
                        continue
                    raise DataError(f"cannot decode record {record}: {e}", file=file, episode=name[record]) from e
                ep["_ref"] = EpisodeRef(file=file, record=record, index=g, split=refs[g][2], split_index=refs[g][3])
                yield ep
