"""Composable stages between a standardized episode and a ``TrainingSample``.

Each stage has ``inputs`` (data -> model direction) and, where it applies, ``outputs`` (the inverse,
model -> robot, used at inference). Stages: :class:`Normalize`, :class:`Chunk`, :class:`ImageTransform`.
Normalization and image resizing are :mod:`vla.preprocessing`'s, the functions ``VLAPolicy.predict`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_pipelines.standardize import StandardEpisode
from vla.preprocessing import check_image_mode, normalize_actions, normalize_state, resize_image, unnormalize_actions
from vla.types import EmbodimentSpec


@dataclass(frozen=True)
class Normalize:
    """Normalize an episode's state/actions with the embodiment's stats (gripper dims untouched), through
    :mod:`vla.preprocessing` as ``VLAPolicy.predict`` does; ``outputs`` is the inverse for action chunks."""

    spec: EmbodimentSpec

    def inputs(self, ep: StandardEpisode) -> StandardEpisode:
        out = dict(ep)
        out["state"] = normalize_state(self.spec, ep["state"])
        out["actions"] = normalize_actions(self.spec, ep["actions"])
        return out  # type: ignore[return-value]

    def outputs(self, actions: np.ndarray) -> np.ndarray:
        """Model-unit action chunk -> robot units."""
        return unnormalize_actions(self.spec, actions)


@dataclass(frozen=True)
class Chunk:
    """Future ``horizon`` actions from step t, padded past the episode end with the last action and a
    pad mask; optional observation ``history`` of states (padded at the start by repeating the first).

    ``offsets`` (frame offsets, e.g. from LeRobot ``delta_timestamps`` x fps) replace ``0..horizon-1``.
    """

    horizon: int
    history: int = 1
    offsets: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.horizon <= 0 or self.history <= 0:
            raise ValueError(f"Chunk: horizon and history must be > 0; got {self.horizon}, {self.history}")
        if self.offsets is not None and len(self.offsets) != self.horizon:
            raise ValueError(f"Chunk: {len(self.offsets)} offsets for horizon {self.horizon}")

    def actions_at(self, actions: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        T = actions.shape[0]
        idx = t + (np.asarray(self.offsets) if self.offsets is not None else np.arange(self.horizon))
        pad = (idx >= T) | (idx < 0)
        return actions[np.clip(idx, 0, T - 1)].astype(np.float32), pad

    def state_history(self, state: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(t - self.history + 1, t + 1)
        pad = idx < 0
        return state[np.maximum(idx, 0)], pad


@dataclass(frozen=True)
class AugmentConfig:
    """Train-only image augmentation (none at eval)."""

    crop_scale: tuple[float, float] = (0.8, 1.0)  # random resized crop: area fraction kept
    crop_ratio: tuple[float, float] = (0.9, 1.1)  # aspect ratio range of the crop
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.0  # hue shifts are costly on CPU; off by default
    channel_gain: float = 0.0  # each RGB channel scaled by U(1-g, 1+g): recolors large surfaces (tables, walls)


@dataclass(frozen=True)
class ImageTransform:
    """Bring a frame to ``size`` (H, W) with :func:`vla.preprocessing.resize_image` (``mode='resize'`` stretches,
    ``'pad'`` keeps aspect and pads), the function ``VLAPolicy.predict`` uses. With ``train`` and an ``augment``
    config: a seeded random crop first, the same resize, then color jitter (train only, never at inference)."""

    size: tuple[int, int] = (224, 224)
    train: bool = False
    augment: AugmentConfig | None = AugmentConfig()
    mode: str = "resize"

    def __post_init__(self) -> None:
        check_image_mode(self.mode, "ImageTransform.mode")

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if not self.train or self.augment is None:
            return resize_image(img, self.size, self.mode)
        if rng is None:
            raise ValueError("ImageTransform(train=True) needs an rng for deterministic augmentation")
        a = self.augment
        H, W = img.shape[:2]
        area = H * W * rng.uniform(*a.crop_scale)
        ratio = np.exp(rng.uniform(np.log(a.crop_ratio[0]), np.log(a.crop_ratio[1])))
        cw = max(1, int(round(min(W, np.sqrt(area * ratio)))))
        ch = max(1, int(round(min(H, np.sqrt(area / ratio)))))
        x0 = int(rng.integers(0, W - cw + 1))
        y0 = int(rng.integers(0, H - ch + 1))
        out = resize_image(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw]), self.size, self.mode)
        return _color_jitter(out, a, rng)


def _color_jitter(img: np.ndarray, a: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness / contrast / saturation / hue (PIL enhancers) then per-channel gain, drawn from ``rng``."""
    from PIL import Image, ImageEnhance

    im = Image.fromarray(img)
    if a.brightness:
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(1 - a.brightness, 1 + a.brightness))
    if a.contrast:
        im = ImageEnhance.Contrast(im).enhance(rng.uniform(1 - a.contrast, 1 + a.contrast))
    if a.saturation:
        im = ImageEnhance.Color(im).enhance(rng.uniform(1 - a.saturation, 1 + a.saturation))
    if a.hue:
        hsv = np.asarray(im.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.uniform(-a.hue, a.hue) * 255)) % 256
        im = Image.fromarray(hsv, "HSV").convert("RGB")
    out = np.array(im)
    if a.channel_gain:
        gain = rng.uniform(1 - a.channel_gain, 1 + a.channel_gain, 3).astype(np.float32)
        out = np.clip(out * gain, 0, 255).astype(np.uint8)
    return out
