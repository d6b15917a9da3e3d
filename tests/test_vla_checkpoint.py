"""The checkpoint directory format (vla/checkpoint.py): the one directory check, loading through __init__."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.vla_helpers import observation, panda_spec
from vla.checkpoint import check_checkpoint_dir
from vla.config import tiny_config
from vla.policy import VLAPolicy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "policy"
    VLAPolicy.create(tiny_config(), [panda_spec()]).save_pretrained(path)
    return path


def test_check_checkpoint_dir_names_the_problem(ckpt, tmp_path):
    assert check_checkpoint_dir(ckpt) == ckpt
    with pytest.raises(FileNotFoundError, match=r"^--checkpoint .*nope: no such directory$"):
        check_checkpoint_dir(tmp_path / "nope")
    run_dir = ckpt.parent  # a training run's output: the checkpoint is its policy/ folder
    hint = r"^--base .*not a VLA checkpoint \(no config.json\); did you mean .*policy\?$"
    with pytest.raises(FileNotFoundError, match=hint):
        check_checkpoint_dir(run_dir, flag="--base")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"not a VLA checkpoint \(no config.json\)$"):
        check_checkpoint_dir(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        check_checkpoint_dir(tmp_path / "file")
    with pytest.raises(FileNotFoundError, match="did you mean"):
        VLAPolicy.from_pretrained(run_dir)


class _Tagged(VLAPolicy):
    """A subclass whose __init__ adds a field: loading must run it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tag = "built by __init__"


def test_from_pretrained_builds_through_init(ckpt):
    created = VLAPolicy.create(tiny_config(), [panda_spec()])
    loaded = _Tagged.from_pretrained(ckpt)
    assert loaded.tag == "built by __init__"
    assert set(vars(VLAPolicy.from_pretrained(ckpt))) == set(vars(created))
    obs = [observation(seed=1)]
    assert np.array_equal(VLAPolicy.from_pretrained(ckpt).predict(obs, seed=2)[0], loaded.predict(obs, seed=2)[0])


def test_loaded_embodiment_slots_are_kept(tmp_path):
    a, b = panda_spec("a"), panda_spec("b")
    policy = VLAPolicy.create(tiny_config(), [a])
    policy.add_embodiment(b, embodiment_id=3)
    loaded = VLAPolicy.from_pretrained(policy.save_pretrained(tmp_path / "c"))
    assert loaded.embodiment_ids == {"a": 0, "b": 3} and loaded.default_embodiment == "a"


def _vla(*args):
    return subprocess.run([sys.executable, "-m", "vla.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_info_cli_missing_path_and_image_size(ckpt, tmp_path):
    res = _vla("info", str(tmp_path / "nope"))
    assert res.returncode == 1 and res.stderr.strip() == f"vla info: error: {tmp_path / 'nope'}: no such directory"
    res = _vla("info", str(ckpt.parent))
    assert res.returncode == 1 and f"did you mean {ckpt}?" in res.stderr and "Traceback" not in res.stderr
    res = _vla("info", str(ckpt))
    assert res.returncode == 0, res.stderr
    assert "model images: 64x64 (HxW), mode resize" in res.stdout
