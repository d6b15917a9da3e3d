"""TensorFlow imported safely beside torch.

The standard torch builds ship Triton, whose native library clashes with TensorFlow's when it is loaded
second: a process that imported TensorFlow and later imports ``triton`` (``torch._dynamo`` does, e.g. via
transformers) segfaults. Loaded first, both work. Every TensorFlow import of the stack goes through here.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util


@functools.cache
def preload_triton() -> None:
    """Load Triton's native library if Triton is installed (a no-op otherwise)."""
    if importlib.util.find_spec("triton") is None:
        return
    with contextlib.suppress(ImportError):  # a broken Triton cannot clash either
        import triton._C.libtriton  # noqa: F401


def tensorflow():
    """The ``tensorflow`` module, imported after :func:`preload_triton`."""
    preload_triton()
    import tensorflow as tf

    return tf


def tensorflow_datasets():
    """The ``tensorflow_datasets`` module, imported after :func:`preload_triton`."""
    preload_triton()
    import tensorflow_datasets as tfds

    return tfds
