"""VLAModel: backbone (prefix encoder) + action expert + generative head, on model batches.

A model batch (built by ``VLAPolicy.collate``) is a dict:
  images uint8[B, N, 3, H, W], image_mask bool[B, N], prompt list[str],
  state float[B, S_max], state_mask bool[B, S_max], embodiment_id long[B],
  and for training actions float[B, H, A_max], action_mask bool[B, A_max], action_pad bool[B, H].
"""

from __future__ import annotations

import torch
from torch import nn

from vla.backbones import build_backbone
from vla.config import VLAConfig
from vla.model.expert import ActionExpert
from vla.model.heads import build_head


class VLAModel(nn.Module):
    def __init__(self, config: VLAConfig):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config)
        self.expert = ActionExpert(config, self.backbone.hidden_size)
        self.head = build_head(config.head)

    @property
    def device(self) -> torch.device:
        return next(self.expert.parameters()).device

    def encode_prefix(self, batch: dict):
        """Run the backbone once: returns (per-block cross-attention K/V, prefix mask)."""
        prefix, mask = self.backbone(batch["images"], batch["image_mask"], batch["prompt"])
        return self.expert.prefix_kv(prefix), mask

    def _predict_fn(self, batch: dict, prefix_kv, prefix_mask):
        """The expert as ``fn(x, t)`` (training: any t per row; ``step`` is ignored)."""
        def fn(x: torch.Tensor, t: torch.Tensor, step: int | None = None) -> torch.Tensor:
            x = x * batch["action_mask"][:, None, :].to(x.dtype)  # padded action dims carry nothing
            return self.expert(
                x, t, batch["state"], batch["state_mask"], batch["embodiment_id"], prefix_kv, prefix_mask
            )

        return fn

    def _sampling_fn(self, batch: dict, prefix_kv, prefix_mask):
        """The expert for the head's sampler: everything that does not depend on x is computed once here
        (:meth:`ActionExpert.sampling_context`), each call runs step ``step`` of ``head.sample_times()``."""
        ctx = self.expert.sampling_context(self.head.sample_times(), batch["state"], batch["state_mask"],
                                           batch["embodiment_id"], prefix_kv, prefix_mask)
        action_mask = batch["action_mask"][:, None, :]

        def fn(x: torch.Tensor, t: torch.Tensor, step: int) -> torch.Tensor:
            return self.expert.step(x * action_mask.to(x.dtype), ctx, step)

        return fn

    def compute_loss(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """Masked flow-matching / diffusion loss over valid action dims and unpadded chunk steps."""
        prefix_kv, prefix_mask = self.encode_prefix(batch)
        loss_mask = batch["action_mask"][:, None, :] & ~batch["action_pad"][:, :, None]
        return self.head.loss(self._predict_fn(batch, prefix_kv, prefix_mask), batch["actions"], loss_mask, generator)

    @torch.no_grad()
    def sample_actions(self, batch: dict, noise: torch.Tensor, reuse_prefix: bool = True,
                       guidance: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Integrate from ``noise`` [B, H, A_max] to normalized actions.

        ``guidance``: real-time chunking's (target, weights), both [B, H, A_max] in model units (see
        :mod:`vla.model.rtc`); the prefix K/V are still encoded once.  ``reuse_prefix=False`` re-encodes
        the prefix at every integration step (the naive way; kept for benchmarks and equivalence tests)."""
        if guidance is not None:
            if not reuse_prefix:
                raise ValueError("guidance (real-time chunking) needs reuse_prefix=True")
            prefix_kv, prefix_mask = self.encode_prefix(batch)
            return self.head.sample_guided(self._sampling_fn(batch, prefix_kv, prefix_mask), noise, *guidance)
        if reuse_prefix:
            prefix_kv, prefix_mask = self.encode_prefix(batch)
            return self.head.sample(self._sampling_fn(batch, prefix_kv, prefix_mask), noise)

        def naive(x: torch.Tensor, t: torch.Tensor, step: int | None = None) -> torch.Tensor:
            prefix_kv, prefix_mask = self.encode_prefix(batch)
            return self._predict_fn(batch, prefix_kv, prefix_mask)(x, t)

        return self.head.sample(naive, noise)
