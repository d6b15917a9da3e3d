"""VLAPolicy: the model behind the shared ``Policy`` interface.

Callers deal in robot units: ``predict`` validates observations, brings them to model tensors through
:mod:`vla.preprocessing` (the path training uses too), samples normalized action chunks and unnormalizes
them. Batch collation lives in :mod:`vla.collate`, the checkpoint directory format in :mod:`vla.checkpoint`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vla.collate import collate
from vla.config import VLAConfig
from vla.model.vla_model import VLAModel
from vla.preprocessing import normalize_actions, observation_inputs, unnormalize_actions
from vla.types import (
    ActionChunk,
    EmbodimentSpec,
    InvalidObservationError,
    Observation,
    PolicyMetadata,
    TrainingSample,
    per_observation_seeds,
    validate_observation,
)

if TYPE_CHECKING:
    from vla.adapters import AdapterSet


class VLAPolicy:
    """A VLA model plus the embodiments it knows (specs with norm stats)."""

    def __init__(
        self,
        model: VLAModel,
        embodiments: Sequence[EmbodimentSpec],
        default_embodiment: str | None = None,
        *,
        embodiment_ids: Mapping[str, int] | None = None,
        adapters: AdapterSet | None = None,
    ):
        """``embodiment_ids`` pins each embodiment's slot (a loaded checkpoint's); others get the next free one.
        ``adapters``: a :class:`vla.adapters.AdapterSet` on ``model`` (None until an adapter is attached)."""
        self.model = model
        self.config: VLAConfig = model.config
        self.embodiments: dict[str, EmbodimentSpec] = {}
        self.embodiment_ids: dict[str, int] = {}
        ids = embodiment_ids or {}
        for spec in sorted(embodiments, key=lambda sp: sp.name not in ids):  # pinned slots first
            self.add_embodiment(spec, embodiment_id=ids.get(spec.name))
        if not self.embodiments:
            raise ValueError("VLAPolicy needs at least one EmbodimentSpec")
        if default_embodiment is not None and default_embodiment not in self.embodiments:
            raise ValueError(f"default embodiment {default_embodiment!r} not among {sorted(self.embodiments)}")
        self.default_embodiment = default_embodiment or next(iter(self.embodiments))
        self.adapters = adapters
        self.model.eval()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(cls, config: VLAConfig, embodiments: Sequence[EmbodimentSpec], seed: int | None = 0) -> VLAPolicy:
        """A fresh policy: pretrained backbone weights where the config names them, the rest random."""
        if seed is not None:
            torch.manual_seed(seed)
        return cls(VLAModel(config), embodiments)

    def add_embodiment(self, spec: EmbodimentSpec, embodiment_id: int | None = None) -> None:
        """Register (or update the spec of) an embodiment; new ones get the next free id."""
        cfg = self.config
        if spec.action_dim > cfg.max_action_dim or spec.state_dim > cfg.max_state_dim:
            raise ValueError(
                f"embodiment {spec.name!r}: action_dim {spec.action_dim} / state_dim {spec.state_dim} exceed the "
                f"model's max_action_dim {cfg.max_action_dim} / max_state_dim {cfg.max_state_dim}"
            )
        if len(spec.cameras) > cfg.max_cameras:
            raise ValueError(f"embodiment {spec.name!r}: {len(spec.cameras)} cameras "
                             f"> model max_cameras {cfg.max_cameras}")
        if spec.name not in self.embodiment_ids:
            new_id = embodiment_id if embodiment_id is not None else len(self.embodiment_ids)
            if new_id >= cfg.max_embodiments or new_id in self.embodiment_ids.values():
                raise ValueError(f"no free embodiment slot for {spec.name!r} (max_embodiments={cfg.max_embodiments})")
            self.embodiment_ids[spec.name] = new_id
        self.embodiments[spec.name] = spec

    def spec(self, embodiment: str | None = None) -> EmbodimentSpec:
        name = embodiment or self.default_embodiment
        if name not in self.embodiments:
            raise InvalidObservationError("embodiment", f"one of {sorted(self.embodiments)}", repr(name))
        return self.embodiments[name]

    # -- Policy interface ---------------------------------------------------------------------
    @property
    def metadata(self) -> PolicyMetadata:
        bb = self.config.backbone
        return PolicyMetadata(
            embodiments=dict(self.embodiments),
            default_embodiment=self.default_embodiment,
            action_horizon=self.config.action_horizon,
            model=f"vla/{bb.kind}:{bb.hf_model or 'minilm-l6'}/{self.config.head.kind}",
        )

    def reset(self) -> None:
        """Stateless between calls; nothing to reset."""

    def predict(
        self,
        observations: list[Observation],
        *,
        embodiment: str | None = None,
        seed: int | Sequence[int] | None = None,
        reuse_prefix: bool = True,
        prev_actions: Sequence[np.ndarray | None] | None = None,
        delay_steps: int | Sequence[int | None] | None = None,
    ) -> list[ActionChunk]:
        """One float32[H, A] action chunk in robot units per observation.

        Real-time chunking (:mod:`vla.model.rtc`): ``prev_actions`` holds one float[k, A] (robot units) or
        None per observation, ``delay_steps`` an int or one per observation; the chunk is inpainted to agree
        with the old plan and its first d rows are the committed ``prev_actions[:d]``.  Observations with no
        (or an empty) prefix get exactly the plain sampler's chunk."""
        if not isinstance(observations, (list, tuple)) or not observations:
            raise InvalidObservationError("observations", "a non-empty list of observations",
                                          type(observations).__name__)
        spec = self.spec(embodiment)
        if self.adapters is not None and len(self.adapters):  # the embodiment's own adapter, else the base
            self.adapters.activate(spec.name if spec.name in self.adapters else None)
        prefixes = self._prefixes(prev_actions, delay_steps, spec, len(observations))
        batch = self.prepare(observations, spec)
        noise = self.make_noise(len(observations), seed)
        self.model.eval()
        guidance = rtc_guidance(prefixes, spec, self.config, self.model.device) if prefixes else None
        actions = self.model.sample_actions(batch, noise.to(self.model.device), reuse_prefix=reuse_prefix,
                                            guidance=guidance)
        actions = actions[:, :, : spec.action_dim].float().cpu().numpy()
        chunks = [unnormalize_actions(spec, a) for a in actions]
        for chunk, p in zip(chunks, prefixes or ()):
            if p is not None:
                chunk[: p.delay] = p.actions[: p.delay]  # the committed actions, exactly as they will execute
        return chunks

    def _prefixes(self, prev_actions, delay_steps, spec: EmbodimentSpec, n: int) -> list | None:
        """Validated RTC prefixes (None per observation without one); None when no observation has one."""
        from vla.model.rtc import check_prefix, per_observation_prefixes

        pairs = per_observation_prefixes(prev_actions, delay_steps, n)
        H = self.config.action_horizon
        out = [check_prefix(p, d, spec.action_dim, H, index=i) for i, (p, d) in enumerate(pairs)]
        out = [None if p is None or p.empty else p for p in out]
        if not any(out):
            return None
        if self.config.head.kind != "flow":
            i = next(i for i, p in enumerate(out) if p is not None)
            raise InvalidObservationError("prev_actions", "none: real-time chunking needs a flow-matching head",
                                          f"a prefix for a {self.config.head.kind} model", i if n > 1 else None)
        return out

    def prepare(self, observations: Sequence[Observation], embodiment: str | EmbodimentSpec | None = None) -> dict:
        """Observations -> the model batch ``predict`` samples from (validated, through vla.preprocessing)."""
        cfg = self.config
        spec = embodiment if isinstance(embodiment, EmbodimentSpec) else self.spec(embodiment)
        samples = []
        for i, obs in enumerate(observations):
            validate_observation(obs, spec, index=i)
            samples.append(observation_inputs(obs, spec, cfg.image_size, cfg.image_mode))
        return self.collate(samples)

    def make_noise(self, batch_size: int, seed: int | Sequence[int] | None) -> torch.Tensor:
        """Initial noise [B, H, A_max]; with a seed, each row is drawn from its own generator."""
        shape = (self.config.action_horizon, self.config.max_action_dim)
        if seed is None:
            return torch.randn((batch_size, *shape))
        seeds = per_observation_seeds(seed, batch_size)
        return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])

    # -- batching ---------------------------------------------------------------------------
    def collate(self, samples: Sequence[TrainingSample]) -> dict:
        """Stack normalized samples into a model batch on the model's device (see :mod:`vla.collate`)."""
        return collate(samples, self.config, self.embodiments, self.embodiment_ids, self.model.device)

    # -- checkpoints (format: vla/checkpoint.py) ------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint directory atomically (temp dir + rename); returns its path."""
        from vla.checkpoint import save_checkpoint

        return save_checkpoint(path, model=self.model, embodiments=list(self.embodiments.values()),
                               embodiment_ids=self.embodiment_ids, default_embodiment=self.default_embodiment,
                               adapters=self.adapters)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> VLAPolicy:
        """Load a checkpoint directory written by :meth:`save_pretrained`."""
        from vla import checkpoint

        path = checkpoint.check_checkpoint_dir(path, flag=None)
        meta = checkpoint.read_meta(path)
        specs = checkpoint.read_embodiments(path, meta.embodiment_ids)
        model = checkpoint.load_model(path, meta.config)
        adapters = checkpoint.load_adapters(path, model)
        if device is not None:
            model.to(device)
        return cls(model, specs, meta.default_embodiment, embodiment_ids=meta.embodiment_ids, adapters=adapters)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad or not trainable_only)


def rtc_guidance(prefixes: list, spec: EmbodimentSpec, config: VLAConfig, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, weights) [B, H, A_max] in model units for the guided sampler: each prefix normalized with the
    embodiment's stats, weighted by :func:`vla.model.rtc.soft_mask`; padded dims and prefix-less rows weigh 0."""
    from vla.model.rtc import soft_mask

    H, A = config.action_horizon, spec.action_dim
    target = np.zeros((len(prefixes), H, config.max_action_dim), np.float32)
    weights = np.zeros_like(target)
    for b, p in enumerate(prefixes):
        if p is not None:
            k = len(p.actions)
            target[b, :k, :A] = normalize_actions(spec, p.actions)
            weights[b, :, :A] = soft_mask(H, k, p.delay)[:, None]
    return torch.from_numpy(target).to(device), torch.from_numpy(weights).to(device)
