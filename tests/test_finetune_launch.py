"""``finetune.launch.train_processes`` from a script: a call the spawned ranks would re-run (no
``if __name__ == "__main__":`` guard) is refused up front with the fix, instead of dying with
``ProcessExitedException``; guarded calls pass the check."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """\
import functools

from data_pipelines.pipeline import DatasetConfig, PipelineConfig
from finetune.config import TrainConfig
from finetune.launch import train_processes
from tests.finetune_helpers import toy_spec, write_toy_dataset
from vla.config import tiny_config
from vla.policy import VLAPolicy

def main():
    data = write_toy_dataset({data!r}, episodes=2, steps=12)
    pipe = PipelineConfig(datasets=(DatasetConfig(str(data)),), horizon=8, image_size=(64, 64))
    make = functools.partial(VLAPolicy.create, tiny_config(), [toy_spec()], seed=0)
    cfg = TrainConfig(steps=1, batch_size=2, warmup_steps=1, progress=False, tensorboard=False)
    train_processes(make, pipe, cfg, {out!r}, processes=2)
    print("TRAINED")

{call}
"""


def test_unguarded_script_gets_a_clear_error(tmp_path):
    script = tmp_path / "train_two.py"
    script.write_text(SCRIPT.format(data=str(tmp_path / "data"), out=str(tmp_path / "out"), call="main()"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "TRAINED" not in done.stdout
    assert "ProcessExitedException" not in done.stderr, done.stderr[-3000:]
    line = SCRIPT.splitlines().index("{call}") + 1
    assert f"{script}:{line}" in done.stderr and 'if __name__ == "__main__":' in done.stderr, done.stderr[-2000:]


def test_guard_detection_on_a_running_script(tmp_path):
    """The check names the running top-level statement of ``__main__``, and passes it under a main guard."""
    script = tmp_path / "probe.py"
    script.write_text("from finetune.launch import _unguarded_main_call\n"
                      "print('TOP', _unguarded_main_call())\n"
                      "def f():\n    return _unguarded_main_call()\n"
                      "if __name__ == '__main__':\n    print('GUARDED', f())\n")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"TOP {script}:2", "GUARDED None"]
