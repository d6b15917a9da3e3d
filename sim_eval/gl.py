"""MuJoCo's OpenGL setup shared by every sim env (robosuite and Meta-World)."""

from __future__ import annotations

import os
import sys
import warnings

os.environ.setdefault("MUJOCO_GL", "egl")


_SOFTPIPE_MARK = "VLA_SOFTPIPE_FOR_TENSORFLOW"  # set with GALLIUM_DRIVER by gl_guard, so children can undo it


def gl_guard() -> None:
    """TensorFlow (imported with global symbols) breaks Mesa's llvmpipe JIT: rendering then segfaults.
    When TF is already loaded in this process, fall back to the LLVM-free softpipe rasterizer (slow; the
    rollout/collect/eval paths avoid this by running MuJoCo in fresh worker processes). A process that
    inherited that fallback from a TF-loaded parent (a spawned worker) but has no TF goes back to llvmpipe."""
    from vla.native import preload_triton

    preload_triton()  # before Mesa's llvmpipe loads: Triton loaded after it segfaults (vla.native)
    egl = os.environ.get("MUJOCO_GL", "egl") == "egl"
    if "tensorflow" not in sys.modules:
        if os.environ.pop(_SOFTPIPE_MARK, None):
            os.environ.pop("GALLIUM_DRIVER", None)
        return
    if egl and not os.environ.get("GALLIUM_DRIVER"):
        os.environ["GALLIUM_DRIVER"] = "softpipe"
        os.environ[_SOFTPIPE_MARK] = "1"
        warnings.warn("sim_eval: tensorflow is loaded in this process; rendering with Mesa softpipe (slow). "
                      "Run MuJoCo in worker processes (sim_eval.rollout.run_jobs) for llvmpipe speed.", stacklevel=3)
