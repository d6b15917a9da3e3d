"""Image encoders of the embedded backbone: the conv encoder's parameter names (old checkpoints), timm encoders
cut at a stage, EfficientNet-Lite0 ImageNet weights from the pip file, frozen prefixes, and the clear errors."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
from vla_helpers import observation, panda_spec

from vla.backbones.embedded import ConvImageEncoder
from vla.backbones.image_weights import ImageWeightsError, default_weights_path, read_state_dict, to_trunk_names
from vla.backbones.timm_encoder import TimmImageEncoder
from vla.config import BackboneConfig, tiny_config
from vla.policy import VLAPolicy

LITE0 = "timm:efficientnet_lite0"


@pytest.fixture(scope="module")
def pip_file():
    path = default_weights_path("efficientnet_lite0")
    return path, torch.load(path, map_location="cpu", weights_only=True)


def encoder(**kw) -> TimmImageEncoder:
    return TimmImageEncoder(BackboneConfig(image_encoder=LITE0, **kw), out_dim=16)


def test_conv_encoder_parameter_names_unchanged():
    """The names checkpoints written before timm encoders existed hold (written out, not derived)."""
    enc = ConvImageEncoder((8, 16), grid=2, out_dim=4, stem=2, keypoints=3)
    assert sorted(enc.state_dict()) == sorted([
        "pos", "convs.0.weight", "convs.0.bias", "convs.1.weight", "convs.1.bias", "convs.3.weight", "convs.3.bias",
        "convs.4.weight", "convs.4.bias", "proj.weight", "proj.bias", "keypoints.log_temperature",
        "keypoints.to_maps.weight", "keypoints.to_maps.bias", "keypoint_proj.weight", "keypoint_proj.bias"])


def test_lite0_weights_equal_the_pip_file(pip_file):
    _, src = pip_file
    assert len(src) == 296
    enc = encoder(image_stage=4)  # the whole feature trunk; only the 1x1 head conv, its BN and the fc stay unused
    trunk = enc.trunk
    # hand-written correspondences (EfficientNet-PyTorch name -> timm module), stage layout 1,2,2,3,3,4,1 blocks
    expected = {
        "_conv_stem.weight": trunk.conv_stem.weight,
        "_bn0.running_var": trunk.bn1.running_var,
        "_blocks.0._depthwise_conv.weight": trunk.blocks[0][0].conv_dw.weight,
        "_blocks.0._project_conv.weight": trunk.blocks[0][0].conv_pw.weight,
        "_blocks.1._expand_conv.weight": trunk.blocks[1][0].conv_pw.weight,
        "_blocks.2._bn1.running_mean": trunk.blocks[1][1].bn2.running_mean,
        "_blocks.5._project_conv.weight": trunk.blocks[3][0].conv_pwl.weight,
        "_blocks.10._bn2.bias": trunk.blocks[4][2].bn3.bias,
        "_blocks.15._depthwise_conv.weight": trunk.blocks[6][0].conv_dw.weight,
    }
    for name, tensor in expected.items():
        assert torch.equal(src[name], tensor), name
    # every trunk tensor, in execution order, equals the file's tensor at the same position (the file lists its
    # 288 trunk tensors first, then _conv_head, _bn1, _fc): an oracle independent of the name map
    ours = list(trunk.state_dict().values())
    assert len(ours) == 288
    for i, (a, b) in enumerate(zip(list(src.values())[:288], ours)):
        assert a.shape == b.shape and torch.equal(a, b), i
    assert sorted(enc.unused_weights) == ["bn2.bias", "bn2.num_batches_tracked", "bn2.running_mean",
                                          "bn2.running_var", "bn2.weight", "classifier.bias", "classifier.weight",
                                          "conv_head.weight"]


def test_mapped_lite0_classifies_grace_hopper_as_military_uniform(pip_file):
    """The whole mapped network is ImageNet-sane: matplotlib's Grace Hopper photo -> 652 'military uniform'."""
    import matplotlib
    import timm
    from PIL import Image

    path, _ = pip_file
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(to_trunk_names(read_state_dict(path), "tf_efficientnet_lite0", set()), strict=True)
    img = Image.open(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")).convert("RGB")
    x = torch.tensor(np.asarray(img.resize((224, 224), Image.BICUBIC))).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        probs = model((x - 0.5) / 0.5).softmax(-1)[0]
    assert int(probs.argmax()) == 652 and probs[652] > 0.3


def test_stage_cut_sizes_and_normalization():
    enc = encoder(image_stage=2, image_weights="none", image_grid=3, image_keypoints=4)
    assert len(enc.trunk.blocks) == 3  # stages after the cut are not built
    assert enc.features(torch.zeros(2, 3, 84, 84, dtype=torch.uint8)).shape == (2, 40, 11, 11)
    assert enc(torch.zeros(2, 3, 84, 84, dtype=torch.uint8)).shape == (2, 10, 16)
    assert enc.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])  # timm's pretrained_cfg
    tf = TimmImageEncoder(BackboneConfig(image_encoder="timm:tf_efficientnet_lite0", image_weights="none"), 16)
    assert tf.std.flatten().tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_unknown_name_stage_and_freeze_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown timm model 'efficientnet_lit0'; did you mean efficientnet_lite0"):
        tiny_config(backbone=BackboneConfig(image_encoder="timm:efficientnet_lit0"))
    with pytest.raises(ValueError, match=r"image_encoder must be 'conv' or 'timm:<model name>'; got 'resnet'"):
        tiny_config(backbone=BackboneConfig(image_encoder="resnet"))
    with pytest.raises(ValueError, match=r"image_stage 5: timm:efficientnet_lite0 has feature stages 0..4"):
        encoder(image_stage=5, image_weights="none")
    with pytest.raises(ValueError, match=r"image_freeze 'stages'"):
        tiny_config(backbone=BackboneConfig(image_encoder=LITE0, image_freeze="stages"))
    with pytest.raises(ValueError, match=r"stages:3: beyond image_stage 2"):
        tiny_config(backbone=BackboneConfig(image_encoder=LITE0, image_stage=2, image_freeze="stages:3"))
    with pytest.raises(ValueError, match=r"apply to timm image encoders"):
        tiny_config(backbone=BackboneConfig(image_weights="/x.pth"))


def test_mismatched_file_names_missing_unexpected_and_misshaped(pip_file, tmp_path):
    _, src = pip_file
    bad = dict(src)
    del bad["_blocks.1._bn0.weight"]
    bad["extra.weight"] = torch.zeros(3)
    bad["_blocks.2._expand_conv.weight"] = torch.zeros(99, 24, 1, 1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ImageWeightsError) as err:
        encoder(image_stage=3, image_weights=str(tmp_path / "bad.pth"))
    msg = str(err.value)
    assert "bad.pth" in msg and "1 missing (blocks.1.0.bn1.weight)" in msg and "1 unexpected (extra.weight)" in msg
    assert "1 mis-shaped (blocks.1.1.conv_pw.weight (99, 24, 1, 1) != (144, 24, 1, 1))" in msg
    with pytest.raises(FileNotFoundError, match="nope.pth: no such file"):
        encoder(image_weights=str(tmp_path / "nope.pth"))


def test_timm_named_safetensors_directory_loads(tmp_path):
    from safetensors.torch import save_file

    donor = encoder(image_stage=2, image_weights="none")
    (tmp_path / "w").mkdir()
    save_file({k: v.contiguous() for k, v in donor.trunk.state_dict().items()}, tmp_path / "w" / "model.safetensors")
    enc = encoder(image_stage=1, image_weights=str(tmp_path / "w"))
    for name, tensor in enc.trunk.state_dict().items():
        assert torch.equal(tensor, donor.trunk.state_dict()[name]), name
    assert "blocks.2.0.conv_pw.weight" in enc.unused_weights  # beyond the cut: reported unused, not an error


def _batch(policy, n=2):
    rng = np.random.default_rng(0)
    samples = [{**observation(seed=i, size=64), "actions": rng.uniform(-1, 1, (8, 7)).astype(np.float32),
                "action_pad": np.zeros(8, bool), "embodiment": "panda"} for i in range(n)]
    return samples, policy.collate(samples)


def test_tiny_policy_partly_frozen_trains_and_reloads(tmp_path):
    bb = dataclasses.replace(tiny_config().backbone, image_encoder=LITE0, image_stage=2, image_freeze="stages:1",
                             image_keypoints=4)
    policy = VLAPolicy.create(tiny_config(backbone=bb), [panda_spec()])
    enc = policy.model.backbone.image_encoder
    frozen, trained = enc.trunk.blocks[1][1].bn2, enc.trunk.blocks[2][0].bn1
    frozen_before = (frozen.running_mean.clone(), enc.trunk.conv_stem.weight.detach().clone())
    trained_before = trained.running_mean.clone()
    samples, batch = _batch(policy)
    model = policy.model.train()
    model.requires_grad_(True)  # even if a trainer marks everything trainable, the frozen prefix runs under no_grad
    assert not frozen.training and trained.training
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        model.compute_loss(batch).backward()
        opt.step()
    assert enc.trunk.conv_stem.weight.grad is None and frozen.weight.grad is None
    assert enc.trunk.blocks[2][0].conv_pw.weight.grad.abs().sum() > 0
    assert torch.equal(frozen.running_mean, frozen_before[0]) and torch.equal(enc.trunk.conv_stem.weight,
                                                                               frozen_before[1])
    assert not torch.equal(trained.running_mean, trained_before)  # the trainable stage's BN does update
    model.eval()
    obs = [{k: s[k] for k in ("images", "state", "prompt")} for s in samples]
    actions = policy.predict(obs, seed=0)
    reloaded = VLAPolicy.from_pretrained(policy.save_pretrained(tmp_path / "ckpt"))
    assert reloaded.config.backbone.image_freeze == "stages:1"
    for a, b in zip(actions, reloaded.predict(obs, seed=0)):
        assert np.array_equal(a, b)


def test_fully_frozen_trunk_stays_in_eval_and_gets_no_grad():
    enc = encoder(image_stage=1, image_freeze="all", image_weights="none").train()
    assert not any(m.training for m in enc.trunk.modules()) and enc.proj.training
    enc(torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)).sum().backward()
    assert all(p.grad is None for p in enc.trunk.parameters()) and enc.proj.weight.grad is not None


def test_feature_cache_returns_the_frozen_features_and_runs_the_trunk_once_per_frame():
    enc = encoder(image_stage=2, image_freeze="all", image_weights="none").train()
    frames = torch.randint(0, 255, (5, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="no frozen layers"):
        encoder(image_stage=1, image_freeze="none", image_weights="none").enable_feature_cache(8)
    enc.enable_feature_cache(8)
    stem_calls = []
    enc.trunk.conv_stem.register_forward_hook(lambda m, i, o: stem_calls.append(i[0].shape[0]))
    first = enc.features(frames[[0, 1, 2]])
    again = enc.features(frames[[2, 3, 0, 4]])  # 2 frames seen, 2 new: only the new ones go through the stem
    assert stem_calls == [3, 2] and (enc.feature_cache.hits, enc.feature_cache.misses) == (2, 5)
    enc.eval()  # the oracle: the same frozen trunk without the cache (eval mode never uses it)
    expected = enc.features(frames)
    assert stem_calls[-1] == 5
    torch.testing.assert_close(first, expected[[0, 1, 2]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, expected[[2, 3, 0, 4]], rtol=1e-5, atol=1e-5)


def test_feature_cache_keeps_the_trainable_stages_after_it_trainable():
    enc = encoder(image_stage=2, image_freeze="stages:1", image_weights="none").train()
    enc.enable_feature_cache(8)
    frames = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    enc(frames).sum().backward()
    enc(frames).sum().backward()  # all from the cache now
    assert enc.feature_cache.hits == 4 and enc.trunk.conv_stem.weight.grad is None
    assert enc.trunk.blocks[2][0].conv_pw.weight.grad.abs().sum() > 0


def test_feature_cache_stops_storing_at_its_size_limit():
    from vla.backbones.feature_cache import FrozenFeatureCache

    cache = FrozenFeatureCache(max_mb=3 * 4 * 64 / 2**20)  # room for three float32[64] features
    frames = torch.arange(5 * 12, dtype=torch.uint8).view(5, 12)
    out = cache.run(frames, lambda x: x.float().sum(1, keepdim=True).expand(-1, 64))
    assert len(cache.store) == 3 and cache.held_bytes == 3 * 64 * 4
    assert torch.equal(out[:, 0], frames.float().sum(1))
    assert torch.equal(cache.run(frames, lambda x: -x.float()[:, :1].expand(-1, 64))[:3, 0], frames.float().sum(1)[:3])
