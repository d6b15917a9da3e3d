"""Generative heads over the action expert: flow matching (default) and DDIM diffusion.

Both expose ``loss(velocity_fn, actions, loss_mask)`` for training and
``sample(velocity_fn, noise)`` for inference, where ``velocity_fn(x, t[B]) -> prediction``
wraps the expert with the prefix already encoded.  The samplers call it as ``velocity_fn(x, t, step=i)``
with ``t`` the same for every row and equal to ``sample_times()[i]``, so a caller may precompute what
depends on the time alone.  Flow matching also has ``sample_guided`` for
real-time chunking (:mod:`vla.model.rtc`); DDIM refuses it (``RTCNotSupported``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vla.config import HeadConfig
from vla.model.rtc import DEFAULT_GUIDANCE_CLIP

PredictFn = Callable[..., torch.Tensor]  # (x, t[B], step=None) -> prediction


class RTCNotSupported(NotImplementedError):
    """Real-time chunking (a committed action prefix) asked of a head that cannot inpaint (DDIM)."""


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` ([B, H, A], bool) is True."""
    m = mask.float()
    return ((pred - target) ** 2 * m).sum() / m.sum().clamp_min(1.0)


class FlowMatchingHead:
    """pi0-style flow matching: x_t = t*noise + (1-t)*actions, the expert predicts noise - actions;
    t ~ Beta(1.5, 1) at training; Euler integration from t=1 to t=0 at inference."""

    def __init__(self, cfg: HeadConfig):
        self.cfg = cfg

    def loss(self, fn: PredictFn, actions: torch.Tensor, mask: torch.Tensor, generator=None) -> torch.Tensor:
        b = actions.shape[0]
        beta = torch.distributions.Beta(self.cfg.flow_beta_alpha, self.cfg.flow_beta_beta)
        t = beta.sample((b,)).to(actions.device) * 0.999 + 0.001
        noise = torch.randn(actions.shape, generator=generator, device=actions.device)
        tt = t[:, None, None]
        x_t = tt * noise + (1 - tt) * actions
        return masked_mse(fn(x_t, t), noise - actions, mask)

    def sample_times(self) -> list[float]:
        """The flow time of each Euler step: 1, 1 - dt, ..., dt."""
        steps = self.cfg.num_inference_steps
        dt = 1.0 / steps
        return [1.0 - i * dt for i in range(steps)]

    @torch.no_grad()
    def sample(self, fn: PredictFn, noise: torch.Tensor) -> torch.Tensor:
        x = noise
        dt = 1.0 / self.cfg.num_inference_steps
        for i, t_val in enumerate(self.sample_times()):
            t = torch.full((x.shape[0],), t_val, device=x.device)
            x = x - dt * fn(x, t, step=i)
        return x

    @torch.no_grad()
    def sample_guided(self, fn: PredictFn, noise: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                      clip: float = DEFAULT_GUIDANCE_CLIP) -> torch.Tensor:
        """Real-time chunking: ``sample`` with PiGDM guidance toward ``target`` under ``weights`` ([B, H, A]).

        Each Euler step predicts the clean chunk ``x1 = x - t * u(x, t)``, takes the vector-Jacobian
        product ``g = (W * (target - x1))^T dx1/dx`` (one backward pass through the expert; the prefix K/V
        stay fixed) and integrates ``u - min(clip, w(t)) * g``, where in the paper's time tau = 1 - t,
        ``w = (1 - tau) / (tau * r^2)``, ``r^2 = (1 - tau)^2 / (tau^2 + (1 - tau)^2)``.  Rows with zero
        weights get g = 0 exactly, i.e. the unguided step.
        """
        x = noise
        dt = 1.0 / self.cfg.num_inference_steps
        for i, t_val in enumerate(self.sample_times()):
            t = torch.full((x.shape[0],), t_val, device=x.device)
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                u = fn(xg, t, step=i)
                x1 = xg - t_val * u
                (g,) = torch.autograd.grad(x1, xg, grad_outputs=(target - x1.detach()) * weights)
            x = x - dt * (u.detach() - guidance_weight(t_val, clip) * g)
        return x


def guidance_weight(t: float, clip: float = DEFAULT_GUIDANCE_CLIP) -> float:
    """``min(clip, (1 - tau) / (tau * r_tau^2))`` at flow time ``t`` (tau = 1 - t); ``clip`` at the ends."""
    tau = 1.0 - t
    if tau <= 0.0 or tau >= 1.0:
        return clip
    r2 = (1 - tau) ** 2 / (tau**2 + (1 - tau) ** 2)
    return min(clip, (1 - tau) / (tau * r2))


class DDIMHead:
    """Diffusion (cosine schedule) trained on T steps, sampled with deterministic DDIM (eta=0) in
    ``num_inference_steps`` steps. The expert predicts the clean chunk (``sample``, default: well
    conditioned at low noise, which few-step DDIM relies on) or the noise (``epsilon``)."""

    def __init__(self, cfg: HeadConfig):
        self.cfg = cfg
        T = cfg.ddim_train_timesteps
        s = 0.008
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
        self.alpha_bar = torch.cumprod(1 - betas, 0).float()  # [T]

    def _t_input(self, k: torch.Tensor) -> torch.Tensor:
        return k.float() / self.cfg.ddim_train_timesteps

    def _steps(self) -> list[int]:
        T, n = self.cfg.ddim_train_timesteps, self.cfg.num_inference_steps
        return torch.linspace(T - 1, 0, n).round().long().tolist()

    def sample_times(self) -> list[float]:
        """The expert's time input at each DDIM step (k / T)."""
        return self._t_input(torch.tensor(self._steps())).tolist()

    def loss(self, fn: PredictFn, actions: torch.Tensor, mask: torch.Tensor, generator=None) -> torch.Tensor:
        b = actions.shape[0]
        k = torch.randint(0, self.cfg.ddim_train_timesteps, (b,), device=actions.device)
        ab = self.alpha_bar.to(actions.device)[k][:, None, None]
        noise = torch.randn(actions.shape, generator=generator, device=actions.device)
        x_k = ab.sqrt() * actions + (1 - ab).sqrt() * noise
        target = actions if self.cfg.ddim_prediction == "sample" else noise
        return masked_mse(fn(x_k, self._t_input(k)), target, mask)

    @torch.no_grad()
    def sample(self, fn: PredictFn, noise: torch.Tensor) -> torch.Tensor:
        n = self.cfg.num_inference_steps
        ks = self._steps()
        alpha_bar = self.alpha_bar.to(noise.device)
        x = noise
        for i, k in enumerate(ks):
            ab = alpha_bar[k]
            ab_prev = alpha_bar[ks[i + 1]] if i + 1 < n else torch.tensor(1.0, device=noise.device)
            kk = torch.full((x.shape[0],), k, device=x.device)
            pred = fn(x, self._t_input(kk), step=i)
            if self.cfg.ddim_prediction == "sample":
                x0 = pred
                eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            else:
                eps = pred
                x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
            x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        return x

    def sample_guided(self, *args, **kwargs):
        raise RTCNotSupported("real-time chunking (prev_actions) is not supported by the DDIM head: "
                              "use a flow-matching model (head.kind='flow')")


def build_head(cfg: HeadConfig):
    return FlowMatchingHead(cfg) if cfg.kind == "flow" else DDIMHead(cfg)
