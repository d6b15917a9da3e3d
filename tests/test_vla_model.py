import dataclasses

import numpy as np
import pytest
import torch

from tests.vla_helpers import observation, panda_spec
from vla.config import HeadConfig, tiny_config
from vla.policy import VLAPolicy
from vla.types import InvalidObservationError


def _fixed_batch(policy, n=4):
    rng = np.random.default_rng(0)
    H = policy.config.action_horizon
    samples = []
    for i in range(n):
        obs = observation(seed=i, size=64, prompt=["lift the cube", "open the door"][i % 2])
        actions = rng.uniform(-1, 1, (H, 7)).astype(np.float32)
        pad = np.zeros(H, bool)
        if i == n - 1:
            pad[-3:] = True  # chunk ran past the episode end
        samples.append({**obs, "actions": actions, "action_pad": pad, "embodiment": "panda"})
    return samples


def _eval_loss(model, batch, draws=8):
    with torch.no_grad():
        losses = [model.compute_loss(batch, torch.Generator().manual_seed(k)).item() for k in range(draws)]
        return float(np.mean(losses))


def test_overfits_one_batch():
    """Flow head end to end; the DDIM head's sampler is pinned by known answers in test_vla_samplers.py."""
    torch.manual_seed(0)
    cfg = tiny_config(head=HeadConfig(kind="flow"))
    policy = VLAPolicy.create(cfg, [panda_spec(with_stats=False)])
    samples = _fixed_batch(policy)
    batch = policy.collate(samples)
    model = policy.model
    before = _eval_loss(model, batch)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(400):
        loss = model.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    after = _eval_loss(model, batch)
    assert after < before / 10, (before, after)
    # sampled actions approach the targets (unpadded steps)
    obs = [{k: s[k] for k in ("images", "state", "prompt")} for s in samples]
    pred = policy.predict(obs, seed=0)
    err = np.mean([np.mean((p[~s["action_pad"]] - s["actions"][~s["action_pad"]]) ** 2) for p, s in zip(pred, samples)])
    baseline = np.mean([np.mean(s["actions"] ** 2) for s in samples])  # error of predicting zeros
    assert err < 0.1 * baseline, (err, baseline)


def test_save_load_bit_identical(tmp_path):
    ur5 = panda_spec("ur5", cameras=("front",), state_dim=7, action_dim=6, gripper_dims=(5,), with_stats=False)
    policy = VLAPolicy.create(tiny_config(), [panda_spec(), ur5])
    obs = [observation(seed=s) for s in range(3)]
    before = policy.predict(obs, seed=7)
    path = policy.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "embodiments", "model.safetensors"]
    assert sorted(p.name for p in (path / "embodiments").iterdir()) == ["panda.json", "ur5.json"]
    loaded = VLAPolicy.from_pretrained(path)
    after = loaded.predict(obs, seed=7)
    for a, b in zip(before, after):
        assert a.dtype == np.float32 and a.shape == (8, 7)
        assert np.array_equal(a, b)
    assert loaded.embodiments == policy.embodiments and loaded.embodiment_ids == policy.embodiment_ids
    ur5_obs = {"images": {"front": np.zeros((32, 32, 3), np.uint8)}, "state": np.zeros(7, np.float32), "prompt": "x"}
    assert loaded.predict([ur5_obs], embodiment="ur5", seed=1)[0].shape == (8, 6)
    # overwriting an existing checkpoint keeps it loadable (atomic replace)
    policy.save_pretrained(path)
    assert np.array_equal(VLAPolicy.from_pretrained(path).predict(obs, seed=7)[0], before[0])


def test_prefix_once_equals_recomputed_and_batch_equals_single():
    policy = VLAPolicy.create(tiny_config(), [panda_spec()])
    obs = [observation(seed=s) for s in range(3)]
    once = policy.predict(obs, seed=3)
    every = policy.predict(obs, seed=3, reuse_prefix=False)
    for a, b in zip(once, every):
        assert np.allclose(a, b, atol=1e-5)
    single = [policy.predict([o], seed=3)[0] for o in obs]
    for a, b in zip(once, single):
        assert np.allclose(a, b, atol=1e-5)
    # different seeds give different samples; per-observation seeds are honored
    other = policy.predict(obs, seed=[3, 4, 5])
    assert np.allclose(other[0], once[0], atol=1e-5) and not np.allclose(other[1], once[1])


def test_missing_camera_is_masked_not_error():
    policy = VLAPolicy.create(tiny_config(), [panda_spec()])
    obs = observation()
    del obs["images"]["wrist"]
    batch = policy.collate([{**obs, "state": obs["state"], "embodiment": "panda"}])
    assert batch["image_mask"].tolist() == [[True, False]]
    assert policy.predict([obs], seed=0)[0].shape == (8, 7)


def test_unnormalizes_into_robot_units():
    """predict = the model's normalized sample mapped back with the q01/q99 formula written here; gripper untouched."""
    spec = panda_spec()
    policy = VLAPolicy.create(tiny_config(), [spec])
    obs = observation()
    out = policy.predict([obs], seed=0)[0]
    with torch.no_grad():
        norm = policy.model.sample_actions(policy.prepare([obs]), policy.make_noise(1, 0))[0, :, :7].numpy()
    q01, q99 = np.array(spec.action_stats.q01), np.array(spec.action_stats.q99)
    expect = (norm + 1) / 2 * (q99 - q01) + q01
    expect[:, 6] = norm[:, 6]  # the gripper dim is not normalized
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-6)
    assert np.abs(out[:, :6] - norm[:, :6]).max() > 0.1  # the stats did change the other dims


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o["images"].update(wrist=np.zeros((84, 84, 3), np.float64)), "observations[0].images.wrist"),
        (lambda o: o.update(state=np.zeros(4, np.float32)), "observations[0].state"),
        (lambda o: o.update(prompt="  "), "observations[0].prompt"),
        (lambda o: o["images"].clear(), "observations[0].images"),
    ],
)
def test_bad_input_names_field(mutate, field):
    policy = VLAPolicy.create(tiny_config(), [panda_spec()])
    obs = observation()
    mutate(obs)
    with pytest.raises(InvalidObservationError) as e:
        policy.predict([obs])
    assert e.value.field == field
    with pytest.raises(InvalidObservationError, match="embodiment: expected one of"):
        policy.predict([observation()], embodiment="nope")


def test_embedded_minilm_is_the_shipped_pretrained_model(monkeypatch):
    from safetensors.numpy import load_file

    from vla.backbones.embedded import minilm_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    full_lm = dataclasses.replace(tiny_config().backbone, num_lm_layers=None)
    policy = VLAPolicy.create(dataclasses.replace(tiny_config(), backbone=full_lm), [panda_spec()])
    shipped = load_file(str(minilm_path() / "model.safetensors"))
    ours = policy.model.backbone.lm.state_dict()
    compared = 0
    for key, value in ours.items():
        ref = shipped.get(key, shipped.get(f"bert.{key}"))
        if ref is None:
            continue
        assert np.array_equal(value.numpy(), ref), key
        compared += 1
    assert compared == len(ours)  # every tensor of our LM came from the shipped file
    assert ours["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert len(policy.model.backbone.lm.encoder.layer) == 6
