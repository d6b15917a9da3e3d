"""A raw episode source plus the key mapping that standardizes it (shared by the RLDS and LeRobot readers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from data_pipelines.standardize import KeyMapping, StandardEpisode
from vla.types import EmbodimentSpec


class StandardizedSource:
    """A raw episode source plus the mapping that standardizes it; yields :class:`StandardEpisode`.

    ``key`` identifies the data (path, split and mapping) for stats caching.
    """

    def __init__(self, raw, mapping: KeyMapping, spec: EmbodimentSpec | None, key: str, kind: str = "rlds"):
        self.raw = raw
        self.mapping = mapping
        self._spec = spec
        self.key = key
        self.kind = kind

    @property
    def name(self) -> str:
        return self.mapping.name

    @property
    def dir(self) -> Path | str:
        """The data directory: a ``Path``, or a URL string for remote data (``gs://...``)."""
        return self.raw.dir

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def spec(self) -> EmbodimentSpec:
        """The embodiment (dims from the registry/writer, else measured on the first episode)."""
        if self._spec is None:
            ep = next(self.iter_episodes())
            h, w = next(iter(ep["images"].values())).shape[1:3] if ep["images"] else (None, None)
            self._spec = self.mapping.embodiment(ep["state"].shape[1], ep["actions"].shape[1],
                                                 (h, w) if h else None)
        return self._spec

    def episode_order(self, seed: int | None = None) -> list[int]:
        return self.raw.episode_order(seed)

    def iter_episodes(self, seed: int | None = None, skip: int = 0, keep=None,
                      with_images: bool = True) -> Iterator[StandardEpisode]:
        """Standardized episodes in :meth:`episode_order` (see ``RLDSSource.iter_episodes``)."""
        for ep in self.raw.iter_episodes(seed=seed, skip=skip, keep=keep, decode_images=with_images):
            out = self.mapping.apply(ep, self._spec, with_images=with_images)
            out["_index"] = ep["_ref"].index  # type: ignore[typeddict-unknown-key]
            yield out

    def fingerprint(self) -> str:
        """Identifies the data itself: the split's shard names, sizes and mtimes."""
        return self.raw.fingerprint()

    @property
    def skipped(self) -> int:
        return getattr(self.raw, "skipped", 0)
