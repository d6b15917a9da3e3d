"""A memo of a frozen image-encoder prefix's outputs, keyed by the input image's bytes.

Training on demonstrations sees every frame many times (one epoch of a 100-demo Lift set is ~6k frames); a frozen
pretrained trunk maps a frame to the same features each time, so computing them once and looking them up after
makes a frozen timm encoder cost about what its trainable head costs. Keys are 128-bit BLAKE2b digests of the
uint8 image (a collision needs ~2^64 frames). Only exact repeats hit: augmentation applied before the encoder
(random crops, colour jitter) makes every frame new, so the cache is for un-augmented training (diversity from
randomized demonstrations instead) and reports its hit rate so a user sees when it does not pay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch


class FrozenFeatureCache:
    """``run(images, fn)`` = ``fn(images)`` for uint8[B, ...] images, computing ``fn`` only for images not seen
    before; stops storing (still computing) once ``max_mb`` of features are held."""

    def __init__(self, max_mb: float):
        if max_mb <= 0:
            raise ValueError(f"feature cache size must be > 0 MB, got {max_mb}")
        self.max_bytes = int(max_mb * 2**20)
        self.held_bytes = 0
        self.store: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def keys(images_uint8: torch.Tensor) -> list[bytes]:
        flat = images_uint8.detach().cpu().contiguous().numpy()
        return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]

    def run(self, images_uint8: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        keys = self.keys(images_uint8)
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            with torch.no_grad():
                fresh = fn(images_uint8[missing])
            for j, i in enumerate(missing):
                self._put(keys[i], fresh[j])
            if len(missing) == len(keys):
                return fresh
            got = {i: fresh[j] for j, i in enumerate(missing)}
        else:
            got = {}
        return torch.stack([got[i] if i in got else self.store[k].to(images_uint8.device)
                            for i, k in enumerate(keys)])

    def _put(self, key: bytes, value: torch.Tensor) -> None:
        size = value.numel() * value.element_size()
        if key in self.store or self.held_bytes + size > self.max_bytes:
            return
        self.store[key] = value.detach().clone()
        self.held_bytes += size

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def summary(self) -> str:
        return (f"{len(self.store)} frames cached ({self.held_bytes / 2**20:.0f} MB), hit rate {self.hit_rate:.0%} "
                f"of {self.hits + self.misses} lookups")
