"""Composable stages between a standardized episode and a ``TrainingSample``.

Each stage has ``inputs`` (data -> model direction) and, where it applies, ``outputs`` (the inverse,
model -> robot, used at inference). Stages: :class:`Normalize`, :class:`Chunk`, :class:`ImageTransform`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_pipelines.standardize import StandardEpisode
from vla.types import EmbodimentSpec


@dataclass(frozen=True)
class Normalize:
    """Normalize an episode's state/actions with the embodiment's stats (gripper dims untouched)."""

    spec: EmbodimentSpec

    def inputs(self, ep: StandardEpisode) -> StandardEpisode:
        out = dict(ep)
        out["state"] = self.spec.normalize_state(ep["state"]) if ep["state"].shape[-1] else ep["state"]
        out["actions"] = self.spec.normalize_action(ep["actions"])
        return out  # type: ignore[return-value]

    def outputs(self, actions: np.ndarray) -> np.ndarray:
        """Model-unit action chunk -> robot units."""
        return self.spec.unnormalize_action(actions)


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
    """Resize (``mode='resize'`` stretches, ``'pad'`` keeps aspect and pads) to ``size`` (H, W), with a
    random resized crop + color jitter when ``train``."""

    size: tuple[int, int] = (224, 224)
    train: bool = False
    augment: AugmentConfig = AugmentConfig()
    mode: str = "resize"

    def __post_init__(self) -> None:
        if self.mode not in ("resize", "pad"):
            raise ValueError(f"ImageTransform.mode must be 'resize' or 'pad'; got {self.mode!r}")

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        from PIL import Image, ImageEnhance

        h, w = self.size
        im = Image.fromarray(np.ascontiguousarray(img))
        if self.train:
            if rng is None:
                raise ValueError("ImageTransform(train=True) needs an rng for deterministic augmentation")
            a = self.augment
            H, W = img.shape[:2]
            area = H * W * rng.uniform(*a.crop_scale)
            ratio = np.exp(rng.uniform(np.log(a.crop_ratio[0]), np.log(a.crop_ratio[1])))
            cw = int(round(min(W, np.sqrt(area * ratio))))
            ch = int(round(min(H, np.sqrt(area / ratio))))
            x0 = int(rng.integers(0, W - cw + 1))
            y0 = int(rng.integers(0, H - ch + 1))
            im = im.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
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
        if self.mode == "pad":
            H, W = img.shape[:2]
            s = min(h / H, w / W)
            nh, nw = max(1, round(H * s)), max(1, round(W * s))
            canvas = np.zeros((h, w, 3), np.uint8)
            y0, x0 = (h - nh) // 2, (w - nw) // 2
            canvas[y0:y0 + nh, x0:x0 + nw] = np.asarray(im.resize((nw, nh), Image.BILINEAR))
            return canvas
        if img.shape[:2] == (h, w):
            return img
        return np.array(im.resize((w, h), Image.BILINEAR))
