"""Batched augmentation in training (TrainConfig.augment, ``vla finetune --augment``): it reaches the training
batches, seeded by (seed, step, micro-batch) so a resumed run repeats the uninterrupted one, a resume with other
augmentation is refused, and validation / ``predict`` never see it (the images reaching the real backbone)."""

import argparse

import numpy as np
import pytest
import torch

from data_pipelines.augment import LIGHT, STRONG, augment_images, batch_generator
from data_pipelines.pipeline import DatasetConfig, PipelineConfig
from data_pipelines.transforms import AugmentConfig
from finetune.config import TrainConfig
from finetune.trainer import train
from tests.finetune_helpers import toy_spec, write_toy_dataset
from vla.config import tiny_config
from vla.policy import VLAPolicy


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("data"), episodes=2, steps=12)


def _data(toy):
    return PipelineConfig(datasets=(DatasetConfig(str(toy)),), horizon=8, image_size=(64, 64), seed=0, augment=None)


def _cfg(**kw):  # a constant lr (no warmup, no decay): a run of 2 steps extended to 4 follows the 4-step run
    base = dict(steps=4, batch_size=4, warmup_steps=0, min_lr_ratio=1.0, lr=1e-3, save_every=2, keep_last=2,
                progress=False, tensorboard=False, seed=0, augment=STRONG)
    return TrainConfig(**{**base, **kw})


def _policy():
    torch.set_num_threads(1)
    return VLAPolicy.create(tiny_config(), [toy_spec()], seed=0)


def test_resumed_run_repeats_the_augmented_batches_and_refuses_other_augmentation(toy, tmp_path):
    data = _data(toy)
    ref = train(_policy(), data, _cfg(), tmp_path / "ref", log=lambda _m: None)
    train(_policy(), data, _cfg(steps=2), tmp_path / "run", log=lambda _m: None)
    res = train(_policy(), data, _cfg(), tmp_path / "run", log=lambda _m: None)
    assert res.resumed_from == 2 and res.step == 4
    assert res.losses == pytest.approx(ref.losses, rel=1e-6, abs=1e-7)
    off = train(_policy(), data, _cfg(augment=None), tmp_path / "off", log=lambda _m: None)
    assert off.losses != pytest.approx(ref.losses, rel=1e-4)  # the augmentation reaches the loss
    with pytest.raises(ValueError, match=r"other data/batch settings \(augment\.brightness"):
        train(_policy(), data, _cfg(steps=6, augment=LIGHT), tmp_path / "run", log=lambda _m: None)
    with pytest.raises(ValueError, match="augment"):
        train(_policy(), data, _cfg(steps=6, augment=None), tmp_path / "run", log=lambda _m: None)


def _obs():
    rng = np.random.default_rng(0)
    return {"images": {c: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for c in ("agentview", "wrist")},
            "state": rng.normal(size=9).astype(np.float32), "prompt": "lift the cube"}


def _images_seen(data, augment, out):
    """Train 2 steps validating (predict) after each; the images the backbone received, in training and in eval."""
    policy, obs, seen = _policy(), _obs(), {True: [], False: []}
    policy.model.backbone.register_forward_pre_hook(lambda m, args: seen[m.training].append(args[0].clone()))
    train(policy, data, _cfg(steps=2, val_every=1, augment=augment), out, log=lambda _m: None,
          val_hook=lambda pol, step: {"a0": float(pol.predict([obs], seed=0)[0][0, 0])})
    return seen


def test_training_batches_are_augmented_and_validation_predict_never(toy, tmp_path):
    from data_pipelines.torch_data import VLAIterableDataset

    data = _data(toy)
    on, off = _images_seen(data, STRONG, tmp_path / "on"), _images_seen(data, None, tmp_path / "off")
    assert len(on[True]) == len(off[True]) == 2 and len(on[False]) == len(off[False]) == 2
    first = next(iter(VLAIterableDataset(data).dataloader(4, num_workers=0)))
    raw = _policy().collate(first)["images"]  # the first training batch as the data gives it
    assert torch.equal(off[True][0], raw)
    assert not torch.equal(on[True][0], raw)
    mask = torch.ones(raw.shape[:2], dtype=torch.bool)  # both cameras of the toy arm are present
    assert torch.equal(on[True][0], augment_images(raw, mask, STRONG, batch_generator(0, 0, 0)))  # (seed, step, micro)
    assert torch.equal(on[True][1], augment_images(off[True][1], mask, STRONG, batch_generator(0, 1, 0)))
    expected = torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im in _obs()["images"].values()])[None]
    for images in on[False] + off[False]:  # validation's predict: the frames as sent, augmentation on or off
        assert torch.equal(images, expected)


def _build(toy, tmp_path, *flags):
    from finetune.commands.finetune import add_arguments, build

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--preset", "tiny", "--data", str(toy), "--out", str(tmp_path), *flags])
    _, data, tc = build(args)
    return data, tc


def test_cli_augment_flag_picks_one_augmentation_stage(toy, tmp_path, capsys):
    data, tc = _build(toy, tmp_path)
    assert data.augment == AugmentConfig() and tc.augment is None  # default: the pipeline's per-sample stage
    data, tc = _build(toy, tmp_path, "--augment", "none")
    assert data.augment is None and tc.augment is None
    for name, preset in (("light", LIGHT), ("strong", STRONG)):
        data, tc = _build(toy, tmp_path, "--augment", name)
        assert data.augment is None and tc.augment == preset
    with pytest.raises(SystemExit):
        _build(toy, tmp_path, "--augment", "huge")
    assert "invalid choice: 'huge'" in capsys.readouterr().err
