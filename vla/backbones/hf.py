"""Any Hugging Face VLM as the prefix encoder (PaliGemma, SmolVLM/Idefics3, Qwen2.5-VL, ...).

Loaded by hub id or local path through ``from_pretrained`` (the same code path for both),
optionally truncated to its first K language-model layers. Prompts and images go through the
model's own processor and chat conventions; the prefix is the language model's last hidden state.
Missing camera views are fed as black images whose image tokens are masked out of attention.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vla.config import VLAConfig


def _text_config(config):
    return getattr(config, "text_config", None) or config


def _truncate_layers(hf_config, k: int) -> None:
    """Keep the first ``k`` decoder layers (and their per-layer ``layer_types``, e.g. Qwen2.5-VL's)."""
    configs = [_text_config(hf_config)]
    if hasattr(hf_config, "num_hidden_layers") and hf_config is not configs[0]:
        configs.append(hf_config)  # some configs mirror it at top level
    for c in configs:
        c.num_hidden_layers = k
        if isinstance(getattr(c, "layer_types", None), list):
            c.layer_types = c.layer_types[:k]


class HFBackbone(nn.Module):
    def __init__(self, config: VLAConfig):
        super().__init__()
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        bcfg = config.backbone
        self.config = config
        source = bcfg.hf_model
        try:
            hf_config = AutoConfig.from_pretrained(source)
            self.processor = AutoProcessor.from_pretrained(source)
        except OSError as e:
            raise ValueError(f"backbone.hf_model={source!r}: cannot load config/processor ({e})") from e
        self.family = hf_config.model_type
        if bcfg.num_lm_layers is not None:
            _truncate_layers(hf_config, bcfg.num_lm_layers)
        dtype = bcfg.hf_dtype
        if dtype == "auto":
            dtype = "bfloat16" if torch.cuda.is_available() else "float32"
        if bcfg.lm_random_init:  # weights follow from a VLA checkpoint (or tests want random ones)
            full = AutoModelForImageTextToText.from_config(hf_config, torch_dtype=getattr(torch, dtype))
        else:
            full = AutoModelForImageTextToText.from_pretrained(source, config=hf_config, torch_dtype=getattr(torch,
                                                                                                             dtype))
        self.vlm = full.model  # the base model: vision tower + projector + LM, without the vocab head
        self.hidden_size = _text_config(hf_config).hidden_size
        image_token = getattr(self.processor, "image_token", None) or "<image>"
        self.image_token_id = self.processor.tokenizer.convert_tokens_to_ids(image_token)
        if bcfg.freeze_lm:
            self.vlm.requires_grad_(False)
        if bcfg.freeze_lm_embeddings:
            self.vlm.get_input_embeddings().requires_grad_(False)

    lora_target_modules = ("q_proj", "k_proj", "v_proj", "o_proj")

    @property
    def language_model(self) -> nn.Module:
        """The VLM's decoder (PaliGemma/Qwen: ``language_model``, Idefics3: ``text_model``)."""
        for name in ("language_model", "text_model"):
            if hasattr(self.vlm, name):
                return getattr(self.vlm, name)
        raise AttributeError(f"{type(self.vlm).__name__}: no language model found")

    def _texts(self, prompts: list[str], n_images: int) -> list[str]:
        if self.family == "paligemma":
            return prompts  # the PaliGemma processor prepends image tokens + BOS itself
        content = [{"type": "image"} for _ in range(n_images)]
        texts = []
        for p in prompts:
            messages = [{"role": "user", "content": content + [{"type": "text", "text": p}]}]
            texts.append(self.processor.apply_chat_template(messages, add_generation_prompt=False))
        return texts

    def forward(self, images: torch.Tensor, image_mask: torch.Tensor, prompts: list[str]):
        b, n = images.shape[:2]
        pil_free = images.permute(0, 1, 3, 4, 2).cpu().numpy()  # [B, N, H, W, 3] uint8
        batch_images = [[np.ascontiguousarray(pil_free[i, j]) for j in range(n)] for i in range(b)]
        kwargs = {}
        if self.family in ("idefics3", "smolvlm"):
            kwargs["do_image_splitting"] = False
        inputs = self.processor(
            text=self._texts(prompts, n), images=batch_images, return_tensors="pt", padding=True, **kwargs
        )
        device = images.device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.vlm.dtype)
        attention = inputs["attention_mask"].clone()
        # mask the image tokens of missing cameras: image tokens appear per image, in camera order
        is_img = inputs["input_ids"] == self.image_token_id
        for i in range(b):
            if bool(image_mask[i].all()):
                continue
            pos = torch.nonzero(is_img[i]).flatten()
            per_cam = len(pos) // n
            for j in range(n):
                if not bool(image_mask[i, j]):
                    attention[i, pos[j * per_cam : (j + 1) * per_cam]] = 0
        inputs["attention_mask"] = attention
        out = self.vlm(**inputs, use_cache=False, return_dict=True)
        hidden = out.last_hidden_state.float()
        return hidden, attention.bool()
