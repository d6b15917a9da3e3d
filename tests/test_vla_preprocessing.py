"""One preprocessing path: the training pipeline and ``predict`` turn the same raw frame/state into the same tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig
from data_pipelines.rlds.writer import write_rlds
from vla.config import tiny_config
from vla.policy import VLAPolicy
from vla.preprocessing import resize_image
from vla.types import EmbodimentSpec

RAW_HW = (30, 50)  # non-square, not the model's size
SPEC = EmbodimentSpec(name="arm", cameras=("primary", "wrist"), state_dim=5, action_dim=7, gripper_dims=(6,),
                      image_size=RAW_HW)


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    rng = np.random.default_rng(0)
    T = 6
    obs = {c: rng.integers(1, 256, (T, *RAW_HW, 3), dtype=np.uint8) for c in SPEC.cameras}
    obs["state"] = (rng.standard_normal((T, 5)) * [1, 10, 100, 0.1, 3] + 7).astype(np.float32)
    action = rng.standard_normal((T, 7)).astype(np.float32)
    ep = {"steps": {"observation": obs, "action": action, "language_instruction": "lift it"}}
    path = write_rlds([ep], tmp_path_factory.mktemp("skew"), "skew_demos", SPEC, image_encoding="png")
    return path, ep["steps"]


def _raw_obs(steps, t):
    return {"images": {c: steps["observation"][c][t] for c in SPEC.cameras},
            "state": steps["observation"]["state"][t], "prompt": "lift it"}


@pytest.mark.parametrize("mode", ["resize", "pad"])
def test_training_pipeline_and_predict_give_identical_tensors(episode, mode):
    path, steps = episode
    cfg = tiny_config(image_size=(32, 32), image_mode=mode)
    for train in (False, True):  # eval order, and training order with augmentation off
        data = PipelineConfig.for_model(cfg, (DatasetConfig(str(path)),), train=train, augment=None, seed=3)
        data.check_model(cfg)
        pipe = Pipeline(data, progress=False)
        policy = VLAPolicy.create(cfg, list(pipe.embodiments.values()))
        served = [policy.prepare([_raw_obs(steps, t)]) for t in range(len(steps["action"]))]
        for _, sample in zip(range(6), pipe):
            trained = policy.collate([sample])
            matches = [t for t, b in enumerate(served) if torch.equal(b["images"], trained["images"])]
            assert len(matches) == 1, (train, matches)  # uint8 frames exactly equal for exactly one step
            ref = served[matches[0]]
            assert trained["images"].dtype == torch.uint8
            assert torch.equal(ref["image_mask"], trained["image_mask"])
            assert ref["image_mask"][0].tolist() == [True, True]
            assert torch.equal(ref["state"], trained["state"]) and torch.equal(ref["state_mask"], trained["state_mask"])
        # the normalized state is the quantile formula written out here
        raw = steps["observation"]["state"].astype(np.float64)
        q01, q99 = np.quantile(raw, 0.01, axis=0), np.quantile(raw, 0.99, axis=0)
        expect = (raw[2] - q01) / (q99 - q01) * 2 - 1
        np.testing.assert_allclose(served[2]["state"][0, :5].numpy(), expect, rtol=1e-5, atol=1e-5)


def test_resize_modes_against_pil_and_letterbox_geometry():
    img = np.random.default_rng(1).integers(0, 256, (*RAW_HW, 3), dtype=np.uint8)
    stretched = resize_image(img, (32, 32), "resize")
    pil = np.asarray(Image.fromarray(img).resize((32, 32), Image.BILINEAR))  # PIL's antialiased bilinear
    assert stretched.shape == (32, 32, 3) and np.abs(stretched.astype(int) - pil).max() <= 2
    padded = resize_image(img, (32, 32), "pad")  # 30x50 * 0.64 -> 19x32, centered: rows 6..24 hold the image
    assert not padded[:6].any() and not padded[25:].any() and padded[6:25].all(axis=-1).mean() > 0.95
    pil = np.asarray(Image.fromarray(img).resize((32, 19), Image.BILINEAR))
    assert np.abs(padded[6:25].astype(int) - pil).max() <= 2
    assert resize_image(img, RAW_HW, "pad") is img  # already the model's size: untouched


def test_image_mode_travels_with_the_checkpoint(tmp_path):
    cfg = tiny_config(image_mode="pad")
    path = VLAPolicy.create(cfg, [SPEC]).save_pretrained(tmp_path / "c")
    assert VLAPolicy.from_pretrained(path).config.image_mode == "pad"
    meta = json.loads((path / "config.json").read_text())
    del meta["model"]["image_mode"]  # a checkpoint written before image_mode existed
    (path / "config.json").write_text(json.dumps(meta))
    assert VLAPolicy.from_pretrained(path).config.image_mode == "resize"


def test_pipeline_must_match_the_model():
    cfg = tiny_config(image_size=(32, 32), image_mode="pad")
    data = PipelineConfig(datasets=(DatasetConfig("x"),), horizon=8, image_size=(64, 64), image_mode="resize")
    want = r"image_size \(64, 64\) vs model \(32, 32\); image_mode 'resize' vs model 'pad'"
    with pytest.raises(ValueError, match=want):
        data.check_model(cfg)
    with pytest.raises(ValueError, match="image_mode must be one of"):
        PipelineConfig(datasets=(DatasetConfig("x"),), image_mode="crop")
