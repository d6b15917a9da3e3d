"""Exponential moving average of the trainable parameters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * live`` after every optimizer step (one fused lerp).

    Checkpoints keep the live weights (exact resume) and this average in their training state; the
    exported policy carries the average (:meth:`copy_to_model` at the end; :meth:`swapped_in` for validation)."""

    def __init__(self, named_params: list[tuple[str, nn.Parameter]], decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1); got {decay}")
        self.decay = decay
        self.names = [n for n, _ in named_params]
        self.live = [p.detach() for _, p in named_params]
        self.shadow = [p.clone() for p in self.live]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, self.live, 1 - self.decay)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The averaged weights in the model inside the block, the live ones again after it."""
        saved = [p.clone() for p in self.live]
        with torch.no_grad():
            torch._foreach_copy_(self.live, self.shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.live, saved)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Leave the averaged weights in the model (when training is over)."""
        torch._foreach_copy_(self.live, self.shadow)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.cpu() for n, t in zip(self.names, self.shadow)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.names) - set(state))
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} trained parameter(s), e.g. {missing[:3]}")
        with torch.no_grad():
            for n, t in zip(self.names, self.shadow):
                t.copy_(state[n])
