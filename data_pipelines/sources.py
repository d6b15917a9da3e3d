"""Open a dataset by path/name and stream it as :class:`StandardEpisode` s.

Resolution (first that applies): an explicit key mapping (file or :class:`KeyMapping`); the
registry entry for ``name`` or the dataset's own TFDS name; a ``vla_embodiment.json`` written by
:func:`write_rlds`; a LeRobot directory (``meta/info.json``). Otherwise :class:`UnknownDatasetError`
lists the registered names.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from data_pipelines.errors import UnknownDatasetError
from data_pipelines.standardize import KeyMapping, StandardEpisode
from data_pipelines.standardized import StandardizedSource
from vla.types import EmbodimentSpec

__all__ = ["MemoryCachedSource", "StandardizedSource", "open_dataset", "writer_mapping"]

log = logging.getLogger(__name__)


def writer_mapping(spec: EmbodimentSpec) -> KeyMapping:
    """The key mapping of a dataset produced by :func:`data_pipelines.rlds.writer.write_rlds`."""
    return KeyMapping(
        name=spec.name, cameras={c: f"steps/observation/{c}" for c in spec.cameras}, action=("steps/action",),
        state=("steps/observation/state",) if spec.state_dim else (), gripper_dims=spec.gripper_dims,
        gripper_convention="raw", instruction="steps/language_instruction" if spec.requires_prompt else None,
        action_space=spec.action_space, state_space=spec.state_space, action_is_delta=spec.action_is_delta,
        control_hz=spec.control_hz, execute_horizon=spec.execute_horizon, drop_blank_cameras=False,
    )


class MemoryCachedSource:
    """A :class:`StandardizedSource` whose decoded, standardized episodes stay in RAM once read (up to
    ``budget_mb``), so later epochs of a small dataset skip TFRecord/PNG/video decoding. What it yields is
    identical either way; episodes are shared read-only (consumers get a shallow copy of each dict)."""

    def __init__(self, source: StandardizedSource, budget_mb: float):
        self.source = source
        self.budget = int(budget_mb * 2**20)
        self.used = 0
        self.cache: dict[int, StandardEpisode] = {}

    def __getattr__(self, name: str):  # spec, dir, raw, key, episode_order, skipped, ...
        if name == "source":  # not set yet (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self.source, name)

    def __len__(self) -> int:
        return len(self.source)

    def iter_episodes(self, seed: int | None = None, skip: int = 0, keep=None,
                      with_images: bool = True) -> Iterator[StandardEpisode]:
        order = self.source.episode_order(seed)
        wanted = [order[p] for p in range(skip, len(order)) if keep is None or keep(p)]
        if with_images and all(i in self.cache for i in wanted):
            for i in wanted:
                yield dict(self.cache[i])  # type: ignore[misc]
            return
        for ep in self.source.iter_episodes(seed=seed, skip=skip, keep=keep, with_images=with_images):
            index = ep["_index"]  # type: ignore[typeddict-item]
            if with_images and index not in self.cache:
                size = _nbytes(ep)
                if self.used + size <= self.budget:
                    self.cache[index] = dict(ep)  # type: ignore[assignment]
                    self.used += size
            yield ep


def _nbytes(obj) -> int:
    if hasattr(obj, "nbytes"):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 64


def _load_mapping(mapping) -> KeyMapping:
    if isinstance(mapping, KeyMapping):
        return mapping
    if isinstance(mapping, dict):
        return KeyMapping.from_dict(mapping)
    return KeyMapping.load(mapping)


def open_dataset(path: str | os.PathLike, *, name: str | None = None, mapping=None, split: str = "train",
                 data_dir: str | os.PathLike | None = None, on_error: str = "raise") -> StandardizedSource:
    """Open an RLDS TFDS directory (or LeRobot directory) and standardize it.

    ``path``: the ``<name>/<version>`` dir, the ``<name>`` dir, or a name under ``data_dir``.
    ``name``: registry name to use (default: the dataset's own TFDS name). ``mapping``: a
    :class:`KeyMapping`, dict, or JSON/YAML file for unregistered data.
    """
    from data_pipelines import oxe
    from data_pipelines.rlds import fs

    remote = fs.is_url(path) or (fs.is_url(data_dir) and not Path(path).exists())
    p = Path(data_dir) / str(path) if data_dir is not None and not Path(path).exists() else Path(path)
    if not remote and (p / "meta" / "info.json").is_file():
        from data_pipelines.lerobot import LeRobotSource

        return LeRobotSource(p, split=split,
                             mapping=_load_mapping(mapping) if mapping is not None else None).standardized()
    if name is not None and mapping is None:
        oxe.get_entry(name)  # fail fast with the list of known names, before touching TensorFlow
    from data_pipelines.rlds.reader import RLDSSource
    from data_pipelines.rlds.writer import EMBODIMENT_FILE

    raw = RLDSSource(path, split=split, data_dir=data_dir, on_error=on_error)
    key_base = f"rlds:{raw.dir if fs.is_url(raw.dir) else raw.dir.resolve()}:{split}"
    if mapping is not None:
        m = _load_mapping(mapping)
        return StandardizedSource(raw, m, None, f"{key_base}:{json.dumps(m.to_dict(), sort_keys=True)}")
    emb_file = fs.join(raw.dir, EMBODIMENT_FILE)
    if name is None and fs.isfile(emb_file):
        spec = EmbodimentSpec.from_dict(json.loads(fs.read_text(emb_file)))
        return StandardizedSource(raw, writer_mapping(spec), spec, f"{key_base}:writer:{spec.name}")
    lookup = name or raw.name
    try:
        entry = oxe.get_entry(lookup)
    except UnknownDatasetError as e:
        raise UnknownDatasetError(f"dataset {lookup!r} is not registered and no mapping was given; "
                                  f"registered: {oxe.known_datasets()}; for other data pass a key mapping file "
                                  "(JSON/YAML) with --mapping (Python: DatasetConfig(mapping=...))",
                                  file=str(raw.dir)) from e
    return StandardizedSource(raw, entry.mapping, entry.spec, f"{key_base}:oxe:{entry.name}")
