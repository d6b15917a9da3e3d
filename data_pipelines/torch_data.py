"""Torch side: an ``IterableDataset`` over :class:`Pipeline` and a DataLoader with workers/prefetch.

Each worker reads its own share of episodes (positions ``p % num_workers == worker_id``) with its
own seed stream, so no two workers serve the same episode. Batches are lists of ``TrainingSample``
(pass them to ``policy.collate``), or collated in the worker when ``collate_fn`` is given.
Every sample carries ``_worker`` and ``_position`` (that worker's pipeline state after it); keep the
latest per worker (:class:`PositionTracker`) to resume exactly with the same ``num_workers``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch.utils.data as tud

from data_pipelines.pipeline import Pipeline, PipelineConfig


class VLAIterableDataset:
    """Factory-built in each worker; ``state`` maps worker id -> pipeline position to resume from."""

    def __init__(self, cfg: PipelineConfig, state: dict[int, dict] | None = None,
                 images_for: Callable[[int], bool] | None = None):
        """``images_for(sample_index) -> bool`` (in-process loading only): build images only for the samples it
        accepts; the others come back without images, marked ``_images_skipped`` (see :func:`rank_slice`)."""
        self.cfg = cfg
        self.state = {int(k): v for k, v in (state or {}).items()}
        main = Pipeline(cfg)  # computes/caches norm stats once, in the main process
        self.embodiments = main.embodiments
        self._ds = _TorchIterable(cfg, self.state, images_for)

    @property
    def dataset(self):
        return self._ds

    def dataloader(self, batch_size: int, num_workers: int = 2, prefetch_factor: int = 4,
                   collate_fn: Callable[[list], Any] | None = None, pin_memory: bool = False):
        """A ``torch.utils.data.DataLoader`` yielding batches of ``batch_size`` samples."""
        from torch.utils.data import DataLoader

        kw: dict[str, Any] = {}
        if num_workers > 0 and self._ds.images_for is not None:
            raise ValueError("images_for needs in-process loading (num_workers=0): with workers the batch order "
                             "across workers is not the sample order")
        if num_workers > 0:
            # spawn, not fork: a worker forked after TensorFlow started its threads can abort on an absl mutex
            kw.update(prefetch_factor=prefetch_factor, persistent_workers=True, multiprocessing_context="spawn")
        return DataLoader(self._ds, batch_size=batch_size, num_workers=num_workers,
                          collate_fn=collate_fn or _as_list, pin_memory=pin_memory, **kw)


def _as_list(batch: list) -> list:
    return batch


def rank_slice(rank: int, world: int, batch_size: int, accum: int = 1) -> Callable[[int], bool]:
    """For ``images_for``: the samples data-parallel ``rank`` of ``world`` trains on when every rank reads the
    same stream in batches of ``batch_size`` and step ``s`` uses batches ``s*accum*world + a*world + rank``."""

    def wanted(index: int) -> bool:
        return (index // batch_size) % (accum * world) % world == rank

    return wanted


class _TorchIterable(tud.IterableDataset):
    def __init__(self, cfg: PipelineConfig, state: dict[int, dict], images_for: Callable[[int], bool] | None = None):
        super().__init__()
        self.cfg, self.state, self.images_for = cfg, state, images_for

    def __iter__(self) -> Iterator[dict]:
        info = tud.get_worker_info()
        wid, n = (info.id, info.num_workers) if info is not None else (0, 1)
        pipe = Pipeline(self.cfg, worker=(wid, n), progress=False)
        if wid in self.state:
            pipe.load_state_dict(self.state[wid])
        pipe.images_for = self.images_for
        for sample in pipe:
            sample["_worker"] = wid  # type: ignore[typeddict-unknown-key]
            sample["_position"] = pipe.state_dict()  # type: ignore[typeddict-unknown-key]
            yield sample


class PositionTracker:
    """Remembers the latest position of each worker from consumed batches (for checkpoints)."""

    def __init__(self) -> None:
        self.positions: dict[int, dict] = {}

    def update(self, batch: list) -> None:
        for s in batch:
            if isinstance(s, dict) and "_position" in s:
                self.positions[int(s["_worker"])] = s["_position"]

    def state_dict(self) -> dict[int, dict]:
        return dict(self.positions)
