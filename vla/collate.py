"""Batch collation: ``TrainingSample`` s (already normalized) -> the model's padded, masked tensors.

Cameras go into the embodiment's slots (absent ones masked), images are brought to the model's size with
:func:`vla.preprocessing.resize_image` (a no-op when the pipeline or ``predict`` already did it), state and
actions are padded to the model's max dims with masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from vla.config import VLAConfig
from vla.preprocessing import resize_image
from vla.types import EmbodimentSpec, TrainingSample


def collate(samples: Sequence[TrainingSample], config: VLAConfig, embodiments: Mapping[str, EmbodimentSpec],
            embodiment_ids: Mapping[str, int], device: torch.device | str | None = None) -> dict:
    """Stack ``samples`` into a model batch (tensors on ``device``)."""
    cfg = config
    b, (h, w) = len(samples), cfg.image_size
    images = torch.zeros((b, cfg.max_cameras, 3, h, w), dtype=torch.uint8)
    image_mask = torch.zeros((b, cfg.max_cameras), dtype=torch.bool)
    state = torch.zeros((b, cfg.max_state_dim))
    state_mask = torch.zeros((b, cfg.max_state_dim), dtype=torch.bool)
    action_mask = torch.zeros((b, cfg.max_action_dim), dtype=torch.bool)
    emb_ids = torch.zeros(b, dtype=torch.long)
    has_actions = all("actions" in s for s in samples)
    actions = torch.zeros((b, cfg.action_horizon, cfg.max_action_dim))
    action_pad = torch.zeros((b, cfg.action_horizon), dtype=torch.bool)
    for i, s in enumerate(samples):
        spec = embodiments.get(s["embodiment"])
        if spec is None:
            raise ValueError(f"sample {i}: unknown embodiment {s['embodiment']!r}; known: {sorted(embodiments)}")
        emb_ids[i] = embodiment_ids[spec.name]
        for slot, cam in enumerate(spec.cameras):
            img = s["images"].get(cam)
            if img is not None:
                images[i, slot] = torch.from_numpy(resize_image(img, (h, w), cfg.image_mode)).permute(2, 0, 1)
                image_mask[i, slot] = True
        st = np.asarray(s.get("state", ()), np.float32)
        if st.shape != (spec.state_dim,):
            raise ValueError(f"sample {i}: state shape {st.shape}, "
                             f"embodiment {spec.name!r} expects ({spec.state_dim},)")
        state[i, : spec.state_dim] = torch.from_numpy(st)
        state_mask[i, : spec.state_dim] = True
        action_mask[i, : spec.action_dim] = True
        if has_actions:
            actions[i, :, : spec.action_dim] = torch.from_numpy(_actions(s, i, cfg.action_horizon, spec))
            pad = s.get("action_pad")
            if pad is not None:
                action_pad[i] = torch.from_numpy(np.asarray(pad, bool))
    batch = {"images": images, "image_mask": image_mask, "prompt": [s.get("prompt") or "" for s in samples],
             "state": state, "state_mask": state_mask, "action_mask": action_mask, "embodiment_id": emb_ids}
    if has_actions:
        batch.update(actions=actions, action_pad=action_pad)
    if device is None:
        return batch
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _actions(sample: TrainingSample, i: int, horizon: int, spec: EmbodimentSpec) -> np.ndarray:
    a = np.asarray(sample["actions"], np.float32)
    if a.shape != (horizon, spec.action_dim):
        raise ValueError(f"sample {i}: actions shape {a.shape}, expected ({horizon}, {spec.action_dim}) "
                         f"(model horizon, embodiment {spec.name!r} action_dim)")
    return a
