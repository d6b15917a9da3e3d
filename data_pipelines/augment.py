"""Train-only image augmentation on the model batch: seeded, batched tensor ops, off at inference.

:func:`augment_images` takes the model's uint8 images ``[B, N_cam, 3, H, W]`` (+ ``image_mask``) and returns
uint8 of the same shape; every sample and camera draws its own parameters from one ``torch.Generator``
(:func:`batch_generator` seeds it from the run seed, step and micro-batch, so a resumed run repeats the
augmented batches). Stages, in order: random resized crop (output the same size; one batched
bilinear ``grid_sample``), random overlays (coloured rectangles/ellipses: cheap distractors), colour (per-channel
gain; brightness, contrast, saturation with ``torchvision.transforms.v2.functional.adjust_*``'s formulas; hue as a
rotation about the grey axis of RGB, where a 1/3 turn permutes R->G->B exactly as an HSV hue shift does; all one
affine map per image), random erasing (a box of one random colour or noise). Absent cameras stay zeros.

Presets (``vla finetune --augment light|strong``): :data:`LIGHT` (mild crop and colour jitter, slight hue) and
:data:`STRONG` (stronger jitter and crop, colour casts, distractor overlays, erasing). Hue stays small in both: a
large hue shift would turn "the red cube" of an instruction into another colour.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

Range = tuple[float, float]
FILLS = ("color", "noise", "mixed")


@dataclass(frozen=True)
class BatchAugmentConfig:
    """Per image draws; the defaults are all off (identity). Factor ranges are (low, high), drawn uniformly."""

    crop_scale: Range = (1.0, 1.0)  # random resized crop: area fraction of the image kept
    crop_ratio: Range = (1.0, 1.0)  # its aspect ratio w/h (drawn log-uniformly)
    brightness: Range = (1.0, 1.0)  # x * f
    contrast: Range = (1.0, 1.0)  # blend with the image's mean grey level
    saturation: Range = (1.0, 1.0)  # blend with the pixel's grey level
    hue: Range = (0.0, 0.0)  # rotation in turns (0.5 = 180 deg); + moves red towards green
    channel_gain: Range = (1.0, 1.0)  # each of R, G, B scaled by its own factor: tints white/grey surfaces
    overlays: int = 0  # up to this many shapes pasted per image ...
    overlay_p: float = 0.5  # ... each present with this probability
    overlay_size: Range = (0.1, 0.3)  # shape width/height as a fraction of the image side
    erase_p: float = 0.0  # probability of one erased box per image
    erase_area: Range = (0.02, 0.1)  # its area fraction
    erase_ratio: Range = (0.3, 3.3)  # its aspect ratio (log-uniform)
    erase_fill: str = "color"  # color | noise | mixed (each erasure picks one at random)

    def __post_init__(self) -> None:
        for name in ("crop_scale", "crop_ratio", "brightness", "contrast", "saturation", "hue", "channel_gain",
                     "overlay_size", "erase_area", "erase_ratio"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"BatchAugmentConfig.{name}: low {lo} > high {hi}")
        checks = {"crop_scale": self.crop_scale[0] > 0 and self.crop_scale[1] <= 1,
                  "crop_ratio": self.crop_ratio[0] > 0, "brightness": self.brightness[0] >= 0,
                  "contrast": self.contrast[0] >= 0, "saturation": self.saturation[0] >= 0,
                  "hue": self.hue[0] >= -0.5 and self.hue[1] <= 0.5, "channel_gain": self.channel_gain[0] >= 0,
                  "overlays": self.overlays >= 0,
                  "overlay_p": 0 <= self.overlay_p <= 1,
                  "overlay_size": self.overlay_size[0] > 0 and self.overlay_size[1] <= 1,
                  "erase_p": 0 <= self.erase_p <= 1, "erase_area": self.erase_area[0] > 0 and self.erase_area[1] <= 1,
                  "erase_ratio": self.erase_ratio[0] > 0, "erase_fill": self.erase_fill in FILLS}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"BatchAugmentConfig.{bad[0]}: out of range ({getattr(self, bad[0])!r}); see its comment")

    @property
    def crops(self) -> bool:
        return self.crop_scale != (1.0, 1.0) or self.crop_ratio != (1.0, 1.0)

    def replace(self, **kw) -> BatchAugmentConfig:
        return dataclasses.replace(self, **kw)


LIGHT = BatchAugmentConfig(crop_scale=(0.85, 1.0), crop_ratio=(0.9, 1.1), brightness=(0.8, 1.2),
                           contrast=(0.8, 1.2), saturation=(0.8, 1.2), hue=(-0.02, 0.02), channel_gain=(0.9, 1.1))
STRONG = BatchAugmentConfig(crop_scale=(0.7, 1.0), crop_ratio=(0.8, 1.25), brightness=(0.6, 1.4),
                            contrast=(0.6, 1.4), saturation=(0.5, 1.5), hue=(-0.05, 0.05), channel_gain=(0.6, 1.2),
                            overlays=3, overlay_p=0.4, overlay_size=(0.08, 0.25), erase_p=0.25,
                            erase_area=(0.02, 0.08), erase_fill="mixed")
PRESETS: dict[str, BatchAugmentConfig | None] = {"none": None, "light": LIGHT, "strong": STRONG}


def preset(name: str, flag: str = "--augment") -> BatchAugmentConfig | None:
    """A named preset (``none`` = off)."""
    if name not in PRESETS:
        raise ValueError(f"{flag} {name!r}: choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def batch_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """The CPU generator of one micro-batch's augmentation: a function of (run seed, step, global micro-batch
    index = accumulation step x world size + rank) only, so N ranks x B and 1 process x N accumulation steps
    augment alike, and a resumed run repeats the uninterrupted one."""
    state = np.random.SeedSequence([int(seed) & (2**63 - 1), int(step), int(micro), 0x61756721]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def augment_batch(batch: dict, cfg: BatchAugmentConfig | None, generator: torch.Generator) -> dict:
    """``batch`` with its ``images`` augmented (a new dict; the rest shared). ``cfg`` None: unchanged."""
    if cfg is None:
        return batch
    return {**batch, "images": augment_images(batch["images"], batch.get("image_mask"), cfg, generator)}


def augment_images(images: torch.Tensor, image_mask: torch.Tensor | None, cfg: BatchAugmentConfig,
                   generator: torch.Generator) -> torch.Tensor:
    """uint8 ``[B, N, 3, H, W]`` -> augmented uint8 of the same shape (absent cameras: zeros).

    Parameters are drawn on the CPU from ``generator`` for every (sample, camera) slot, present or not, so a slot's
    draws do not depend on which other cameras are present (the pixels of noise-filled erasures, drawn afterwards
    for the present images, excepted); the ops run on ``images``' device."""
    if images.dtype != torch.uint8 or images.dim() != 5 or images.shape[2] != 3:
        raise ValueError(f"augment_images: expected uint8 [B, N_cam, 3, H, W], got {images.dtype} "
                         f"{list(images.shape)}")
    B, N, _, H, W = images.shape
    mask = torch.ones(B, N, dtype=torch.bool) if image_mask is None else image_mask.detach().cpu().bool()
    if mask.shape != (B, N):
        raise ValueError(f"augment_images: image_mask shape {list(mask.shape)} != {[B, N]}")
    p = _draw(cfg, B * N, H, W, generator)
    keep = mask.reshape(-1)
    flat = images.reshape(B * N, 3, H, W)
    every = bool(keep.all())
    if not every:  # only the present cameras' images (and draws) go through
        idx = keep.nonzero().squeeze(1)
        p = {k: v[idx] for k, v in p.items()}
        idx = idx.to(images.device)
    p = {k: v.to(images.device) for k, v in p.items()}
    x = (flat if every else flat[idx]).float()
    if cfg.crops:
        x = _crop(x, p["box"])
    if cfg.overlays:
        x = _overlays(x, p)
    x = _color(x, p, cfg)
    if cfg.erase_p:
        x = _erase(x, p, generator)
    x = x.clamp_(0, 255).add_(0.5).to(torch.uint8)  # round half up
    if every:
        return x.view(B, N, 3, H, W)
    out = torch.zeros_like(flat)
    out[idx] = x
    return out.view(B, N, 3, H, W)


def _uniform(r: Range, n: int, g: torch.Generator, log: bool = False) -> torch.Tensor:
    lo, hi = (math.log(r[0]), math.log(r[1])) if log else r
    u = lo + (hi - lo) * torch.rand(n, generator=g)
    return u.exp() if log else u


def _draw(cfg: BatchAugmentConfig, n: int, H: int, W: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Every parameter for ``n`` image slots (a fixed sequence of draws for a given config and batch shape)."""
    p = {}
    if cfg.crops:
        area = _uniform(cfg.crop_scale, n, g) * H * W
        ratio = _uniform(cfg.crop_ratio, n, g, log=True)
        w, h = (area * ratio).sqrt().clamp(max=W), (area / ratio).sqrt().clamp(max=H)
        x0, y0 = torch.rand(n, generator=g) * (W - w), torch.rand(n, generator=g) * (H - h)
        p["box"] = torch.stack([x0, y0, x0 + w, y0 + h], 1)
    if cfg.overlays:
        K = cfg.overlays
        centre = torch.rand(n, K, 2, generator=g) * torch.tensor([W, H])
        lo, hi = cfg.overlay_size
        half = (lo + (hi - lo) * torch.rand(n, K, 2, generator=g)) * torch.tensor([W, H]) / 2
        flags = torch.rand(n, K, 2, generator=g) < torch.tensor([0.5, cfg.overlay_p])  # ellipse?, present?
        p["overlay"] = torch.cat([centre, half, flags.float()], 2)
        p["overlay_rgb"] = torch.randint(0, 256, (n, K, 3), generator=g).float()
    for name in ("brightness", "contrast", "saturation", "hue"):
        p[name] = _uniform(getattr(cfg, name), n, g)
    lo, hi = cfg.channel_gain
    p["channel_gain"] = lo + (hi - lo) * torch.rand(n, 3, generator=g)
    if cfg.erase_p:
        on = torch.rand(n, generator=g) < cfg.erase_p
        area = _uniform(cfg.erase_area, n, g) * H * W
        ratio = _uniform(cfg.erase_ratio, n, g, log=True)
        h = (area / ratio).sqrt().round().clamp(1, H)
        w = (area * ratio).sqrt().round().clamp(1, W)
        y0 = (torch.rand(n, generator=g) * (H - h + 1)).floor()
        x0 = (torch.rand(n, generator=g) * (W - w + 1)).floor()
        p["erase"] = torch.stack([y0, x0, h, w, on.float()], 1)
        p["erase_rgb"] = torch.randint(0, 256, (n, 3), generator=g).float()
        noise = {"color": False, "noise": True}.get(cfg.erase_fill)
        p["erase_noise"] = torch.rand(n, generator=g) < 0.5 if noise is None else torch.full((n,), noise)
    return p


def _crop(x: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Each image's box (x0, y0, x1, y1 in pixel-edge coordinates) resampled bilinearly to the full size by one
    ``grid_sample``: pixel i samples the box at x0 + (i + 0.5) * w / W - 0.5, clamped to the image (the points of
    ``torchvision.ops.roi_align(aligned=True, sampling_ratio=1)``); a full-image box is the identity."""
    import torch.nn.functional as F

    M, C, H, W = x.shape
    grid = torch.empty(M, H, W, 2, device=x.device, dtype=x.dtype)  # separable: built without affine_grid's bmm
    for axis, n in ((0, W), (1, H)):  # normalized (align_corners=False) position of each output pixel's sample
        lo, size = box[:, axis].to(x), (box[:, axis + 2] - box[:, axis]).to(x)
        u = (lo[:, None] + (torch.arange(n, device=x.device, dtype=x.dtype) + 0.5) * (size / n)[:, None]) * (2 / n) - 1
        grid[..., axis] = u[:, None, :] if axis == 0 else u[:, :, None]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _overlays(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Paste the overlays in order (a later one covers an earlier one): solid rectangles or ellipses (the pixel
    centres inside them) of random colours. Float arithmetic throughout (CPU boolean broadcasts are slow)."""
    H, W = x.shape[-2:]
    ov = p["overlay"]  # [M, K, 6]: cx, cy, rx, ry, ellipse, on
    off = (1 - ov[..., 5:6]) * 2  # an absent shape: every pixel outside it
    dx = ((torch.arange(W, device=x.device, dtype=x.dtype) + 0.5 - ov[..., :1]) / ov[..., 2:3]).square_().add_(off)
    dy = ((torch.arange(H, device=x.device, dtype=x.dtype) + 0.5 - ov[..., 1:2]) / ov[..., 3:4]).square_().add_(off)
    dx, dy = dx[:, :, None, :], dy[:, :, :, None]  # [M, K, 1, W], [M, K, H, 1]
    # inside an ellipse: dx^2 + dy^2 <= 1; a rectangle: max(dx^2, dy^2) <= 1
    dist = torch.maximum(dx, dy).lerp_(dx + dy, ov[..., 4, None, None].expand(-1, -1, H, W))
    inside = (dist <= 1).to(x.dtype)
    for k in range(ov.shape[1]):
        x = x.lerp_(p["overlay_rgb"][:, k, :, None, None].expand_as(x), inside[:, k, None].expand_as(x))
    return x


_GREY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


_COLOR = ("channel_gain", "brightness", "contrast", "saturation", "hue")


def _color_map(p: dict[str, torch.Tensor], means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's colour ops as one affine map ``A x + c`` (A [M, 3, 3], c [M, 3]; ``means`` [M, 3]: the input's
    channel means). In order: per-channel gain, brightness ``x f``, contrast ``f x + (1 - f) mean(grey)``,
    saturation ``f x + (1 - f) grey(x)`` (``v2.functional.adjust_*``'s formulas), hue: a rotation about the grey
    axis (Rodrigues about k = (1, 1, 1)/sqrt(3); a 1/3 turn maps R->G->B)."""
    d = torch.float64
    eye = torch.eye(3, dtype=d)
    weights = torch.tensor(_GREY, dtype=d)
    gain, fb, fc, fs, hue = (p[k].to(d) for k in _COLOR)
    fb, fc, fs, hue = (v.view(-1, 1, 1) for v in (fb, fc, fs, hue))
    A = fb * torch.diag_embed(gain)  # gain, then brightness
    mean_grey = (A @ means.to(d)[:, :, None])[:, :, 0] @ weights  # the grey mean contrast blends with
    A, c = fc * A, ((1 - fc[:, :, 0]) * mean_grey[:, None]).expand(-1, 3)
    S = fs * eye + (1 - fs) * weights.expand(3, 3)  # every output channel blends with the grey level
    A, c = S @ A, (S @ c[:, :, None])[:, :, 0]
    t = hue * (2 * math.pi)
    cross = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=d) / math.sqrt(3)
    R = t.cos() * eye + t.sin() * cross + (1 - t.cos()) * torch.full((3, 3), 1 / 3, dtype=d)
    return (R @ A).float(), (R @ c[:, :, None])[:, :, 0].float()


def _color(x: torch.Tensor, p: dict[str, torch.Tensor], cfg: BatchAugmentConfig) -> torch.Tensor:
    """The colour ops as one per-image affine map (:func:`_color_map`), clamped once at the end: where torchvision
    clamps after each op the two differ only where an intermediate value leaves [0, 255]."""
    identity = {"channel_gain": (1.0, 1.0), "brightness": (1.0, 1.0), "contrast": (1.0, 1.0),
                "saturation": (1.0, 1.0), "hue": (0.0, 0.0)}
    if all(getattr(cfg, k) == v for k, v in identity.items()):
        return x
    A, c = (t.to(x.device) for t in _color_map({k: p[k].cpu() for k in _COLOR}, x.mean(dim=(2, 3)).cpu()))
    r, g, b = x.unbind(1)
    out = torch.empty_like(x)
    for i in range(3):
        o = torch.mul(r, A[:, i, 0].view(-1, 1, 1), out=out[:, i])
        o.add_(g * A[:, i, 1].view(-1, 1, 1)).add_(b * A[:, i, 2].view(-1, 1, 1)).add_(c[:, i].view(-1, 1, 1))
    return out.clamp_(0, 255)


def _erase(x: torch.Tensor, p: dict[str, torch.Tensor], g: torch.Generator) -> torch.Tensor:
    """Fill each erased image's box (integer pixels) with its random colour or uniform noise. In place."""
    for m in p["erase"][:, 4].nonzero().squeeze(1).tolist():
        y0, x0, h, w = (int(v) for v in p["erase"][m, :4].tolist())
        if p["erase_noise"][m]:
            x[m, :, y0:y0 + h, x0:x0 + w] = torch.randint(0, 256, (3, h, w), generator=g).to(x)
        else:
            x[m, :, y0:y0 + h, x0:x0 + w] = p["erase_rgb"][m].view(3, 1, 1)
    return x
