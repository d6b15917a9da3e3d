"""``PackedLinear``: an ``nn.Linear`` whose inference calls run oneDNN's matmul on a prepacked fp32 weight.

``F.linear`` (MKL sgemm) packs the weight matrix on every call; at the few rows a served model has per call
(18 expert tokens, ~28 prefix tokens) that packing, with the weight coming from outside the caches, costs about
as much as the arithmetic.  Keeping a copy in oneDNN's blocked layout makes those calls ~1.5x faster, with the
same result up to fp32 summation order.  With ``dtype=torch.bfloat16`` the packed copy is bf16 (inputs cast to
bf16, fp32 accumulation and output: CPUs with AVX512_BF16 / AMX run it ~1.6x faster again), which moves results by
bf16 rounding of weights and inputs (~0.4 % relative), like int8 a stated-tolerance option.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ROWS_HINT = 32  # oneDNN picks the blocking for about this many rows per call


class PackedLinear(nn.Module):
    """Same ``weight`` / ``bias`` parameters as the ``nn.Linear`` it replaces (state dicts unchanged); no-grad fp32
    CPU calls use the packed copy, repacked whenever the weight changes in place; anything else runs ``F.linear``."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.dtype = dtype
        self._packed, self._packed_version, self._packed_bias = None, -1, None

    def _packed_weight(self) -> torch.Tensor:
        if self._packed is None or self._packed_version != self.weight._version:
            self._packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach().to(self.dtype), ROWS_HINT)
            self._packed_version = self.weight._version
            self._packed_bias = None if self.bias is None else self.bias.detach().to(self.dtype)
        return self._packed

    def _can_use_packed(self, x: torch.Tensor) -> bool:
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        return not needs_grad and x.device.type == "cpu" and x.dtype == self.weight.dtype == torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._can_use_packed(x):
            return F.linear(x, self.weight, self.bias)
        if self.dtype == torch.float32:
            return torch.ops.mkldnn._linear_pointwise(x, self._packed_weight(), self.bias, "none", [], "")
        w = self._packed_weight()
        return torch.ops.mkldnn._linear_pointwise(x.to(self.dtype), w, self._packed_bias, "none", [], "").float()

    def __getstate__(self):  # deepcopy / pickle: an opaque oneDNN tensor cannot be copied, so it is repacked lazily
        return {**self.__dict__, "_packed": None, "_packed_version": -1, "_packed_bias": None}

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"packed={str(self.dtype).removeprefix('torch.')}")
