"""Prefix encoders behind one interface.

A backbone maps (images uint8[B, N, 3, H, W], image_mask bool[B, N], prompts list[str]) to
prefix hidden states float[B, L, D] and a prefix mask bool[B, L] (True = a real token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from vla.config import VLAConfig


def build_backbone(config: VLAConfig) -> torch.nn.Module:
    """Instantiate the backbone a config names (weights of pretrained parts are loaded here)."""
    if config.backbone.kind == "embedded":
        from vla.backbones.embedded import EmbeddedBackbone

        return EmbeddedBackbone(config)
    from vla.backbones.hf import HFBackbone

    return HFBackbone(config)
