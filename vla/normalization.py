"""Per-dimension normalization statistics and the normalize / unnormalize transforms.

Modes per dimension:
  * ``quantile``: maps [q01, q99] to [-1, 1] (openpi / OpenVLA convention; robust to outliers),
  * ``zscore``:   (x - mean) / std,
  * ``none``:     left untouched (gripper dims, masked/padded dims).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

NORM_MODES = ("quantile", "zscore", "none")
_EPS = 1e-6


@dataclass(frozen=True)
class NormStats:
    """Statistics of one vector quantity (state or action), one entry per dimension."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    q01: tuple[float, ...]
    q99: tuple[float, ...]
    mode: tuple[str, ...]  # one of NORM_MODES per dim
    count: int = 0  # samples the stats were computed from

    def __post_init__(self) -> None:
        dims = {len(self.mean), len(self.std), len(self.q01), len(self.q99), len(self.mode)}
        if len(dims) != 1:
            raise ValueError(
                f"NormStats fields must all have one entry per dim; got mean={len(self.mean)}, "
                f"std={len(self.std)}, q01={len(self.q01)}, q99={len(self.q99)}, mode={len(self.mode)}"
            )
        bad = [m for m in self.mode if m not in NORM_MODES]
        if bad:
            raise ValueError(f"NormStats.mode entries must be one of {NORM_MODES}; got {bad}")

    @property
    def dim(self) -> int:
        return len(self.mean)

    @classmethod
    def identity(cls, dim: int) -> NormStats:
        """Stats that leave every dimension untouched."""
        return cls(mean=(0.0,) * dim, std=(1.0,) * dim, q01=(-1.0,) * dim, q99=(1.0,) * dim, mode=("none",) * dim,
                   count=0)

    @classmethod
    def from_data(
        cls,
        data: np.ndarray,
        mode: str | Sequence[str] = "quantile",
        skip_dims: Iterable[int] = (),
    ) -> NormStats:
        """Compute stats over ``data[N, D]``; ``skip_dims`` (e.g. gripper dims) get mode ``none``."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] == 0:
            raise ValueError(f"NormStats.from_data expects a non-empty [N, D] array; got shape {data.shape}")
        dim = data.shape[1]
        modes = [mode] * dim if isinstance(mode, str) else list(mode)
        if len(modes) != dim:
            raise ValueError(f"mode has {len(modes)} entries but data has {dim} dims")
        for d in skip_dims:
            modes[d] = "none"
        q01, q99 = np.quantile(data, [0.01, 0.99], axis=0)
        return cls(
            mean=tuple(map(float, data.mean(0))),
            std=tuple(map(float, data.std(0))),
            q01=tuple(map(float, q01)),
            q99=tuple(map(float, q99)),
            mode=tuple(modes),
            count=int(data.shape[0]),
        )

    def _arrays(self):
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        q01, q99 = np.asarray(self.q01, np.float32), np.asarray(self.q99, np.float32)
        mode = np.asarray(self.mode)
        return mean, std, q01, q99, mode == "quantile", mode == "zscore"

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """Robot units -> model units. ``x[..., D]``."""
        x = np.asarray(x, dtype=np.float32)
        self._check_dim(x, "normalize")
        mean, std, q01, q99, is_q, is_z = self._arrays()
        out = x.copy()
        out = np.where(is_q, (x - q01) / np.maximum(q99 - q01, _EPS) * 2.0 - 1.0, out)
        out = np.where(is_z, (x - mean) / np.maximum(std, _EPS), out)
        return out.astype(np.float32)

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        """Model units -> robot units (inverse of :meth:`normalize`). ``x[..., D]``."""
        x = np.asarray(x, dtype=np.float32)
        self._check_dim(x, "unnormalize")
        mean, std, q01, q99, is_q, is_z = self._arrays()
        out = x.copy()
        out = np.where(is_q, (x + 1.0) / 2.0 * np.maximum(q99 - q01, _EPS) + q01, out)
        out = np.where(is_z, x * np.maximum(std, _EPS) + mean, out)
        return out.astype(np.float32)

    def _check_dim(self, x: np.ndarray, what: str) -> None:
        if x.shape[-1] != self.dim:
            raise ValueError(f"{what}: expected last dim {self.dim}, got array of shape {x.shape}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NormStats:
        return cls(
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            q01=tuple(d["q01"]),
            q99=tuple(d["q99"]),
            mode=tuple(d["mode"]),
            count=int(d.get("count", 0)),
        )
