"""Real-time chunking in the sampler (vla.model.rtc + FlowMatchingHead.sample_guided + VLAPolicy.predict).

Oracles: the paper's soft mask and guidance weight written out here with ``math``; an identity denoiser
(u = 0, so the predicted clean chunk is x and its Jacobian the identity) whose guided Euler steps are
written out in numpy; and the plain sampler itself for "no prefix = today's chunk, bit for bit"."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.vla_helpers import observation, panda_spec
from vla.config import HeadConfig, tiny_config
from vla.model.heads import FlowMatchingHead, RTCNotSupported, build_head
from vla.model.rtc import check_prefix, soft_mask
from vla.policy import VLAPolicy
from vla.preprocessing import normalize_actions
from vla.types import InvalidObservationError

H = 16
RAW_PREFIX_TOL = 0.1  # model units: the guided sampler's own first d rows vs the committed ones (before the copy)


@pytest.fixture(scope="module")
def policy():
    torch.set_num_threads(1)
    pol = VLAPolicy.create(tiny_config(action_horizon=H), [panda_spec()])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # zero-initialized output layers would make the expert ignore its inputs
        for p in pol.model.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return pol


def test_soft_mask_is_the_papers():
    k, d = 12, 3
    want = [1.0] * d
    for i in range(d, k):
        c = (k - i) / (k - d + 1)
        want.append(c * (math.exp(c) - 1) / (math.e - 1))
    want += [0.0] * (H - k)
    np.testing.assert_allclose(soft_mask(H, k, d), want, rtol=1e-6)
    assert soft_mask(H, 0, 0).sum() == 0 and soft_mask(H, 5, 5).tolist() == [1.0] * 5 + [0.0] * 11


def test_guided_step_with_identity_denoiser_matches_written_out_guidance():
    """u = 0: x1 = x, dx1/dx = I, so each step is x += dt * min(5, w(t)) * W * (Y - x); w from the paper."""
    steps, clip = 10, 5.0
    g = torch.Generator().manual_seed(1)
    noise, target = torch.randn((2, 8, 3), generator=g), torch.randn((2, 8, 3), generator=g)
    weights = torch.from_numpy(np.stack([soft_mask(8, 6, 2), soft_mask(8, 0, 0)]))[:, :, None].expand(2, 8, 3)
    head = FlowMatchingHead(HeadConfig(num_inference_steps=steps))
    out = head.sample_guided(lambda x, t, step: torch.zeros_like(x), noise, target, weights.contiguous())
    x, Y, W = noise.double().numpy(), target.double().numpy(), weights.double().numpy()
    for i in range(steps):
        tau = i / steps  # the paper's time: 0 = noise
        r2 = (1 - tau) ** 2 / (tau**2 + (1 - tau) ** 2)
        w = clip if tau == 0 else min(clip, (1 - tau) / (tau * r2))
        x = x + (1 / steps) * w * W * (Y - x)
    np.testing.assert_allclose(out.numpy(), x, atol=1e-5)
    assert torch.equal(out[1], noise[1])  # zero weights: untouched by guidance


def test_zero_weights_give_the_plain_sampler_bit_for_bit(policy):
    batch = policy.prepare([observation(0), observation(1)])
    noise = policy.make_noise(2, seed=[3, 4])
    zeros = torch.zeros_like(noise)
    plain = policy.model.sample_actions(batch, noise)
    guided = policy.model.sample_actions(batch, noise, guidance=(torch.randn_like(noise), zeros))
    assert torch.equal(plain, guided)


def test_empty_prefix_is_todays_sampler_bit_for_bit(policy):
    obs = observation(2)
    today = policy.predict([obs], seed=7)[0]
    for prev, d in ((np.zeros((0, 7), np.float32), 0), (np.zeros((0, 7), np.float32), None), (None, None)):
        assert np.array_equal(policy.predict([obs], seed=7, prev_actions=[prev], delay_steps=d)[0], today)


@pytest.mark.parametrize("d", [2, 4, 6])
def test_prefix_is_followed_and_the_switch_is_smoother(policy, d):
    spec = policy.spec()
    prev = policy.predict([observation(0)], seed=1)[0][4:]  # 12 rows of an old chunk left at query time
    obs = observation(1)
    plain = policy.predict([obs], seed=2)[0]
    out = policy.predict([obs], seed=2, prev_actions=[prev], delay_steps=d)[0]
    assert out.shape == (H, 7) and out.dtype == np.float32
    assert np.array_equal(out[:d], prev[:d])  # the committed rows come back exactly
    # the sampler itself (before that copy) lands on them: within RAW_PREFIX_TOL in model units
    from vla.policy import rtc_guidance

    guidance = rtc_guidance([check_prefix(prev, d, 7, H)], spec, policy.config, "cpu")
    raw = policy.model.sample_actions(policy.prepare([obs]), policy.make_noise(1, 2), guidance=guidance)[0, :, :7]
    target = normalize_actions(spec, prev)
    assert np.abs(raw[:d].numpy() - target[:d]).max() < RAW_PREFIX_TOL
    assert np.abs(normalize_actions(spec, plain)[:d] - target[:d]).max() > 10 * RAW_PREFIX_TOL
    # discontinuity when execution switches from committed row d-1 to the new row d (arm dims, robot units)
    jump_rtc = np.linalg.norm(out[d, :6] - prev[d - 1, :6])
    jump_plain = np.linalg.norm(plain[d, :6] - prev[d - 1, :6])
    assert jump_rtc < jump_plain


def test_mixed_prefix_batch_equals_unbatched(policy):
    prev = policy.predict([observation(0)], seed=1)[0][3:]
    obs = [observation(5), observation(6), observation(7)]
    both = policy.predict(obs, seed=[1, 2, 3], prev_actions=[prev, None, prev[:6]], delay_steps=[4, None, 2])
    alone = [policy.predict([obs[0]], seed=1, prev_actions=[prev], delay_steps=4)[0],
             policy.predict([obs[1]], seed=2)[0],
             policy.predict([obs[2]], seed=3, prev_actions=[prev[:6]], delay_steps=2)[0]]
    for b, a in zip(both, alone):
        np.testing.assert_allclose(b, a, atol=1e-5)


def test_ddim_refuses_a_prefix_clearly():
    with pytest.raises(RTCNotSupported, match="DDIM"):
        build_head(HeadConfig(kind="ddim")).sample_guided(None, None, None, None)
    pol = VLAPolicy.create(tiny_config(head=HeadConfig(kind="ddim")), [panda_spec()])
    obs = observation(0)
    pol.predict([obs], seed=0, prev_actions=[np.zeros((0, 7), np.float32)])  # empty prefix: fine
    with pytest.raises(InvalidObservationError, match="flow-matching") as ei:
        pol.predict([obs], seed=0, prev_actions=[np.zeros((3, 7), np.float32)], delay_steps=1)
    assert ei.value.field == "prev_actions"


@pytest.mark.parametrize("prev, d, field, text", [
    (np.zeros((3, 6)), 1, "prev_actions", "[k, 7]"),
    (np.zeros(7), 0, "prev_actions", "[k, 7]"),
    (np.zeros((17, 7)), 0, "prev_actions", "at most 16"),
    (np.full((3, 7), np.nan), 0, "prev_actions", "finite"),
    (np.zeros((3, 7)), -1, "delay_steps", ">= 0"),
    (np.zeros((3, 7)), 4, "delay_steps", "<= the 3 rows"),
    (np.zeros((16, 7)), 17, "delay_steps", "horizon 16"),
    (None, 2, "delay_steps", "prev_actions"),
    (np.zeros((3, 7)), 1.5, "delay_steps", "an int"),
])
def test_bad_prefix_names_the_field(prev, d, field, text):
    with pytest.raises(InvalidObservationError) as ei:
        check_prefix(prev, d, 7, H)
    assert ei.value.field == field and text in str(ei.value)


def test_prefix_is_encoded_once_per_call(policy):
    """The guided sampler runs the expert (forward + backward) at each of the 10 steps, the backbone once."""
    calls = {"backbone": 0, "expert": 0}
    backbone = policy.model.backbone
    handle = backbone.register_forward_hook(lambda *_: calls.__setitem__("backbone", calls["backbone"] + 1))
    expert = policy.model.expert
    step = expert.step  # sampling runs the expert one step at a time (ActionExpert.step)

    def counted(*args, **kwargs):
        calls["expert"] += 1
        return step(*args, **kwargs)

    expert.step = counted
    try:
        policy.predict([observation(0)], seed=1, prev_actions=[np.zeros((10, 7), np.float32)], delay_steps=3)
    finally:
        handle.remove()
        del expert.step
    assert calls == {"backbone": 1, "expert": policy.config.head.num_inference_steps}
