"""Samplers against known answers: heads.py's real sampling loops driven by an oracle denoiser that returns the
true clean chunk / noise / velocity must land exactly on the clean chunk; masked cameras do not reach the actions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.vla_helpers import observation, panda_spec
from vla.config import HeadConfig, tiny_config
from vla.model.heads import DDIMHead, FlowMatchingHead
from vla.policy import VLAPolicy

T_TRAIN = 100


def cosine_alpha_bar(T: int) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule, written out: alpha_bar_k = prod_{j<=k} (1 - beta_j),
    beta_j = min(1 - f(j+1)/f(j), 0.999), f(s) = cos(((s/T) + 0.008)/1.008 * pi/2)^2."""
    def f(s):
        return math.cos((s / T + 0.008) / 1.008 * math.pi / 2) ** 2
    out, prod = [], 1.0
    for j in range(T):
        prod *= 1 - min(1 - f(j + 1) / f(j), 0.999)
        out.append(prod)
    return np.array(out)


@pytest.fixture
def x0_and_noise():
    g = torch.Generator().manual_seed(0)
    return torch.randn((3, 8, 5), generator=g) * 2 + 1, torch.randn((3, 8, 5), generator=g)


def test_ddim_sample_prediction_recovers_x0(x0_and_noise):
    x0, noise = x0_and_noise
    head = DDIMHead(HeadConfig(kind="ddim", ddim_prediction="sample", num_inference_steps=7,
                               ddim_train_timesteps=T_TRAIN))
    out = head.sample(lambda x, t, step: x0.clone(), noise)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)


def test_ddim_epsilon_prediction_recovers_x0(x0_and_noise):
    x0, noise = x0_and_noise
    ab = cosine_alpha_bar(T_TRAIN)
    seen = []

    def true_noise(x, t, step):  # the noise that puts x at diffusion step k on the path from x0
        k = int(round(float(t[0]) * T_TRAIN))
        seen.append(k)
        return (x - math.sqrt(ab[k]) * x0) / math.sqrt(1 - ab[k])

    head = DDIMHead(HeadConfig(kind="ddim", ddim_prediction="epsilon", num_inference_steps=10,
                               ddim_train_timesteps=T_TRAIN))
    np.testing.assert_allclose(head.alpha_bar.numpy(), ab, rtol=1e-5)  # the schedule is the cosine one
    out = head.sample(true_noise, noise)
    assert seen[0] == T_TRAIN - 1 and seen[-1] == 0 and len(seen) == 10
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_flow_euler_recovers_x0(x0_and_noise):
    x0, noise = x0_and_noise
    ts = []

    def true_velocity(x, t, step):  # x_t = t*noise + (1-t)*x0  =>  v = noise - x0 = (x_t - x0) / t
        ts.append(float(t[0]))
        return (x - x0) / t[:, None, None]

    out = FlowMatchingHead(HeadConfig(kind="flow", num_inference_steps=10)).sample(true_velocity, noise)
    np.testing.assert_allclose(ts, 1 - np.arange(10) / 10, atol=1e-6)  # Euler from t=1 down to t=dt
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)


def test_masked_camera_pixels_do_not_change_actions():
    policy = VLAPolicy.create(tiny_config(), [panda_spec()])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # zero-initialized output layers would make every input irrelevant
        for p in policy.model.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    batch = policy.prepare([observation(seed=0), observation(seed=1)])
    batch["image_mask"][:, 1] = False  # the wrist camera is missing
    noise = policy.make_noise(2, seed=5)
    with torch.no_grad():
        ref = policy.model.sample_actions(batch, noise)
        batch["images"][:, 1] = torch.randint(0, 256, batch["images"][:, 1].shape, dtype=torch.uint8)
        other = policy.model.sample_actions(batch, noise)
        batch["images"][:, 0] = 255 - batch["images"][:, 0]  # an unmasked camera does matter
        changed = policy.model.sample_actions(batch, noise)
    assert torch.equal(ref, other)
    assert not torch.allclose(ref, changed, atol=1e-4)
    # through predict: a camera sent as None is that masked slot
    obs = observation(seed=0)
    obs["images"]["wrist"] = None
    a = policy.predict([obs], seed=5)[0]
    obs["images"].pop("wrist")
    assert np.array_equal(a, policy.predict([obs], seed=5)[0])
