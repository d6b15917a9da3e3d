"""benchmarks/gpu_check.py --dry-run: the one-shot GPU script is wired (tiny random PaliGemma / SmolVLM configs
through the same builders, predict variants, batching and training rows) and prints its table on CPU."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # builds two tiny VLMs, compiles a tiny expert, trains two steps: ~1-3 min on 2 busy cores
def test_gpu_check_dry_run_prints_the_table():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("== gpu_check on CPU (dry run")) + 2:]
    rows = {(line[:16].strip(), line[16:52].strip()) for line in table
            if any(word in line for word in ("p50 ", "speed-up", "samples/s", "skipped"))}
    assert rows >= {("predict 1 obs", "eager"), ("predict 1 obs", "expert compiled (serve --compile)"),
                    ("predict 1 obs", "expert compiled + CUDA graphs"), ("batch 2", "eager"), ("batch 4", "eager"),
                    ("train batch 8", "demo model (vla demo recipe)"),
                    ("train batch 8", "SmolVLM-sized (Idefics3 960x32)")}, out.stdout[-2000:]


def test_gpu_check_without_cuda_asks_for_dry_run():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the real check")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "--dry-run" in out.stderr
