"""Paths that are either local (``pathlib.Path``) or remote URLs (``gs://``, ``s3://``, ``ram://``, ...).

Remote paths go through ``tf.io.gfile`` (TensorFlow imported lazily, only for them) and stay plain strings so
the scheme survives joining; local paths keep using ``pathlib``/``os``. Nothing here copies remote data locally.
"""

from __future__ import annotations

import os
from pathlib import Path

PathLike = str | os.PathLike


def is_url(p: PathLike | None) -> bool:
    return p is not None and "://" in str(p)


def _gfile():
    from data_pipelines.rlds.tf_loader import tensorflow

    return tensorflow().io.gfile


def as_path(p: PathLike) -> Path | str:
    """A ``Path`` for local paths, the URL string itself for remote ones."""
    return str(p).rstrip("/") if is_url(p) else Path(p)


def join(base: PathLike, *parts: str) -> Path | str:
    if is_url(base):
        return "/".join([str(base).rstrip("/"), *(str(x).strip("/") for x in parts)])
    return Path(base).joinpath(*parts)


def name(p: PathLike) -> str:
    return str(p).rstrip("/").rsplit("/", 1)[-1] if is_url(p) else Path(p).name


def exists(p: PathLike) -> bool:
    return _gfile().exists(str(p)) if is_url(p) else os.path.exists(p)


def isdir(p: PathLike) -> bool:
    return _gfile().isdir(str(p)) if is_url(p) else os.path.isdir(p)


def isfile(p: PathLike) -> bool:
    if is_url(p):
        g = _gfile()
        return g.exists(str(p)) and not g.isdir(str(p))
    return os.path.isfile(p)


def listdir(p: PathLike) -> list[str]:
    if is_url(p):
        return sorted(x.rstrip("/") for x in _gfile().listdir(str(p)))
    return sorted(os.listdir(p))


def read_text(p: PathLike) -> str:
    if is_url(p):
        with _gfile().GFile(str(p), "r") as f:
            return f.read()
    return Path(p).read_text()


def size_mtime(p: PathLike) -> tuple[int, int]:
    """(bytes, whole seconds of the modification time); (-1, -1) when absent."""
    if not exists(p):
        return -1, -1
    if is_url(p):
        st = _gfile().stat(str(p))
        return int(st.length), int(st.mtime_nsec // 1_000_000_000)
    st = os.stat(p)
    return st.st_size, int(st.st_mtime)


def version_dir(p: PathLike) -> Path | str:
    """``p`` itself when it holds ``dataset_info.json``, else its highest-version subdirectory that does."""
    if isfile(join(p, "dataset_info.json")):
        return as_path(p)
    if isdir(p):
        versions = [d for d in listdir(p) if isfile(join(p, d, "dataset_info.json"))]
        if versions:
            best = max(versions, key=lambda d: tuple(int(x) if x.isdigit() else 0 for x in d.split(".")))
            return join(p, best)
    raise FileNotFoundError(f"no TFDS dataset (dataset_info.json) at {p}")
