"""``vla finetune`` bad configurations fail with one clear line; a short run writes a servable policy."""

import pytest

from tests.finetune_helpers import toy_spec, write_toy_dataset
from vla.cli import main as vla_main
from vla.config import tiny_config
from vla.policy import VLAPolicy


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    cart = write_toy_dataset(d / "data", "toy_cart", episodes=2, steps=12,
                             spec=toy_spec("toy_cart", action_dim=4, state_dim=5, cameras=("front",)))
    ckpt = VLAPolicy.create(tiny_config(), [toy_spec("toy_arm")]).save_pretrained(d / "ckpt")
    (d / "empty").mkdir()
    return d, cart, ckpt


def _run(capsys, *argv):
    rc = vla_main(["finetune", *argv])
    return rc, capsys.readouterr()


def test_unknown_base(setup, capsys, tmp_path):
    d, cart, _ = setup
    rc, out = _run(capsys, "--base", "no-such-base", "--data", str(cart), "--out", str(tmp_path))
    assert rc == 1 and "unknown base" in out.err and "no-such-base" in out.err
    assert "Traceback" not in out.err


def test_no_data_found(setup, capsys, tmp_path):
    d, _, _ = setup
    rc, out = _run(capsys, "--data", str(d / "missing"), "--out", str(tmp_path))
    assert rc == 1 and "no data found" in out.err and "missing" in out.err
    rc, out = _run(capsys, "--preset", "tiny", "--data", str(d / "empty"), "--out", str(tmp_path))
    assert rc == 1 and str(d / "empty") in out.err and "Traceback" not in out.err


def test_action_dim_mismatch(setup, capsys, tmp_path):
    d, cart, ckpt = setup
    rc, out = _run(capsys, "--base", str(ckpt), "--data", str(cart), "--embodiment", "toy_arm", "--out", str(tmp_path),
                   "--steps", "1")
    assert rc == 1 and "action_dim 4" in out.err and "action_dim 7" in out.err and "toy_arm" in out.err


@pytest.mark.slow
def test_short_full_finetune_writes_policy(setup, capsys, tmp_path):
    d, cart, _ = setup
    rc, out = _run(capsys, "--preset", "tiny", "--data", str(cart), "--out", str(tmp_path), "--steps", "2",
                   "--batch-size", "2", "--warmup", "1", "--threads", "1")
    assert rc == 0, out.err
    assert "trainable" in out.out and "vla serve --checkpoint" in out.out
    policy = VLAPolicy.from_pretrained(tmp_path / "policy")
    assert "toy_cart" in policy.embodiments
    assert (tmp_path / "loss.png").exists()
