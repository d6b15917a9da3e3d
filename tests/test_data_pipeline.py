"""Normalize / chunk / image stages, stats cache, mixtures, determinism, resume, torch DataLoader."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig
from data_pipelines.rlds.writer import write_rlds
from data_pipelines.sources import open_dataset
from data_pipelines.stats import NormConfig, get_stats
from data_pipelines.transforms import AugmentConfig, Chunk, ImageTransform, Normalize
from vla.types import EmbodimentSpec

ARM = EmbodimentSpec(name="arm7", cameras=("primary", "wrist"), state_dim=5, action_dim=7, gripper_dims=(6,))
CART = EmbodimentSpec(name="cart2", cameras=("primary",), state_dim=2, action_dim=2)


def episodes(spec, n, seed, T=(6, 12), hw=16):
    rng = np.random.default_rng(seed)
    out = []
    for e in range(n):
        t = int(rng.integers(*T))
        act = (rng.standard_normal((t, spec.action_dim)) * (1 + np.arange(spec.action_dim)) + 3).astype(np.float32)
        for d in spec.gripper_dims:
            act[:, d] = rng.integers(0, 2, t)
        out.append({"steps": {"observation": {**{c: rng.integers(0, 256, (t, hw, hw, 3), dtype=np.uint8)
                                                 for c in spec.cameras},
                                              "state": rng.standard_normal((t, spec.state_dim)).astype(np.float32)},
                              "action": act, "language_instruction": f"task {e}"}})
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipe")
    arm_eps = episodes(ARM, 6, 0)
    cart_eps = episodes(CART, 4, 1)
    arm = write_rlds(arm_eps, d, "arm_demos", ARM, image_encoding="png", episodes_per_shard=2)
    cart = write_rlds(cart_eps, d, "cart_demos", CART, image_encoding="png")
    return {"arm": arm, "cart": cart, "arm_eps": arm_eps, "cart_eps": cart_eps}


def test_norm_stats_match_numpy_and_cache(data):
    src = open_dataset(data["arm"])
    r = get_stats(src, NormConfig("quantile"), progress=False)
    assert not r.from_cache and r.path.parent == data["arm"]  # cached beside the data
    a = np.concatenate([e["steps"]["action"] for e in data["arm_eps"]]).astype(np.float64)
    s = np.concatenate([e["steps"]["observation"]["state"] for e in data["arm_eps"]]).astype(np.float64)
    np.testing.assert_allclose(r.action.q01, np.quantile(a, 0.01, axis=0), rtol=1e-6)
    np.testing.assert_allclose(r.action.q99, np.quantile(a, 0.99, axis=0), rtol=1e-6)
    np.testing.assert_allclose(r.action.mean, a.mean(0), rtol=1e-6)
    np.testing.assert_allclose(r.action.std, a.std(0), rtol=1e-6)
    np.testing.assert_allclose(r.state.mean, s.mean(0), rtol=1e-5, atol=1e-7)
    assert r.action.mode == ("quantile",) * 6 + ("none",)  # gripper untouched
    assert r.steps == a.shape[0] and r.episodes == 6
    # second run: the cache file is reused (prove it by planting a marker in it)
    d = json.loads(r.path.read_text())
    d["action"]["mean"][0] = 1234.5
    r.path.write_text(json.dumps(d))
    r2 = get_stats(open_dataset(data["arm"]), NormConfig("quantile"), progress=False)
    assert r2.from_cache and r2.action.mean[0] == 1234.5
    # changing the transform invalidates: another key, recomputed
    r3 = get_stats(src, NormConfig("zscore"), progress=False)
    assert not r3.from_cache and r3.path != r.path and r3.action.mode[0] == "zscore"
    r4 = get_stats(src, NormConfig("quantile", skip_action_dims=(0,)), progress=False)
    assert not r4.from_cache and r4.action.mode[0] == "none"
    r.path.unlink()


def test_normalize_inverse_and_gripper_untouched(data):
    src = open_dataset(data["arm"])
    r = get_stats(src, progress=False)
    spec = src.spec.with_stats(r.state, r.action)
    norm = Normalize(spec)
    ep = next(src.iter_episodes())
    out = norm.inputs(ep)
    np.testing.assert_array_equal(out["actions"][:, 6], ep["actions"][:, 6])
    assert np.abs(out["actions"][:, :6]).max() < 3
    np.testing.assert_allclose(norm.outputs(out["actions"]), ep["actions"], atol=1e-4)


def test_chunk_pad_masks_at_episode_end():
    acts = np.arange(10, dtype=np.float32).reshape(5, 2)
    c = Chunk(horizon=4, history=3)
    a, pad = c.actions_at(acts, 3)
    np.testing.assert_array_equal(pad, [False, False, True, True])
    np.testing.assert_array_equal(a, acts[[3, 4, 4, 4]])
    a, pad = c.actions_at(acts, 0)
    assert not pad.any()
    h, hpad = c.state_history(acts, 1)
    np.testing.assert_array_equal(h, acts[[0, 0, 1]])
    np.testing.assert_array_equal(hpad, [True, False, False])


def test_image_transform_train_only_augmentation():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    ev = ImageTransform((32, 32), train=False)
    assert ev(img).shape == (32, 32, 3)
    np.testing.assert_array_equal(ev(img), ev(img))
    pad = ImageTransform((32, 32), mode="pad")(img)
    assert pad.shape == (32, 32, 3) and not pad[:5].any()  # letterboxed
    tr = ImageTransform((32, 32), train=True)
    a = tr(img, np.random.default_rng(1))
    np.testing.assert_array_equal(a, tr(img, np.random.default_rng(1)))
    assert not np.array_equal(a, tr(img, np.random.default_rng(2)))
    assert not np.array_equal(a, ev(img))
    with pytest.raises(ValueError):
        tr(img)


def test_channel_gain_recolors_a_plain_surface():
    """A white table under channel gain becomes tinted: channels scale independently, deterministically."""
    white = np.full((24, 24, 3), 200, np.uint8)
    no_crop = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), brightness=0, contrast=0, saturation=0)
    plain = ImageTransform((24, 24), train=True, augment=no_crop)
    assert np.array_equal(plain(white, np.random.default_rng(0)), white)
    gained = ImageTransform((24, 24), train=True, augment=dataclasses.replace(no_crop, channel_gain=0.5))
    outs = [gained(white, np.random.default_rng(s)) for s in range(8)]
    np.testing.assert_array_equal(outs[0], gained(white, np.random.default_rng(0)))
    for out in outs:
        assert out.dtype == np.uint8 and (out == out[0, 0]).all()  # one color per channel over the surface
    colors = np.array([o[0, 0] for o in outs], np.float64)
    assert np.ptp(colors, axis=0).min() > 40  # each channel moved, by different amounts across draws
    assert (np.ptp(colors, axis=1) > 20).any()  # not just brightness: the channels differ within an image


def _cfg(data, **kw):
    ds = (DatasetConfig(str(data["arm"]), weight=3.0), DatasetConfig(str(data["cart"]), weight=1.0))
    base = dict(datasets=ds, horizon=4, image_size=(16, 16), seed=7, buffer_episodes=3)
    base.update(kw)
    return PipelineConfig(**base)


def _take(it, n):
    return [next(it) for _ in range(n)]


def _same(a, b):
    return (a["embodiment"] == b["embodiment"] and np.array_equal(a["actions"], b["actions"])
            and np.array_equal(a["state"], b["state"]) and a["images"].keys() == b["images"].keys()
            and all(np.array_equal(a["images"][c], b["images"][c]) for c in a["images"]))


def test_mixture_weights_determinism_and_exact_resume(data):
    cfg = _cfg(data)
    p = Pipeline(cfg, progress=False)
    assert set(p.embodiments) == {"arm7", "cart2"}
    assert p.embodiments["arm7"].action_stats.dim == 7 and p.embodiments["cart2"].action_stats.dim == 2
    it = iter(p)
    first = _take(it, 300)  # > one epoch of both datasets
    frac = np.mean([s["embodiment"] == "arm7" for s in first])
    assert 0.68 < frac < 0.82, frac
    s = first[0]
    assert s["actions"].shape == (4, 7 if s["embodiment"] == "arm7" else 2) and s["action_pad"].shape == (4,)
    assert s["images"]["primary"].shape == (16, 16, 3) and s["prompt"].startswith("task")
    again = _take(iter(Pipeline(cfg, progress=False)), 50)
    assert all(_same(a, b) for a, b in zip(first, again))
    other = _take(iter(Pipeline(cfg.replace(seed=8), progress=False)), 50)
    assert not all(_same(a, b) for a, b in zip(first, other))
    # resume: position after 137 samples restores the exact continuation
    p1 = Pipeline(cfg, progress=False)
    it1 = iter(p1)
    _take(it1, 137)
    state = json.loads(json.dumps(p1.state_dict()))  # JSON-able
    cont = _take(it1, 60)
    p2 = Pipeline(cfg, progress=False)
    p2.load_state_dict(state)
    assert all(_same(a, b) for a, b in zip(cont, _take(iter(p2), 60)))


def test_memory_cache_serves_later_epochs_without_the_files(data, tmp_path):
    """cache_mb: the same samples as decoding every epoch; once cached, the shards are not read again."""
    import shutil

    arm = shutil.copytree(data["arm"], tmp_path / "arm_demos" / "1.0.0")
    cfg = PipelineConfig(datasets=(DatasetConfig(str(arm)),), horizon=4, image_size=(16, 16), seed=3)
    n_steps = sum(len(e["steps"]["action"]) for e in data["arm_eps"])
    reference = _take(iter(Pipeline(cfg, progress=False)), 3 * n_steps)  # three epochs, decoded each time
    cached = Pipeline(cfg.replace(cache_mb=64), progress=False)
    it = iter(cached)
    first = _take(it, n_steps + 1)  # one epoch read from the files (and the next one opened)
    assert cached.sources[0].used > 0 and len(cached.sources[0].cache) == len(data["arm_eps"])
    for shard in arm.glob("*.tfrecord*"):
        shard.unlink()  # later epochs can only come from RAM
    rest = _take(it, 2 * n_steps - 1)
    assert all(_same(a, b) for a, b in zip(first + rest, reference))
    tiny = Pipeline(cfg.replace(datasets=(DatasetConfig(str(data["arm"])),), cache_mb=1e-3), progress=False)
    _take(iter(tiny), n_steps)
    assert not tiny.sources[0].cache and tiny.sources[0].used == 0  # over budget: nothing kept, still correct


def test_eval_mode_one_pass_every_step_once(data):
    cfg = _cfg(data, train=False, datasets=(DatasetConfig(str(data["arm"])),))
    samples = list(Pipeline(cfg, progress=False))
    total = sum(e["steps"]["action"].shape[0] for e in data["arm_eps"])
    assert len(samples) == total
    ev = ImageTransform((16, 16), train=False)
    np.testing.assert_array_equal(samples[0]["images"]["wrist"],
                                  ev(data["arm_eps"][0]["steps"]["observation"]["wrist"][0]))
    last = data["arm_eps"][0]["steps"]["action"].shape[0] - 1
    assert samples[last]["action_pad"].tolist() == [False, True, True, True]


def test_state_history_option(data):
    cfg = _cfg(data, train=False, history=3, datasets=(DatasetConfig(str(data["arm"])),))
    samples = list(Pipeline(cfg, progress=False))
    assert samples[0]["state_history"].shape == (3, 5)
    assert samples[0]["state_history_pad"].tolist() == [True, True, False]
    np.testing.assert_array_equal(samples[2]["state_history"][-1], samples[2]["state"])
    np.testing.assert_array_equal(samples[2]["state_history"][0], samples[0]["state"])


def test_camera_subset_and_unknown_camera(data):
    cfg = _cfg(data, datasets=(DatasetConfig(str(data["arm"]), cameras=("wrist",)),))
    p = Pipeline(cfg, progress=False)
    assert p.embodiments["arm7"].cameras == ("wrist",)
    assert set(next(iter(p))["images"]) == {"wrist"}
    with pytest.raises(ValueError, match=r"cameras \['top'\] not in embodiment 'arm7'"):
        Pipeline(_cfg(data, datasets=(DatasetConfig(str(data["arm"]), cameras=("top",)),)), progress=False)


@pytest.mark.slow  # ~10 s alone (loads the tiny policy); ~30 s on a busy 2-core machine
def test_torch_dataloader_feeds_policy_collate(data):
    from data_pipelines.torch_data import PositionTracker, VLAIterableDataset
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    cfg = _cfg(data, horizon=8, image_size=(64, 64))
    ds = VLAIterableDataset(cfg)
    policy = VLAPolicy.create(tiny_config(), embodiments=list(ds.embodiments.values()))
    dl = ds.dataloader(batch_size=4, num_workers=2, prefetch_factor=2)
    tracker = PositionTracker()
    workers = set()
    for i, batch in enumerate(dl):
        tracker.update(batch)
        workers.update(s["_worker"] for s in batch)
        model_batch = policy.collate(batch)
        loss = policy.model.compute_loss(model_batch)
        assert np.isfinite(loss.detach().item())
        if i == 5:
            break
    assert workers == {0, 1} and set(tracker.state_dict()) == {0, 1}
    assert model_batch["actions"].shape[:2] == (4, 8)
