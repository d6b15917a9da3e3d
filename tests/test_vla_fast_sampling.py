"""The fast inference path (step-invariant expert work precomputed once per predict, absent camera slots left out
of the prefix) against the plain eager path written out in ``vla.model.reference`` (the code before the
speed-ups, bit for bit): same actions up to fp32 rounding, for single and batched predicts, a missing camera, FiLM,
DDIM and real-time chunking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.vla_helpers import observation, panda_spec, wake_zero_layers_of
from vla.config import HeadConfig, tiny_config
from vla.model.reference import reference_predict, reference_prefix, reference_velocity
from vla.policy import VLAPolicy

FP32_ROUNDING = 1e-5  # max |Δaction| allowed, relative to the largest |action| (fp32 summation-order changes)


def _policy(**changes) -> VLAPolicy:
    torch.set_num_threads(1)
    policy = VLAPolicy.create(tiny_config(max_cameras=3, **changes), [panda_spec()], seed=0)  # slot 3 is absent
    wake_zero_layers_of(policy.model, seed=1)  # zero-init adaLN/output layers would hide any difference
    return policy


def _close(got, want) -> float:
    scale = max(float(np.abs(want).max()), 1.0)
    err = float(np.abs(np.asarray(got) - np.asarray(want)).max())
    assert err <= FP32_ROUNDING * scale, (err, scale)
    return err


def _observations():
    obs = [observation(seed=s, prompt=p) for s, p in ((0, "lift the red cube"), (1, "put it down"))]
    one_camera = observation(seed=2)
    del one_camera["images"]["wrist"]
    return obs + [one_camera]


@pytest.mark.parametrize("film", [False, True])
def test_fast_predict_matches_the_reference_path(film):
    policy = _policy(backbone=dataclasses.replace(tiny_config().backbone, image_film=film))
    obs = _observations()
    for i, o in enumerate(obs):
        _close(policy.predict([o], seed=i)[0], reference_predict(policy, [o], seed=i)[0])
    for got, want in zip(policy.predict(obs, seed=[4, 5, 6]), reference_predict(policy, obs, seed=[4, 5, 6])):
        _close(got, want)
    assert np.abs(policy.predict(obs[:1], seed=0)[0] - policy.predict(obs[:1], seed=1)[0]).max() > 1e-2


def test_absent_camera_slots_leave_the_prefix_but_not_its_meaning():
    policy = _policy()
    batch = policy.prepare(_observations()[:1])
    with torch.no_grad():
        kv, mask = policy.model.encode_prefix(batch)
        kv_ref, mask_ref = reference_prefix(policy.model, batch)
    (k, v), (k_ref, v_ref) = kv[0], kv_ref[0]
    per_cam = policy.model.backbone.image_encoder.tokens_per_image
    assert mask.shape[1] == mask_ref.shape[1] - per_cam and bool(mask.all())  # only the absent slot's tokens left
    keep = mask_ref[0]
    torch.testing.assert_close(k[0], k_ref[0][:, keep], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v[0], v_ref[0][:, keep], atol=1e-5, rtol=1e-5)


def test_expert_forward_is_the_reference_velocity():
    """Training's forward (any t per row) went through the same refactor: the written-out expert, to rounding."""
    policy = _policy()
    model = policy.model
    batch = policy.prepare(_observations())
    g = torch.Generator().manual_seed(0)
    x = torch.randn((3, model.config.action_horizon, model.config.max_action_dim), generator=g)
    t = torch.rand(3, generator=g)
    with torch.no_grad():
        kv, mask = reference_prefix(model, batch)
        args = (batch["state"], batch["state_mask"], batch["embodiment_id"], kv, mask)
        torch.testing.assert_close(model.expert(x, t, *args), reference_velocity(model.expert, x, t, *args),
                                   atol=1e-6, rtol=1e-5)


def test_ddim_fast_sampling_matches_the_plain_expert():
    policy = _policy(head=HeadConfig(kind="ddim", num_inference_steps=5))
    model = policy.model
    batch = policy.prepare(_observations())
    noise = policy.make_noise(3, 7)
    with torch.no_grad():
        kv, mask = reference_prefix(model, batch)
        plain = model.head.sample(model._predict_fn(batch, kv, mask), noise)
        fast = model.sample_actions(batch, noise)
    _close(fast.numpy(), plain.numpy())


def test_rtc_guided_fast_sampling_matches_the_plain_expert():
    policy = _policy()
    model = policy.model
    batch = policy.prepare(_observations())
    noise = policy.make_noise(3, 8)
    g = torch.Generator().manual_seed(1)
    target, weights = torch.randn(noise.shape, generator=g), torch.rand(noise.shape, generator=g)
    with torch.no_grad():
        kv, mask = reference_prefix(model, batch)
    plain = model.head.sample_guided(model._predict_fn(batch, kv, mask), noise, target, weights)
    fast = model.sample_actions(batch, noise, guidance=(target, weights))
    _close(fast.numpy(), plain.numpy())
    assert float((fast - model.sample_actions(batch, noise)).abs().max()) > 1e-3  # the guidance did act
