"""The one preprocessing path between robot data and model tensors, used by training and serving alike.

The data pipeline (``data_pipelines.transforms``) and :meth:`vla.policy.VLAPolicy.predict` both call these
functions, so a camera frame and a state reach the model as the same tensor in training and at inference:

* :func:`resize_image`: uint8[H, W, 3] -> uint8[h, w, 3], ``mode`` from ``VLAConfig.image_mode``:
  ``resize`` stretches to (h, w); ``pad`` keeps the aspect ratio and letterboxes with black, centered.
  One implementation: torch antialiased bilinear, rounded to uint8.
* :func:`normalize_state` / :func:`normalize_actions`: robot units -> model units (the embodiment's stats;
  gripper dims untouched); :func:`unnormalize_actions`: model units -> robot units.
* :func:`observation_inputs`: one robot observation -> a model-ready ``TrainingSample`` (no actions).

Train-only augmentation is a separate seeded stage (``data_pipelines.transforms.ImageTransform``); its
final resize goes through :func:`resize_image` too.
"""

from __future__ import annotations

import numpy as np

from vla.types import EmbodimentSpec, Observation, TrainingSample

IMAGE_MODES = ("resize", "pad")


def check_image_mode(mode: str, where: str = "image_mode") -> str:
    if mode not in IMAGE_MODES:
        raise ValueError(f"{where} must be one of {IMAGE_MODES}; got {mode!r}")
    return mode


def resize_image(img: np.ndarray, size: tuple[int, int], mode: str = "resize") -> np.ndarray:
    """uint8[H, W, 3] -> uint8[h, w, 3] (``size`` = (h, w)); returned unchanged when already that size."""
    check_image_mode(mode)
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"resize_image: expected uint8[H, W, 3], got {img.dtype}{list(img.shape)}")
    h, w = int(size[0]), int(size[1])
    H, W = img.shape[:2]
    if (h, w) == (H, W):
        return img
    if mode == "resize":
        return _interpolate(img, h, w)
    s = min(h / H, w / W)
    nh, nw = min(h, max(1, round(H * s))), min(w, max(1, round(W * s)))
    canvas = np.zeros((h, w, 3), np.uint8)
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = _interpolate(img, nh, nw)
    return canvas


def _interpolate(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Antialiased bilinear (torch), rounded and clamped to uint8."""
    import torch
    import torch.nn.functional as F

    if img.shape[:2] == (h, w):
        return img
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    out = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def normalize_state(spec: EmbodimentSpec, state: np.ndarray) -> np.ndarray:
    """Robot-unit state ``[..., S]`` -> model units with the spec's state stats (float32)."""
    state = np.asarray(state, np.float32)
    return spec.state_stats.normalize(state) if spec.state_stats is not None and spec.state_dim else state


def normalize_actions(spec: EmbodimentSpec, actions: np.ndarray) -> np.ndarray:
    """Robot-unit actions ``[..., A]`` -> model units (gripper dims untouched: their stats mode is ``none``)."""
    actions = np.asarray(actions, np.float32)
    return spec.action_stats.normalize(actions) if spec.action_stats is not None else actions


def unnormalize_actions(spec: EmbodimentSpec, actions: np.ndarray) -> np.ndarray:
    """Model-unit actions ``[..., A]`` -> robot units (float32); the inverse of :func:`normalize_actions`."""
    actions = np.asarray(actions, np.float32)
    out = spec.action_stats.unnormalize(actions) if spec.action_stats is not None else actions
    return out.astype(np.float32, copy=False)


def observation_inputs(obs: Observation, spec: EmbodimentSpec, image_size: tuple[int, int],
                       image_mode: str = "resize") -> TrainingSample:
    """One (validated) robot observation -> the sample the model's collate expects: images resized to the
    model's size with its mode, state normalized; cameras sent as None are left out (masked)."""
    images = {k: resize_image(v, image_size, image_mode) for k, v in obs["images"].items() if v is not None}
    state = np.asarray(obs.get("state", np.zeros(0)), np.float32)
    return {"images": images, "state": normalize_state(spec, state), "prompt": obs.get("prompt") or "",
            "embodiment": spec.name}
