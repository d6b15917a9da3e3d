import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent

# test modules import tensorflow(_datasets) and render directly: Triton's native library must load first
from vla.native import preload_triton  # noqa: E402

preload_triton()


def _patient_httpx() -> None:
    """httpx's module-level calls time out after 5 s; a loopback server on a loaded 2-core CI box can take longer
    to answer (a real hang still fails, after 60 s). A test that passes its own ``timeout=`` keeps it."""
    import functools

    import httpx

    for name in ("get", "post", "put", "delete", "request", "stream"):
        setattr(httpx, name, functools.partial(getattr(httpx, name), timeout=60.0))


_patient_httpx()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every dependency the project declares (base + all + dev extras) must be installed: a missing one
    fails the whole run, naming it, instead of letting its tests skip. VLA_ALLOW_MISSING_DEPS=1 opts out."""
    if os.environ.get("VLA_ALLOW_MISSING_DEPS") == "1":
        return
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_deps.py"), "--extras", "all,dev"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.exit(f"declared dependencies missing, no test run:\n{res.stderr.strip()}", returncode=3)
