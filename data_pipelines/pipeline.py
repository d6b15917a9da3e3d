"""The full pipeline: sources -> standardize -> normalize -> chunk -> images -> ``TrainingSample`` s.

Weighted mixtures of datasets (each with its own embodiment and stats), deterministic given the
seed, and resumable: :meth:`Pipeline.state_dict` is a small JSON-able position (epoch, episode
pointer, open episodes with how many of their steps were served, RNG state) that
:meth:`Pipeline.load_state_dict` restores exactly.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from data_pipelines.errors import DataError
from data_pipelines.mixture_stats import pool_embodiments
from data_pipelines.stats import NormConfig, get_stats
from data_pipelines.transforms import AugmentConfig, Chunk, ImageTransform, Normalize
from vla.preprocessing import check_image_mode
from vla.types import EmbodimentSpec, TrainingSample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset of a mixture: a TFDS/LeRobot directory (or name under ``data_dir``)."""

    path: str
    name: str | None = None  # registry name if the directory's own name is not the registered one
    mapping: str | None = None  # JSON/YAML key mapping for unregistered data
    split: str = "train"
    weight: float = 1.0
    data_dir: str | None = None
    cameras: tuple[str, ...] | None = None  # keep only these standardized cameras, in this order


@dataclass(frozen=True)
class PipelineConfig:
    datasets: tuple[DatasetConfig, ...]
    horizon: int = 16  # action chunk length (the model's action_horizon)
    history: int = 1  # observation (state) history length; >1 adds ``state_history``
    action_delta_timestamps: tuple[float, ...] | None = None  # LeRobot-style chunk times (s); sets horizon
    image_size: tuple[int, int] | None = (224, 224)  # the model's VLAConfig.image_size; None keeps the source size
    image_mode: str = "resize"  # the model's VLAConfig.image_mode (vla.preprocessing.resize_image)
    train: bool = True  # shuffling + augmentation + endless epochs
    augment: AugmentConfig | None = AugmentConfig()  # None: no augmentation even when training
    norm: NormConfig = NormConfig()
    seed: int = 0
    buffer_episodes: int = 4  # episodes open at once per dataset (samples interleave across them)
    on_error: str = "raise"  # or "skip": unreadable episodes are skipped, counted and logged
    cache_mb: float = 0.0  # keep up to this many MB of decoded episodes in RAM per pipeline (0 = decode every epoch)
    # draw dataset i with probability proportional to weight_i x its step count (Octo's/OpenVLA's default for their
    # named mixtures, whose published weights are relative to dataset size); False: proportional to weight_i alone
    balance_weights: bool = False

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ValueError("PipelineConfig needs at least one dataset")
        if any(d.weight <= 0 for d in self.datasets):
            raise ValueError(f"dataset weights must be > 0; got {[d.weight for d in self.datasets]}")
        check_image_mode(self.image_mode, "PipelineConfig.image_mode")

    def replace(self, **kw) -> PipelineConfig:
        return dataclasses.replace(self, **kw)

    @classmethod
    def for_model(cls, model_config, datasets: tuple[DatasetConfig, ...], **kw) -> PipelineConfig:
        """A pipeline whose chunks and images match ``model_config`` (a ``VLAConfig``): horizon, image size/mode."""
        return cls(datasets=datasets, horizon=model_config.action_horizon, image_size=tuple(model_config.image_size),
                   image_mode=model_config.image_mode, **kw)

    def check_model(self, model_config) -> None:
        """ValueError naming each field where this pipeline and ``model_config`` (a ``VLAConfig``) disagree, so the
        frames the model trains on are the frames ``predict`` gives it (image size and mode) and chunks fit."""
        diffs = []
        if self.image_size is not None and tuple(self.image_size) != tuple(model_config.image_size):
            diffs.append(f"image_size {tuple(self.image_size)} vs model {tuple(model_config.image_size)}")
        if self.image_mode != model_config.image_mode:
            diffs.append(f"image_mode {self.image_mode!r} vs model {model_config.image_mode!r}")
        if self.action_delta_timestamps is None and self.horizon != model_config.action_horizon:
            diffs.append(f"horizon {self.horizon} vs model action_horizon {model_config.action_horizon}")
        if diffs:
            raise ValueError("data pipeline does not match the model: " + "; ".join(diffs))


def open_source(dc: DatasetConfig, on_error: str = "raise"):
    from data_pipelines.sources import open_dataset

    return open_dataset(dc.path, name=dc.name, mapping=dc.mapping, split=dc.split, data_dir=dc.data_dir,
                        on_error=on_error)


@dataclass
class _Open:
    pos: int
    consumed: int
    ep: dict = field(repr=False)
    perm: np.ndarray = field(repr=False)


class EpisodeStream:
    """Samples of one dataset: a buffer of open episodes, steps drawn from them at random (train)."""

    def __init__(self, source, spec: EmbodimentSpec, cfg: PipelineConfig, index: int, worker: tuple[int, int] = (0, 1)):
        self.source, self.spec, self.cfg, self.index = source, spec, cfg, index
        self.worker_id, self.num_workers = worker
        self.normalize = Normalize(spec)
        offsets = None
        if cfg.action_delta_timestamps is not None:
            from data_pipelines.lerobot import delta_timestamps_to_offsets

            fps = float(getattr(source.raw, "fps", 0.0) or spec.control_hz)
            offsets = tuple(int(o) for o in delta_timestamps_to_offsets(cfg.action_delta_timestamps, fps))
        self.chunk = Chunk(len(offsets) if offsets else cfg.horizon, cfg.history, offsets)
        self.images = ImageTransform(cfg.image_size, cfg.train, cfg.augment, cfg.image_mode) if cfg.image_size else None
        self.epoch = 0
        self.next_pos = 0
        self.open: list[_Open] = []
        self.rng = np.random.default_rng([cfg.seed, index, self.worker_id, 1])
        if len(source) < self.num_workers:
            log.warning("%s has %d episodes for %d data-loader workers: each worker reads all of them",
                        source.dir, len(source), self.num_workers)
        self._it: Iterator | None = None
        self._inverse: dict[int, int] = {}
        self.exhausted = False

    # -- episode reading ------------------------------------------------------------------
    def _order_seed(self) -> int | None:
        return self.cfg.seed * 100003 + self.epoch if self.cfg.train else None

    def _keep(self, pos: int) -> bool:
        if len(self.source) < self.num_workers:  # too few episodes to split: every worker reads all
            return True
        return pos % self.num_workers == self.worker_id

    def _start_epoch_iter(self, skip: int, keep=None) -> Iterator:
        seed = self._order_seed()
        order = self.source.episode_order(seed)
        self._inverse = {ep_idx: p for p, ep_idx in enumerate(order)}
        return self.source.iter_episodes(seed=seed, skip=skip, keep=keep or self._keep)

    def _open_episode(self, pos: int, ep: dict, consumed: int = 0) -> _Open:
        ep = self.normalize.inputs(ep)
        T = ep["actions"].shape[0]
        if self.cfg.train:
            perm = np.random.default_rng([self.cfg.seed, self.index, self.epoch, pos, 2]).permutation(T)
        else:
            perm = np.arange(T)
        return _Open(pos=pos, consumed=consumed, ep=ep, perm=perm)

    def _fill(self) -> None:
        while len(self.open) < max(1, self.cfg.buffer_episodes if self.cfg.train else 1):
            if self._it is None:
                self._it = self._start_epoch_iter(self.next_pos)
            ep = next(self._it, None)
            if ep is None:
                if self.open:
                    return
                if not self.cfg.train:
                    self.exhausted = True
                    return
                if self.next_pos == 0:
                    raise DataError(f"no readable episodes for worker {self.worker_id}/{self.num_workers}",
                                    file=str(self.source.dir))
                self.epoch += 1
                self.next_pos = 0
                self._it = None
                continue
            pos = self._inverse[ep.pop("_index")]
            self.next_pos = pos + 1
            self.open.append(self._open_episode(pos, ep))

    # -- samples --------------------------------------------------------------------------
    def next_sample(self, with_images: bool = True) -> TrainingSample | None:
        self._fill()
        if not self.open:
            return None
        i = int(self.rng.integers(len(self.open))) if self.cfg.train else 0
        o = self.open[i]
        t = int(o.perm[o.consumed])
        o.consumed += 1
        if o.consumed >= len(o.perm):
            self.open.pop(i)
        return self._make_sample(o, t, with_images)

    def _make_sample(self, o: _Open, t: int, with_images: bool = True) -> TrainingSample:
        ep = o.ep
        actions, pad = self.chunk.actions_at(ep["actions"], t)
        rng = np.random.default_rng([self.cfg.seed, self.index, self.epoch, o.pos, t, 3]) if self.cfg.train else None
        images = {}
        for cam, frames in ep["images"].items():
            if cam not in self.spec.cameras or not with_images:
                continue
            img = frames[t]
            images[cam] = self.images(img, rng) if self.images else img
        sample: dict[str, Any] = {
            "images": images, "state": ep["state"][t].astype(np.float32), "prompt": ep["prompt"],
            "actions": actions, "action_pad": pad, "embodiment": self.spec.name,
        }
        if self.cfg.history > 1:
            sample["state_history"], sample["state_history_pad"] = self.chunk.state_history(ep["state"], t)
        if not with_images:
            sample["_images_skipped"] = True
        return sample  # type: ignore[return-value]

    # -- position -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "next_pos": self.next_pos, "exhausted": self.exhausted,
                "open": [[o.pos, o.consumed] for o in self.open], "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.next_pos = int(state["epoch"]), int(state["next_pos"])
        self.exhausted = bool(state.get("exhausted", False))
        self.rng.bit_generator.state = state["rng"]
        wanted = {int(p): int(c) for p, c in state["open"]}
        self.open = []
        if wanted:
            it = self._start_epoch_iter(min(wanted), keep=lambda p: p in wanted)
            by_pos = {}
            for ep in it:
                pos = self._inverse[ep.pop("_index")]
                by_pos[pos] = self._open_episode(pos, ep, wanted[pos])
            self.open = [by_pos[int(p)] for p, _ in state["open"]]
        self._it = None


class Pipeline:
    """Iterate ``TrainingSample`` s from a (weighted) mixture of datasets."""

    def __init__(self, cfg: PipelineConfig, worker: tuple[int, int] = (0, 1), progress: bool = True):
        self.cfg = cfg
        self.sources = [open_source(dc, cfg.on_error) for dc in cfg.datasets]
        self.specs: list[EmbodimentSpec] = []
        steps = []
        for dc, src in zip(cfg.datasets, self.sources):
            stats = get_stats(src, cfg.norm, progress=progress)
            steps.append(stats.steps)
            spec = src.spec.with_stats(stats.state if stats.state.dim else None, stats.action)
            if dc.cameras:
                missing = [c for c in dc.cameras if c not in spec.cameras]
                if missing:
                    raise ValueError(f"{dc.path}: cameras {missing} not in embodiment {spec.name!r} "
                                     f"(it has {list(spec.cameras)})")
                spec = dataclasses.replace(spec, cameras=tuple(dc.cameras))
            self.specs.append(spec)
        w = np.array([d.weight for d in cfg.datasets], np.float64)
        if cfg.balance_weights:
            w = w * np.maximum(np.array(steps, np.float64), 1.0)
        self.weights = w / w.sum()  # probability of drawing each dataset
        # datasets of one embodiment share pooled stats, weighted as the mixture is (data_pipelines.mixture_stats)
        self.specs = pool_embodiments(self.specs, self.sources, list(self.weights),
                                      [d.path for d in cfg.datasets], cfg.norm, progress=progress)
        if cfg.cache_mb > 0:
            from data_pipelines.sources import MemoryCachedSource

            budget = cfg.cache_mb / len(self.sources)
            self.sources = [MemoryCachedSource(s, budget) for s in self.sources]  # type: ignore[misc]
        self.streams = [EpisodeStream(s, sp, cfg, i, worker) for i, (s, sp) in enumerate(zip(self.sources, self.specs))]
        self.rng = np.random.default_rng([cfg.seed, worker[0], 0])
        self.count = 0
        # sample index -> whether to decode/augment its images; a data-parallel rank that reads the shared
        # stream only to keep its place skips the image work for the other ranks' samples (they are marked
        # ``_images_skipped``). The stream itself (order, chunks, later samples' augmentation) is unchanged.
        self.images_for: Callable[[int], bool] | None = None

    @property
    def embodiments(self) -> dict[str, EmbodimentSpec]:
        """Embodiment specs with norm stats, by name (what the policy needs)."""
        return {s.name: s for s in self.specs}

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.sources)

    def __iter__(self) -> Iterator[TrainingSample]:
        while True:
            live = [i for i, s in enumerate(self.streams) if not s.exhausted]
            if not live:
                return
            p = self.weights[live] / self.weights[live].sum()
            i = live[int(self.rng.choice(len(live), p=p))] if len(live) > 1 else live[0]
            sample = self.streams[i].next_sample(self.images_for is None or self.images_for(self.count))
            if sample is None:
                continue
            self.count += 1
            yield sample

    def state_dict(self) -> dict:
        return {"count": self.count, "rng": self.rng.bit_generator.state,
                "streams": [s.state_dict() for s in self.streams]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["streams"]) != len(self.streams):
            raise ValueError(f"state has {len(state['streams'])} dataset streams, pipeline has {len(self.streams)}")
        self.count = int(state["count"])
        self.rng.bit_generator.state = state["rng"]
        for s, st in zip(self.streams, state["streams"]):
            s.load_state_dict(st)
