"""Small builders shared by the vla tests."""

import numpy as np

from vla.normalization import NormStats
from vla.types import EmbodimentSpec


def panda_spec(name: str = "panda", with_stats: bool = True, **kw) -> EmbodimentSpec:
    state_stats = action_stats = None
    if with_stats:
        rng = np.random.default_rng(0)
        state_stats = NormStats.from_data(rng.normal(0.5, 2.0, (500, 9)), mode="zscore")
        action_stats = NormStats.from_data(rng.uniform(-0.3, 0.3, (500, 7)), mode="quantile", skip_dims=(6,))
    base = dict(name=name, cameras=("agentview", "wrist"), state_dim=9, action_dim=7, gripper_dims=(6,),
                state_stats=state_stats, action_stats=action_stats)
    base.update(kw)
    return EmbodimentSpec(**base)


def observation(seed: int = 0, size: int = 84, prompt: str = "lift the red cube", cameras=("agentview", "wrist")):
    rng = np.random.default_rng(seed)
    return {
        "images": {c: rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in cameras},
        "state": rng.normal(0, 1, 9).astype(np.float32),
        "prompt": prompt,
    }


def toy_tiny_policy(seed: int = 0, *, wake_zero_layers: bool = False):
    """A tiny random VLAPolicy over the serve toy embodiments, on one torch thread (the serve tests' model).

    ``wake_zero_layers`` gives every all-zero weight matrix (the zero-initialised adaLN/output layers) seeded
    N(0, 0.05²) entries: at init they make the expert's answer ignore its input, so an inexact speed-up or a
    prefix-conditioned sampler would look 'exact'."""
    import torch

    from serve.toy_policy import toy_embodiments
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    torch.set_num_threads(1)
    policy = VLAPolicy.create(tiny_config(), embodiments=toy_embodiments(), seed=seed)
    if wake_zero_layers:
        wake_zero_layers_of(policy.model, seed)
    return policy


def wake_zero_layers_of(model, seed: int = 0) -> None:
    """Give every all-zero weight matrix of ``model`` seeded N(0, 0.05²) entries (see :func:`toy_tiny_policy`)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
