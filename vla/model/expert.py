"""The action expert: a transformer over [embodiment, state, action_1..H] tokens that
cross-attends to the prefix. Time and embodiment condition every block through adaLN-zero.

The prefix's cross-attention keys/values are computed once per inference (``prefix_kv``); each
integration step only runs the expert on the H+2 suffix tokens.  Sampling goes further
(:meth:`ActionExpert.sampling_context`): whatever does not depend on the noisy actions (the embodiment and
state tokens, the time MLP and every adaLN modulation for the sampler's fixed step times) is computed once per
inference in one batched pass, so a step is only the blocks over the tokens (the same arithmetic as
``forward``, up to float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vla.config import VLAConfig


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1] (scaled by 1000). t: [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """bool [B, L] (True = attend) -> the additive float bias [B, 1, 1, L] (0 or -inf) attention applies."""
    bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill_(~mask, float("-inf"))
    return bias[:, None, None, :]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def kv_of(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, w = x.shape
        k, v = self.kv(x).view(b, n, 2, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None = None):
        """``mask``: bool [B, L] (True = attend) or an additive float bias [B, 1, 1, L] (:func:`attention_bias`)."""
        b, n, w = x.shape
        q = self.q(x).view(b, n, self.heads, w // self.heads).transpose(1, 2)
        k, v = kv
        attn_mask = mask[:, None, None, :] if mask is not None and mask.dim() == 2 else mask  # True = attend
        if attn_mask is not None and attn_mask.is_floating_point():
            attn_mask = attn_mask.to(q.dtype)  # autocast / bf16 runs: SDPA wants the bias in the query's dtype
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, n, w))


class ExpertBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.self_attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.cross_attn = Attention(width, heads)
        self.norm3 = nn.LayerNorm(width, elementwise_affine=False)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Linear(width, 6 * width)  # shift/scale/gate for self-attn and MLP
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """cond [N, w] -> (shift1, 1 + scale1, gate1, shift2, 1 + scale2, gate2), each [N, 1, w]."""
        s1, c1, g1, s2, c2, g2 = self.ada(F.silu(cond))[:, None].chunk(6, dim=-1)
        return s1, 1 + c1, g1, s2, 1 + c2, g2

    def forward(self, x, cond, prefix_kv, prefix_mask):
        return self.modulated(x, self.modulation(cond), prefix_kv, prefix_mask)

    def modulated(self, x, mod: Sequence[torch.Tensor], prefix_kv, prefix_mask):
        """The block with its adaLN modulation given (see :meth:`modulation`)."""
        s1, c1, g1, s2, c2, g2 = mod
        h = torch.addcmul(s1, self.norm1(x), c1)
        x = torch.addcmul(x, g1, self.self_attn(h, self.self_attn.kv_of(h)))
        x = x + self.cross_attn(self.norm2(x), prefix_kv, prefix_mask)
        h = torch.addcmul(s2, self.norm3(x), c2)
        return torch.addcmul(x, g2, self.mlp(h))


@dataclass(frozen=True)
class SamplingContext:
    """What every integration step of one sampling run shares (see :meth:`ActionExpert.sampling_context`)."""

    fixed_tokens: torch.Tensor  # [B, 2, w]: the embodiment and state tokens
    block_mods: list  # per step, per block: the 6 adaLN tensors [B, 1, w]
    final_mods: list  # per step: (shift, 1 + scale) [B, 1, w]
    prefix_kv: list
    prefix_mask: torch.Tensor  # as the additive bias [B, 1, 1, L] (attention_bias)


class ActionExpert(nn.Module):
    def __init__(self, config: VLAConfig, prefix_dim: int):
        super().__init__()
        e = config.expert
        w = e.width
        self.config = config
        self.prefix_proj = nn.Sequential(nn.LayerNorm(prefix_dim), nn.Linear(prefix_dim, w))
        self.state_in = nn.Linear(2 * config.max_state_dim, w)  # value and mask
        self.action_in = nn.Linear(config.max_action_dim, w)
        self.action_pos = nn.Parameter(torch.randn(config.action_horizon, w) * 0.02)
        self.embodiment = nn.Embedding(config.max_embodiments, w)
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(ExpertBlock(w, e.heads, e.mlp_ratio) for _ in range(e.depth))
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False)
        self.final_ada = nn.Linear(w, 2 * w)
        self.action_out = nn.Linear(w, config.max_action_dim)
        for layer in (self.final_ada, self.action_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def prefix_kv(self, prefix: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Project the prefix and compute every block's cross-attention K/V (once per inference)."""
        p = self.prefix_proj(prefix)
        return [blk.cross_attn.kv_of(p) for blk in self.blocks]

    def fixed_tokens(self, state, state_mask, embodiment_id) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens [B, 2, w] = embodiment and state token, embodiment embedding [B, w]): no time in them."""
        emb = self.embodiment(embodiment_id)
        m = state_mask.float()
        state_tok = self.state_in(torch.cat([state * m, m], dim=-1))
        return torch.cat([emb[:, None], state_tok[:, None]], dim=1), emb

    def modulations(self, t: torch.Tensor, emb: torch.Tensor) -> tuple[list, tuple[torch.Tensor, torch.Tensor]]:
        """adaLN of every block and of the output for times t [N] and embodiment embeddings emb [N, w]."""
        cond = self.time_mlp(timestep_embedding(t, self.config.expert.width)) + emb
        shift, scale = self.final_ada(F.silu(cond))[:, None].chunk(2, dim=-1)
        return [blk.modulation(cond) for blk in self.blocks], (shift, 1 + scale)

    def run_blocks(self, noisy_actions, fixed_tokens, block_mods, final_mod, prefix_kv, prefix_mask) -> torch.Tensor:
        """The token path of one step: [B, H, A_max] -> predicted [B, H, A_max]."""
        act_tok = self.action_in(noisy_actions) + self.action_pos
        x = torch.cat([fixed_tokens, act_tok], dim=1)
        bias = attention_bias(prefix_mask) if prefix_mask.dtype == torch.bool else prefix_mask
        for blk, mod, kv in zip(self.blocks, block_mods, prefix_kv):
            x = blk.modulated(x, mod, kv, bias)
        shift, scale = final_mod
        return self.action_out(torch.addcmul(shift, self.final_norm(x[:, 2:]), scale))

    @torch.no_grad()
    def sampling_context(self, times: Sequence[float], state, state_mask, embodiment_id, prefix_kv,
                         prefix_mask) -> SamplingContext:
        """Precompute, for a sampler whose step i runs at time ``times[i]`` (the same for every row), all
        that the steps share, in one batched pass over the steps."""
        fixed, emb = self.fixed_tokens(state, state_mask, embodiment_id)
        b, steps = emb.shape[0], len(times)
        t = torch.tensor(list(times), dtype=torch.float32, device=emb.device).repeat_interleave(b)
        blocks, final = self.modulations(t, emb.repeat(steps, 1))
        per_step = [[tuple(m[i * b:(i + 1) * b] for m in mods) for mods in blocks] for i in range(steps)]
        finals = [tuple(m[i * b:(i + 1) * b] for m in final) for i in range(steps)]
        return SamplingContext(fixed, per_step, finals, prefix_kv, attention_bias(prefix_mask))

    def step(self, noisy_actions: torch.Tensor, ctx: SamplingContext, i: int) -> torch.Tensor:
        """Step ``i`` of the sampler ``ctx`` was made for: the same prediction as ``forward`` at ``times[i]``."""
        return self.run_blocks(noisy_actions, ctx.fixed_tokens, ctx.block_mods[i], ctx.final_mods[i],
                               ctx.prefix_kv, ctx.prefix_mask)

    def forward(
        self,
        noisy_actions: torch.Tensor,  # [B, H, A_max]
        t: torch.Tensor,  # [B] in [0, 1]
        state: torch.Tensor,  # [B, S_max]
        state_mask: torch.Tensor,  # [B, S_max] bool
        embodiment_id: torch.Tensor,  # [B]
        prefix_kv: list[tuple[torch.Tensor, torch.Tensor]],
        prefix_mask: torch.Tensor,  # [B, L] bool
    ) -> torch.Tensor:
        fixed, emb = self.fixed_tokens(state, state_mask, embodiment_id)
        block_mods, final_mod = self.modulations(t, emb)
        return self.run_blocks(noisy_actions, fixed, block_mods, final_mod, prefix_kv, prefix_mask)
