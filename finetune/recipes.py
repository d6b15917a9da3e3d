"""Model presets sized for the hardware they train on, and base-model resolution."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from data_pipelines.transforms import AugmentConfig
from vla.checkpoint import check_checkpoint_dir
from vla.config import BackboneConfig, ExpertConfig, VLAConfig, default_config, tiny_config


def demo_config() -> VLAConfig:
    """The CPU recipe of ``vla demo``: pretrained MiniLM-L6 (frozen) encodes the instruction once per
    prompt (cached, no backprop through it); small conv encoders (4x4 patchify stem, then two
    stride-2 stages; 3x3 pooled tokens + one token of 32 spatial-softmax keypoints per camera) for
    agentview + wrist at 84² and a small flow-matching expert (chunk 16) are trained from scratch."""
    return VLAConfig(
        backbone=BackboneConfig(fuse_images_in_lm=False, freeze_lm=True, image_channels=(32, 64, 64),
                                image_stem=4, image_grid=3, image_keypoints=32, max_prompt_tokens=24),
        expert=ExpertConfig(width=128, depth=3, heads=4, mlp_ratio=4.0),
        action_horizon=16,
        max_action_dim=8,
        max_state_dim=10,
        max_cameras=2,
        image_size=(84, 84),
        max_embodiments=8,
    )


def demo_augment() -> AugmentConfig:
    """Train-time image augmentation of the demo recipe: a mild random crop (the fixed cameras' view of the
    cube is what the grasp is aimed from; at eval the whole frame is seen) and color jitter."""
    return AugmentConfig(crop_scale=(0.9, 1.0), crop_ratio=(0.95, 1.05), channel_gain=0.0)


# The demo recipe's data, encoder and augmentation (``vla demo`` flags override them; benchmarks/generalization.py
# compares recipes). Lift, n=20 per condition (README "Where this stands"): the conv encoder on nominal demos keeps
# nominal success but loses it under table colour and distractors; on randomized demos alone (conv or timm) nominal
# success falls to 35-70 %. Nominal demos plus randomized ones at equal weight, seen through a pretrained frozen
# EfficientNet-Lite0 (stage 2; its features cached per frame, so no per-sample augmentation), keep nominal 100 %
# and hold lighting, object colour and one distractor pair at 0.9-0.95 retention.
DEMO_RANDOMIZE: tuple[str, ...] = ("lighting@2", "table_color@2", "object_color@2", "distractors@2")
DEMO_RANDOMIZED_DEMOS = 100  # demos with those draws, collected beside the nominal ones (when it randomizes)
DEMO_RANDOMIZED_WEIGHT = 1.0  # their sampling share vs the nominal demos' 1.0
DEMO_ACTION_NOISE = 0.0  # DART noise injection while collecting (sim_eval.noise): std of the executed drift
DEMO_AUGMENT = "none"  # data_pipelines.augment preset name, or "sample" (demo_augment(), per sample in the loader)
DEMO_IMAGE_ENCODER = "timm:efficientnet_lite0"  # or "conv" (trained from scratch); timm ones via timm_backbone
DEMO_IMAGE_STAGE = 2  # timm: cut after this features_only stage
DEMO_IMAGE_FREEZE = "all"  # timm: frozen layers (run once per frame and cached while training)
# The instruction FiLMs the image features (BackboneConfig.image_film): Lift with it (one run, 6,795 steps) nominal
# 100 % (n=50), distractors@1/@2 95/85 %, lighting 95 %, object_colour 100 %, table colour 90 % (n=20 each); on
# LiftColor it is what makes the policy take the named cube (55 % vs 8.3 %, benchmarks/language.py).
DEMO_IMAGE_FILM = True


def timm_backbone(backbone: BackboneConfig, encoder: str, stage: int = DEMO_IMAGE_STAGE,
                  freeze: str = DEMO_IMAGE_FREEZE) -> BackboneConfig:
    """``backbone`` with a pretrained timm image encoder cut after ``stage`` and frozen (``freeze``), sized for
    CPU training (benchmarks/image_encoders.py: a frozen Lite0 trunk to stage 2 costs ~2.5x the demo conv
    encoder per batch, a trainable one ~9x); the conv encoder's token head (grid + keypoints) stays."""
    return dataclasses.replace(backbone, image_encoder=encoder, image_stage=stage, image_freeze=freeze)


def feature_cache_mb(cfg: VLAConfig, augment) -> float:
    """The demo's per-frame cache of frozen image features: on for a frozen timm encoder trained on un-augmented
    frames (each frame then repeats every epoch). Sized for Stack's ~30k camera frames at 84² at stage 1 (42 KB
    each, 1.3 GB; stage 2: 19 KB); the memory is only taken as frames arrive, per training process."""
    frozen = cfg.backbone.image_encoder != "conv" and cfg.backbone.image_freeze != "none"
    return 2048.0 if frozen and augment is None else 0.0


PRESETS = {"default": default_config, "demo": demo_config, "tiny": tiny_config}


def parse_base(base: str) -> tuple[str, str | None]:
    """``embedded`` | ``hf:<hub id or path>`` | a checkpoint dir -> (kind, target)."""
    if base == "embedded":
        return "embedded", None
    if base.startswith("hf:"):
        target = base[3:]
        if not target:
            raise ValueError("--base hf:<hub id or local path>: the id/path is empty")
        return "hf", target
    p = Path(base)
    if p.is_dir():
        return "checkpoint", str(check_checkpoint_dir(p, "--base"))
    raise ValueError(f"--base {base!r}: unknown base; expected 'embedded', 'hf:<hub id or path>' or a checkpoint "
                     "directory" + (" (no such directory)" if os.sep in base or base.startswith(".") else ""))


def model_config(kind: str, target: str | None, preset: str = "default") -> VLAConfig:
    if preset not in PRESETS:
        raise ValueError(f"--preset {preset!r}: choose from {sorted(PRESETS)}")
    cfg = PRESETS[preset]()
    if kind == "hf":
        cfg = cfg.replace(backbone=BackboneConfig(kind="hf", hf_model=target))
    return cfg
