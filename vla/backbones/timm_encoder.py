"""A ``timm`` image encoder cut at a feature stage (later stages are neither built nor run), with weights from a
local file and a frozen prefix (run under ``no_grad``, BatchNorm kept in eval mode), then the shared
:class:`~vla.backbones.embedded.GridTokens` head.

Stages are timm's ``features_only`` stages (``out_indices``): for ``efficientnet_lite0`` stage 0..4 have
16, 24, 40, 112, 320 channels at strides 2, 4, 8, 16, 32.
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from vla.backbones.embedded import GridTokens
from vla.backbones.feature_cache import FrozenFeatureCache
from vla.backbones.image_weights import default_weights_path, match_state_dict, read_state_dict, to_trunk_names
from vla.config import BackboneConfig


def check_timm_name(name: str) -> None:
    """ValueError naming an unknown timm model and suggesting close matches."""
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see timm.list_models())"
        raise ValueError(f"image_encoder timm:{name}: unknown timm model {name!r}{hint}")


def build_trunk(name: str, stage: int) -> nn.Module:
    """timm ``features_only`` model of ``name`` returning feature stage ``stage`` (random init)."""
    import timm

    check_timm_name(name)
    try:
        return timm.create_model(name, pretrained=False, features_only=True, out_indices=(stage,))
    except (IndexError, ValueError, AssertionError) as e:
        with torch.device("meta"):
            n = len(timm.create_model(name, pretrained=False, features_only=True).feature_info.info)
        if not 0 <= stage < n:
            raise ValueError(f"image_stage {stage}: timm:{name} has feature stages 0..{n - 1}") from None
        raise ValueError(f"image_encoder timm:{name}: cannot build its features at stage {stage}: {e}") from e


def trunk_steps(trunk: nn.Module) -> list[tuple[str, nn.Module]]:
    """The trunk as modules run in sequence, named by the module names of timm's feature_info; truncated after
    the returned stage. Raises ValueError for feature wrappers that are not a plain sequence (hooks)."""
    if isinstance(trunk, nn.ModuleDict) and hasattr(trunk, "return_layers"):  # FeatureListNet / FeatureDictNet
        return list(trunk.items())
    if all(hasattr(trunk, a) for a in ("conv_stem", "bn1", "blocks", "_stage_out_idx")) and \
            getattr(trunk, "feature_hooks", None) is None:  # EfficientNet / MobileNetV3 features
        last = max(trunk._stage_out_idx)  # {block stage (1-based, 0 = stem): feature index}
        trunk.blocks = trunk.blocks[:last]  # later blocks are never built into the forward (nor the weights)
        return [("conv_stem", trunk.conv_stem), ("bn1", trunk.bn1)] + [(f"blocks_{i}", b) for i, b in
                                                                       enumerate(trunk.blocks)]
    raise ValueError(f"image_encoder: timm feature wrapper {type(trunk).__name__} is not a plain sequence of "
                     "modules; this encoder supports CNN-style timm models (efficientnet, mobilenet, resnet, "
                     "convnext, regnet, ...)")


def parse_freeze(spec: str) -> int | str:
    """``none`` | ``all`` | ``stages:K`` -> "none" | "all" | K."""
    if spec in ("none", "all"):
        return spec
    head, _, k = spec.partition(":")
    if head == "stages" and k.isdigit():
        return int(k)
    raise ValueError(f"image_freeze {spec!r}: expected 'none', 'all' or 'stages:K' (stem + stages 0..K frozen)")


class TimmImageEncoder(GridTokens):
    """uint8[B, 3, H, W] -> float[B, tokens_per_image, out_dim] through timm's ``image_encoder`` model."""

    def __init__(self, bcfg: BackboneConfig, out_dim: int):
        super().__init__()
        self.model_name = bcfg.image_encoder.removeprefix("timm:")
        self.trunk = build_trunk(self.model_name, bcfg.image_stage)
        info = self.trunk.feature_info
        self.steps = trunk_steps(self.trunk)
        self.unused_weights = self._load_weights(bcfg)
        self.num_frozen_steps = self._frozen_steps(parse_freeze(bcfg.image_freeze), info)
        self.feature_cache: FrozenFeatureCache | None = None
        for _, module in self.steps[: self.num_frozen_steps]:
            module.requires_grad_(False)
        cfg = self.trunk.pretrained_cfg
        self._set_normalization(cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225)))
        self._init_tokens(info.channels()[-1], bcfg.image_grid, out_dim, bcfg.image_keypoints, bcfg.image_film)

    def _frozen_steps(self, freeze: int | str, info) -> int:
        """How many leading steps are frozen (the stem and stages 0..K for ``stages:K``)."""
        if freeze == "none":
            return 0
        if freeze == "all":
            return len(self.steps)
        n_stages = len(info.info)
        if freeze >= n_stages or freeze > info.out_indices[-1]:
            raise ValueError(f"image_freeze stages:{freeze}: the encoder is cut at image_stage "
                             f"{info.out_indices[-1]} (freeze stages 0..K with K <= image_stage)")
        target = info.module_name(freeze).replace(".", "_")
        names = [n.replace(".", "_") for n, _ in self.steps]
        if target not in names:
            raise ValueError(f"image_freeze stages:{freeze}: stage module {target!r} not found in timm:"
                             f"{self.model_name}'s layers {names}")
        return names.index(target) + 1

    def _load_weights(self, bcfg: BackboneConfig) -> list[str]:
        """Load ``image_weights`` (None: the offline default, if any); returns the file's unused tensor names."""
        spec = bcfg.image_weights
        if bcfg.lm_random_init or (spec or "").lower() in ("none", "random"):
            return []
        path = default_weights_path(self.model_name) if spec is None else spec
        if path is None:
            return []
        import timm

        trunk_sd = self.trunk.state_dict()
        source = to_trunk_names(read_state_dict(path), self.model_name, set(dict(self.trunk.named_children())))
        with torch.device("meta"):
            full = {k: v.shape for k, v in timm.create_model(self.model_name, pretrained=False).state_dict().items()}
        unused = match_state_dict(source, trunk_sd, full, f"image_weights {path} (timm:{self.model_name})")
        self.trunk.load_state_dict({k: source[k] for k in trunk_sd}, strict=True)
        return unused

    def train(self, mode: bool = True):
        super().train(mode)
        for _, module in self.steps[: self.num_frozen_steps]:
            module.eval()  # frozen BatchNorm keeps its running statistics
        if self.num_frozen_steps == len(self.steps):
            self.trunk.eval()
        return self

    def enable_feature_cache(self, max_mb: float) -> None:
        """Memoize the frozen prefix's output per image while training (:class:`FrozenFeatureCache`)."""
        if self.num_frozen_steps == 0:
            raise ValueError(f"feature cache: timm:{self.model_name} has no frozen layers (image_freeze none), so "
                             "there is nothing to cache")
        self.feature_cache = FrozenFeatureCache(max_mb)

    def _frozen_prefix(self, images_uint8: torch.Tensor) -> torch.Tensor:
        x = self._normalize(images_uint8)
        with torch.no_grad():
            for _, module in self.steps[: self.num_frozen_steps]:
                x = module(x)
        return x

    def features(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """The cut stage's feature map float[B, C, h, w]."""
        if self.feature_cache is not None and self.training:
            x = self.feature_cache.run(images_uint8, self._frozen_prefix)
        else:
            x = self._frozen_prefix(images_uint8)
        for _, module in self.steps[self.num_frozen_steps:]:
            x = module(x)
        return x

    def forward(self, images_uint8: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """uint8[B, 3, H, W] (+ instruction embedding float[B, out_dim] with FiLM) -> float[B, tokens, out_dim]."""
        return self._tokens(self.features(images_uint8), cond)
