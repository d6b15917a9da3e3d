"""Per-embodiment adapters on a :class:`~vla.model.vla_model.VLAModel`.

An adapter is a peft LoRA on the backbone's pretrained LM (``backbone.lora_target_modules``) plus
full copies of some modules (default: the action expert) trained for that embodiment alone, so
several embodiments share one base whose weights never change. On disk (``adapters/<name>/``):
``adapter_config.json`` + ``adapter_model.safetensors`` as peft writes them (loadable with
``peft.PeftModel.from_pretrained(lm, dir)``), ``full_modules.safetensors`` and ``vla_adapter.json``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

PEFT_PREFIX = "base_model.model."


def _get(root: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _set(root: nn.Module, path: str, module: nn.Module) -> None:
    *parents, last = path.split(".")
    for part in parents:
        root = getattr(root, part)
    setattr(root, last, module)


class AdapterSet:
    """The adapters attached to one model; at most one is active (``None`` = the base)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.meta: dict[str, dict] = {}
        self.full: dict[str, dict[str, nn.Module]] = {}
        self.base_full: dict[str, nn.Module] = {}
        self.active: str | None = None

    @property
    def lm(self) -> nn.Module:
        lm = getattr(self.model.backbone, "lm", None) or getattr(self.model.backbone, "vlm", None)
        if lm is None:
            raise ValueError("this backbone has no pretrained language model to put LoRA on")
        return lm

    def __contains__(self, name: str) -> bool:
        return name in self.meta

    def __len__(self) -> int:
        return len(self.meta)

    # -- creation ---------------------------------------------------------------------------
    def add(self, name: str, rank: int = 16, alpha: int = 32, dropout: float = 0.0,
            target_modules: Sequence[str] | None = None, full_modules: Sequence[str] = ("expert",)) -> None:
        """Attach a new adapter ``name`` (LoRA B = 0, full modules copied from the base: starts as the base)."""
        from peft import LoraConfig, inject_adapter_in_model

        if name in self.meta:
            raise ValueError(f"adapter {name!r} already exists")
        targets = list(target_modules or self.model.backbone.lora_target_modules)
        cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")
        self.activate(None)
        inject_adapter_in_model(cfg, self.lm, adapter_name=name)
        self.meta[name] = {"rank": rank, "alpha": alpha, "dropout": dropout, "target_modules": targets,
                           "full_modules": list(full_modules)}
        self._lora_cfg = getattr(self, "_lora_cfg", {})
        self._lora_cfg[name] = cfg
        self.full[name] = {p: copy.deepcopy(_get(self.model, p)) for p in full_modules}
        self._set_lora_state(None)

    # -- switching --------------------------------------------------------------------------
    def _lora_layers(self) -> Iterator[nn.Module]:
        from peft.tuners.tuners_utils import BaseTunerLayer

        for m in self.lm.modules():
            if isinstance(m, BaseTunerLayer):
                yield m

    def _set_lora_state(self, name: str | None) -> None:
        grads = {n: p.requires_grad for n, p in self.lm.named_parameters()}
        for layer in self._lora_layers():
            if name is None:
                layer.enable_adapters(False)
            else:
                layer.enable_adapters(True)
                layer.set_adapter(name)
        for n, p in self.lm.named_parameters():  # peft toggles requires_grad; the trainer decides that
            p.requires_grad_(grads[n])

    def activate(self, name: str | None) -> None:
        """Make ``name``'s LoRA and module copies live in the model (``None``: the base)."""
        if name == self.active:
            return
        if name is not None and name not in self.meta:
            raise ValueError(f"no adapter {name!r}; have {sorted(self.meta)}")
        device = next(self.model.expert.parameters()).device
        if self.active is not None:  # put the base modules back
            for p, base in self.base_full.items():
                _set(self.model, p, base)
        if name is not None:
            for p, mod in self.full[name].items():
                self.base_full.setdefault(p, _get(self.model, p))
                _set(self.model, p, mod.to(device))
        self._set_lora_state(name)
        cache = getattr(self.model.backbone, "_text_cache", None)
        if cache is not None:
            cache.clear()  # text features depend on the active LoRA
        self.active = name

    @contextmanager
    def activated(self, name: str | None):
        prev = self.active
        self.activate(name)
        try:
            yield
        finally:
            self.activate(prev)

    def trainable_parameters(self, name: str) -> list[nn.Parameter]:
        """The parameters ``name`` owns: its LoRA matrices and its full module copies."""
        params = [p for n, p in self.lm.named_parameters() if "lora_" in n and f".{name}." in f"{n}."]
        for mod in self.full[name].values():
            params += list(mod.parameters())
        return params

    # -- state ------------------------------------------------------------------------------
    def base_state_dict(self) -> dict[str, torch.Tensor]:
        """The model's weights without any adapter, under the plain (un-injected) key names."""
        with self.activated(None):
            sd = self.model.state_dict()
        return {k.replace(".base_layer.", "."): v for k, v in sd.items() if "lora_" not in k}

    def save(self, root: str | Path, names: Sequence[str] | None = None) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        root = Path(root)
        for name in names or list(self.meta):
            d = root / name
            d.mkdir(parents=True, exist_ok=True)
            lora = get_peft_model_state_dict(self.lm, adapter_name=name)
            save_file({PEFT_PREFIX + k: v.detach().cpu().contiguous() for k, v in lora.items()},
                      str(d / "adapter_model.safetensors"))
            self._lora_cfg[name].save_pretrained(str(d))
            full = {f"{p}.{k}": v.detach().cpu().contiguous()
                    for p, mod in self.full[name].items() for k, v in mod.state_dict().items()}
            save_file(full, str(d / "full_modules.safetensors"))
            (d / "vla_adapter.json").write_text(json.dumps({"name": name, **self.meta[name]}, indent=2))

    def load(self, root: str | Path) -> None:
        """Attach every ``root/<name>/`` adapter (weights as saved; nothing trainable)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        for d in sorted(Path(root).iterdir()):
            meta_file = d / "vla_adapter.json"
            if not meta_file.exists():
                continue
            try:
                meta = json.loads(meta_file.read_text())
                name = meta["name"]
                self.add(name, meta["rank"], meta["alpha"], meta["dropout"], meta["target_modules"],
                         meta["full_modules"])
            except (KeyError, ValueError) as e:
                raise ValueError(f"{meta_file}: invalid adapter: {e}") from e
            lora = load_file(str(d / "adapter_model.safetensors"))
            res = set_peft_model_state_dict(self.lm, {k.removeprefix(PEFT_PREFIX): v for k, v in lora.items()},
                                            adapter_name=name)
            bad = [k for k in getattr(res, "unexpected_keys", []) if "lora_" in k]
            if bad:
                raise ValueError(f"{d}: adapter weights do not match the model (unexpected {bad[:3]})")
            full = load_file(str(d / "full_modules.safetensors"))
            for p, mod in self.full[name].items():
                sub = {k[len(p) + 1:]: v for k, v in full.items() if k.startswith(p + ".")}
                mod.load_state_dict(sub, strict=True)
        for n, p in self.lm.named_parameters():
            if "lora_" in n:
                p.requires_grad_(False)
        for mods in self.full.values():
            for mod in mods.values():
                mod.requires_grad_(False)
