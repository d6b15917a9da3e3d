"""TensorFlow imported safely beside torch: Triton's native library first (:mod:`vla.native` says why).
Every TensorFlow import of the stack goes through here."""

from __future__ import annotations

from vla.native import preload_triton


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
