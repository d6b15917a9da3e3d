"""VLAPolicy: the model behind the shared ``Policy`` interface, plus its checkpoint directory.

Callers deal in robot units: ``predict`` validates observations, normalizes state with the
embodiment's stats, samples normalized action chunks and unnormalizes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vla.config import VLAConfig
from vla.model.vla_model import VLAModel
from vla.types import (
    ActionChunk,
    EmbodimentSpec,
    InvalidObservationError,
    Observation,
    PolicyMetadata,
    TrainingSample,
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
    def create(cls, config: VLAConfig, embodiments: Sequence[EmbodimentSpec], seed: int | None = 0) -> "VLAPolicy":
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
            raise ValueError(f"embodiment {spec.name!r}: {len(spec.cameras)} cameras > model max_cameras {cfg.max_cameras}")
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
        return PolicyMetadata(
            embodiments=dict(self.embodiments),
            default_embodiment=self.default_embodiment,
            action_horizon=self.config.action_horizon,
            model=f"vla/{self.config.backbone.kind}:{self.config.backbone.hf_model or 'minilm-l6'}/{self.config.head.kind}",
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
    ) -> list[ActionChunk]:
        """One float32[H, A] action chunk in robot units per observation."""
        if not isinstance(observations, (list, tuple)) or not observations:
            raise InvalidObservationError("observations", "a non-empty list of observations", type(observations).__name__)
        spec = self.spec(embodiment)
        if self.adapters is not None and len(self.adapters):  # the embodiment's own adapter, else the base
            self.adapters.activate(spec.name if spec.name in self.adapters else None)
        samples: list[TrainingSample] = []
        for i, obs in enumerate(observations):
            validate_observation(obs, spec, index=i)
            state = np.asarray(obs.get("state", np.zeros(0)), np.float32)
            samples.append(
                {
                    "images": {k: v for k, v in obs["images"].items() if v is not None},
                    "state": spec.normalize_state(state) if spec.state_dim else state,
                    "prompt": obs.get("prompt") or "",
                    "embodiment": spec.name,
                }
            )
        batch = self.collate(samples)
        noise = self.make_noise(len(samples), seed)
        self.model.eval()
        actions = self.model.sample_actions(batch, noise.to(self.model.device), reuse_prefix=reuse_prefix)
        actions = actions[:, :, : spec.action_dim].float().cpu().numpy()
        return [spec.unnormalize_action(a).astype(np.float32) for a in actions]

    def make_noise(self, batch_size: int, seed: int | Sequence[int] | None) -> torch.Tensor:
        """Initial noise [B, H, A_max]; with a seed, each row is drawn from its own generator."""
        shape = (self.config.action_horizon, self.config.max_action_dim)
        if seed is None:
            return torch.randn((batch_size, *shape))
        seeds = [int(seed)] * batch_size if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
        if len(seeds) != batch_size:
            raise ValueError(f"seed: got {len(seeds)} seeds for {batch_size} observations")
        return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])

    # -- batching -----------------------------------------------------------------------------
    def collate(self, samples: Sequence[TrainingSample]) -> dict:
        """Stack samples into a model batch: pad dims, order cameras into slots, resize images."""
        cfg = self.config
        b = len(samples)
        h, w = cfg.image_size
        images = torch.zeros((b, cfg.max_cameras, 3, h, w), dtype=torch.uint8)
        image_mask = torch.zeros((b, cfg.max_cameras), dtype=torch.bool)
        state = torch.zeros((b, cfg.max_state_dim))
        state_mask = torch.zeros((b, cfg.max_state_dim), dtype=torch.bool)
        action_mask = torch.zeros((b, cfg.max_action_dim), dtype=torch.bool)
        emb_ids = torch.zeros(b, dtype=torch.long)
        has_actions = all("actions" in s for s in samples)
        actions = torch.zeros((b, cfg.action_horizon, cfg.max_action_dim))
        action_pad = torch.zeros((b, cfg.action_horizon), dtype=torch.bool)
        for i, s in enumerate(samples):
            spec = self.embodiments.get(s["embodiment"])
            if spec is None:
                raise ValueError(f"sample {i}: unknown embodiment {s['embodiment']!r}; known: {sorted(self.embodiments)}")
            emb_ids[i] = self.embodiment_ids[spec.name]
            for slot, cam in enumerate(spec.cameras):
                img = s["images"].get(cam)
                if img is not None:
                    images[i, slot] = _resize_uint8(img, (h, w))
                    image_mask[i, slot] = True
            st = np.asarray(s.get("state", ()), np.float32)
            if st.shape != (spec.state_dim,):
                raise ValueError(f"sample {i}: state shape {st.shape}, embodiment {spec.name!r} expects ({spec.state_dim},)")
            state[i, : spec.state_dim] = torch.from_numpy(st)
            state_mask[i, : spec.state_dim] = True
            action_mask[i, : spec.action_dim] = True
            if has_actions:
                a = np.asarray(s["actions"], np.float32)
                if a.shape != (cfg.action_horizon, spec.action_dim):
                    raise ValueError(
                        f"sample {i}: actions shape {a.shape}, expected ({cfg.action_horizon}, {spec.action_dim}) "
                        f"(model horizon, embodiment {spec.name!r} action_dim)"
                    )
                actions[i, :, : spec.action_dim] = torch.from_numpy(a)
                pad = s.get("action_pad")
                if pad is not None:
                    action_pad[i] = torch.from_numpy(np.asarray(pad, bool))
        batch = {
            "images": images,
            "image_mask": image_mask,
            "prompt": [s.get("prompt") or "" for s in samples],
            "state": state,
            "state_mask": state_mask,
            "action_mask": action_mask,
            "embodiment_id": emb_ids,
        }
        if has_actions:
            batch.update(actions=actions, action_pad=action_pad)
        device = self.model.device
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    # -- checkpoints (format: vla/checkpoint.py) ------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint directory atomically (temp dir + rename); returns its path."""
        from vla.checkpoint import save_checkpoint

        return save_checkpoint(path, model=self.model, embodiments=list(self.embodiments.values()),
                               embodiment_ids=self.embodiment_ids, default_embodiment=self.default_embodiment,
                               adapters=self.adapters)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> "VLAPolicy":
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


def _resize_uint8(img: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8[H, W, 3] -> uint8[3, h, w] (antialiased bilinear when the size differs)."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    if tuple(t.shape[1:]) == tuple(size):
        return t
    out = F.interpolate(t[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].round().clamp(0, 255).to(torch.uint8)
