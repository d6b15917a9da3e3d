"""``vla finetune --image-encoder/--image-weights/--image-stage/--image-freeze/--image-film``: wired into the new
model's config; misuse fails with one clear line."""

import argparse

import pytest

from finetune.commands.finetune import add_arguments, build
from tests.finetune_helpers import toy_spec, write_toy_dataset
from vla.cli import main as vla_main
from vla.config import tiny_config
from vla.policy import VLAPolicy


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_image")
    # the model first: importing triton (via transformers) after TensorFlow (the toy writer) segfaults here
    ckpt = VLAPolicy.create(tiny_config(), [toy_spec("toy_arm")]).save_pretrained(d / "ckpt")
    cart = write_toy_dataset(d / "data", "toy_cart", episodes=1, steps=8,
                             spec=toy_spec("toy_cart", action_dim=4, state_dim=5, cameras=("front",)))
    return d, cart, ckpt


def test_flags_reach_the_model_config(setup, tmp_path):
    _, cart, _ = setup
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--preset", "tiny", "--data", str(cart), "--out", str(tmp_path), "--image-encoder",
                              "timm:efficientnet_lite0", "--image-stage", "2", "--image-freeze", "stages:1",
                              "--image-weights", "none", "--image-film"])
    policy, _, _ = build(args)
    b = policy.config.backbone
    assert (b.image_encoder, b.image_stage, b.image_freeze, b.image_weights, b.image_film) == (
        "timm:efficientnet_lite0", 2, "stages:1", "none", True)
    enc = policy.model.backbone.image_encoder
    assert enc.features.__self__ is enc and len(enc.trunk.blocks) == 3 and enc.num_frozen_steps == 4
    assert enc.film is not None and enc.film.mix.in_channels == 40  # Lite0's stage-2 channels


@pytest.mark.parametrize("flags, expected", [
    (["--image-encoder", "timm:efficientnet_lite00"], "unknown timm model 'efficientnet_lite00'; did you mean"),
    (["--image-stage", "2"], "--image-stage: need --image-encoder timm:<name>"),
    (["--image-encoder", "timm:efficientnet_lite0", "--image-freeze", "half"], "image_freeze 'half'"),
])
def test_bad_image_flags_are_one_line_errors(setup, capsys, tmp_path, flags, expected):
    _, cart, _ = setup
    rc = vla_main(["finetune", "--preset", "tiny", "--data", str(cart), "--out", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert rc == 1 and expected in err and "Traceback" not in err, err


def test_image_flags_with_a_checkpoint_base_are_refused(setup, capsys, tmp_path):
    _, cart, ckpt = setup
    rc = vla_main(["finetune", "--base", str(ckpt), "--data", str(cart), "--out", str(tmp_path), "--image-encoder",
                   "timm:efficientnet_lite0"])
    err = capsys.readouterr().err
    assert rc == 1 and "--image-encoder: a checkpoint keeps its image encoder" in err, err
