"""Native libraries that must load in a fixed order.

The standard torch builds ship Triton, whose native library bundles LLVM. Loaded *after* another LLVM
user it segfaults the process: after TensorFlow (``import tensorflow``), and after Mesa's llvmpipe
(MuJoCo's EGL rendering). ``torch._dynamo`` imports Triton on first use (transformers does that), so a
sim worker that rendered and then loads a policy, or a process that read RLDS data and then builds a
model, would crash. Loaded *first*, all of them work: the stack calls :func:`preload_triton` before it
imports TensorFlow (``data_pipelines.rlds.tf_loader``) and before MuJoCo renders (``sim_eval.gl``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util


@functools.cache
def preload_triton() -> None:
    """Load Triton's native library if Triton is installed (a no-op otherwise; ~0.3 s once per process)."""
    if importlib.util.find_spec("triton") is None:
        return
    with contextlib.suppress(ImportError):  # a broken Triton cannot clash either
        import triton._C.libtriton  # noqa: F401
