"""The plain eager inference path as it was before the serving speed-ups, written out on the model's modules.

Every camera slot goes through the image encoder and MiniLM (absent ones masked), and each integration step
runs the whole expert forward (time MLP, adaLN, embodiment and state tokens included).  Tests use it as the
oracle the fast path (:meth:`vla.model.expert.ActionExpert.sampling_context`, the prefix without absent camera
slots) must match up to float rounding; benchmarks use it as the baseline.  Flow-matching head, embedded or hf
backbone (hf: the backbone's own forward).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vla.model.expert import timestep_embedding
from vla.preprocessing import unnormalize_actions


def _kv(att, x):
    b, n, w = x.shape
    k, v = att.kv(x).view(b, n, 2, att.heads, w // att.heads).permute(2, 0, 3, 1, 4)
    return k, v


def _attend(att, x, kv, mask=None):
    b, n, w = x.shape
    q = att.q(x).view(b, n, att.heads, w // att.heads).transpose(1, 2)
    attn_mask = None if mask is None else mask[:, None, None, :]
    y = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=attn_mask)
    return att.out(y.transpose(1, 2).reshape(b, n, w))


def reference_prefix(model, batch: dict):
    """(per-block cross-attention K/V, mask) with every camera slot in the sequence."""
    bb = model.backbone
    if not hasattr(bb, "image_encoder") or not model.config.backbone.fuse_images_in_lm:
        prefix, mask = bb(batch["images"], batch["image_mask"], batch["prompt"])
    else:
        images, prompts, device = batch["images"], batch["prompt"], batch["images"].device
        b, n = images.shape[:2]
        cond = bb.instruction_embedding(prompts, device) if model.config.backbone.image_film else None
        if cond is not None:
            cond = cond[:, None].expand(b, n, cond.shape[-1]).flatten(0, 1)
        tokens = bb.image_encoder(images.flatten(0, 1), cond).view(b, n, -1, bb.hidden_size)
        img_tokens = (tokens + bb.camera_embed[:n, None, :]).flatten(1, 2)
        img_mask = batch["image_mask"].repeat_interleave(bb.image_encoder.tokens_per_image, dim=1)
        input_ids, text_mask = bb.tokenize(prompts, device)
        word = bb.lm.get_input_embeddings()(input_ids)
        embeds = torch.cat([word[:, :1], img_tokens, word[:, 1:]], dim=1)
        mask = torch.cat([text_mask[:, :1], img_mask, text_mask[:, 1:]], dim=1)
        prefix = bb.lm(inputs_embeds=embeds, attention_mask=mask.long()).last_hidden_state
    p = model.expert.prefix_proj(prefix)
    return [_kv(blk.cross_attn, p) for blk in model.expert.blocks], mask


def reference_velocity(expert, x, t, state, state_mask, embodiment_id, prefix_kv, prefix_mask):
    """The expert's forward for noisy actions x [B, H, A_max] at times t [B]."""
    emb = expert.embodiment(embodiment_id)
    cond = expert.time_mlp(timestep_embedding(t, expert.config.expert.width)) + emb
    m = state_mask.float()
    state_tok = expert.state_in(torch.cat([state * m, m], dim=-1))
    h = torch.cat([emb[:, None], state_tok[:, None], expert.action_in(x) + expert.action_pos], dim=1)
    for blk, kv in zip(expert.blocks, prefix_kv):
        s1, c1, g1, s2, c2, g2 = blk.ada(F.silu(cond))[:, None].chunk(6, dim=-1)
        a = blk.norm1(h) * (1 + c1) + s1
        h = h + g1 * _attend(blk.self_attn, a, _kv(blk.self_attn, a))
        h = h + _attend(blk.cross_attn, blk.norm2(h), kv, prefix_mask)
        a = blk.norm3(h) * (1 + c2) + s2
        h = h + g2 * blk.mlp(a)
    shift, scale = expert.final_ada(F.silu(cond))[:, None].chunk(2, dim=-1)
    return expert.action_out((expert.final_norm(h) * (1 + scale) + shift)[:, 2:])


@torch.no_grad()
def reference_sample(model, batch: dict, noise: torch.Tensor) -> torch.Tensor:
    """Euler flow matching from ``noise`` [B, H, A_max]: normalized actions [B, H, A_max]."""
    if model.config.head.kind != "flow":
        raise ValueError("reference_sample: flow-matching head only")
    kv, mask = reference_prefix(model, batch)
    steps = model.config.head.num_inference_steps
    dt, x = 1.0 / steps, noise
    action_mask = batch["action_mask"][:, None, :].to(noise.dtype)
    for i in range(steps):
        t = torch.full((x.shape[0],), 1.0 - i * dt, device=x.device)
        v = reference_velocity(model.expert, x * action_mask, t, batch["state"], batch["state_mask"],
                               batch["embodiment_id"], kv, mask)
        x = x - dt * v
    return x


def reference_predict(policy, observations: list, seed=None, embodiment: str | None = None) -> list[np.ndarray]:
    """``VLAPolicy.predict`` (no adapters, no real-time chunking) on the reference path."""
    spec = policy.spec(embodiment)
    batch = policy.prepare(observations, spec)
    policy.model.eval()
    noise = policy.make_noise(len(observations), seed).to(policy.model.device)
    actions = reference_sample(policy.model, batch, noise)[:, :, : spec.action_dim].float().cpu().numpy()
    return [unnormalize_actions(spec, a) for a in actions]
