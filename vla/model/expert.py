"""The action expert: a transformer over [embodiment, state, action_1..H] tokens that
cross-attends to the prefix. Time and embodiment condition every block through adaLN-zero.

The prefix's cross-attention keys/values are computed once per inference (``prefix_kv``); each
integration step only runs the expert on the H+2 suffix tokens.
"""

from __future__ import annotations

import math

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
        b, n, w = x.shape
        q = self.q(x).view(b, n, self.heads, w // self.heads).transpose(1, 2)
        k, v = kv
        attn_mask = None if mask is None else mask[:, None, None, :]  # [B, 1, 1, L] True = attend
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

    def forward(self, x, cond, prefix_kv, prefix_mask):
        s1, c1, g1, s2, c2, g2 = self.ada(F.silu(cond))[:, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + c1) + s1
        x = x + g1 * self.self_attn(h, self.self_attn.kv_of(h))
        x = x + self.cross_attn(self.norm2(x), prefix_kv, prefix_mask)
        h = self.norm3(x) * (1 + c2) + s2
        return x + g2 * self.mlp(h)


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
        emb = self.embodiment(embodiment_id)
        cond = self.time_mlp(timestep_embedding(t, self.config.expert.width)) + emb
        m = state_mask.float()
        state_tok = self.state_in(torch.cat([state * m, m], dim=-1))
        act_tok = self.action_in(noisy_actions) + self.action_pos
        x = torch.cat([emb[:, None], state_tok[:, None], act_tok], dim=1)
        for blk, kv in zip(self.blocks, prefix_kv):
            x = blk(x, cond, kv, prefix_mask)
        shift, scale = self.final_ada(F.silu(cond))[:, None].chunk(2, dim=-1)
        x = self.final_norm(x) * (1 + scale) + shift
        return self.action_out(x[:, 2:])
