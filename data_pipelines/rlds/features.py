"""A tiny declarative description of TFDS feature trees (JSON-able), converted to ``tfds.features``.

Used by the writer (to describe what it writes) and by tests (to build the exact published OXE
schemas). A spec is a nested dict whose leaves are made with :func:`image`, :func:`tensor`,
:func:`scalar` and :func:`text`; the RLDS ``steps`` dict is wrapped with :func:`steps`.
Leaves are plain dicts so a spec can be stored as JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def image(h: int, w: int, c: int = 3, dtype: str = "uint8", encoding: str | None = None) -> dict:
    return {"kind": "image", "shape": [h, w, c], "dtype": dtype, "encoding": encoding}


def tensor(shape: tuple[int, ...] | list[int], dtype: str = "float32", encoding: str = "none") -> dict:
    return {"kind": "tensor", "shape": list(shape), "dtype": dtype, "encoding": encoding}


def scalar(dtype: str = "float32") -> dict:
    return {"kind": "scalar", "shape": [], "dtype": dtype}


def text() -> dict:
    return {"kind": "text", "shape": [], "dtype": "string"}


def steps(step_spec: dict) -> dict:
    return {"kind": "steps", "feature": step_spec}


def is_leaf(node: Any) -> bool:
    return isinstance(node, dict) and "kind" in node and node["kind"] != "steps"


def to_tfds(spec: dict):
    """Convert a spec tree into ``tfds.features.FeaturesDict`` (imports tensorflow_datasets lazily)."""
    from data_pipelines.rlds.tf_loader import tensorflow_datasets

    tfds = tensorflow_datasets()

    def conv(node):
        if isinstance(node, dict) and node.get("kind") == "steps":
            return tfds.features.Dataset(conv(node["feature"]))
        if is_leaf(node):
            kind = node["kind"]
            dtype = np.object_ if node["dtype"] == "string" else np.dtype(node["dtype"])
            if kind == "image":
                return tfds.features.Image(shape=tuple(node["shape"]), dtype=dtype,
                                           encoding_format=node.get("encoding"))
            if kind == "tensor":
                return tfds.features.Tensor(shape=tuple(node["shape"]), dtype=dtype,
                                            encoding=node.get("encoding", "none"))
            if kind == "scalar":
                return tfds.features.Scalar(dtype=dtype)
            if kind == "text":
                return tfds.features.Text()
            raise ValueError(f"unknown feature kind {kind!r}")
        if isinstance(node, dict):
            return tfds.features.FeaturesDict({k: conv(v) for k, v in node.items()})
        raise ValueError(f"bad feature spec node: {node!r}")

    return conv(spec)


def random_value(leaf: dict, rng: np.random.Generator, t: int | None = None) -> Any:
    """A random value matching a leaf (with a leading time axis ``t`` if given); for test fixtures."""
    lead = [] if t is None else [t]
    shape = lead + list(leaf["shape"])
    kind, dtype = leaf["kind"], leaf["dtype"]
    if kind == "text" or dtype == "string":
        words = ["pick", "place", "the", "red", "block", "open", "drawer", "push", "cup"]
        make = lambda: " ".join(rng.choice(words, size=4))  # noqa: E731
        return make() if t is None else [make()] * t
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.issubdtype(np.dtype(dtype), np.integer):
        hi = 255 if kind == "image" else 3
        return rng.integers(0, hi + 1, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def random_episode(spec: dict, rng: np.random.Generator, length: int) -> dict:
    """A random episode for a full RLDS spec: ``steps`` become a dict of stacked arrays of ``length``."""

    def fill(node, t):
        if isinstance(node, dict) and node.get("kind") == "steps":
            return fill(node["feature"], length)
        if is_leaf(node):
            return random_value(node, rng, t)
        return {k: fill(v, t) for k, v in node.items()}

    ep = fill(spec, None)
    st = ep["steps"]
    for key, val in (("is_first", np.arange(length) == 0), ("is_last", np.arange(length) == length - 1),
                     ("is_terminal", np.arange(length) == length - 1)):
        if key in st:
            st[key] = val
    return ep
