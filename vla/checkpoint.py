"""The checkpoint directory format (see DESIGN.md) and the one check that a path is such a directory.

Layout: ``config.json`` (format version, model config, embodiment ids, default embodiment),
``model.safetensors`` (base weights), ``embodiments/<name>.json`` (spec + norm stats),
``adapters/<name>/`` (peft adapters, optional), ``backbone/`` (HF processor + config, ``hf`` backbones),
``training_state/`` (written by ``finetune``; kept when the weights are rewritten).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla.config import VLAConfig
from vla.types import EmbodimentSpec

CHECKPOINT_FORMAT = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
KEPT_ON_REWRITE = ("adapters", "training_state")  # written beside the weights by others


def check_checkpoint_dir(path: str | os.PathLike, flag: str | None = "--checkpoint") -> Path:
    """``path`` as a :class:`Path` if it is a checkpoint directory, else a one-line FileNotFoundError
    (prefixed with ``flag``) saying what is wrong: missing, not a directory, or no ``config.json``
    (suggesting ``<path>/policy`` when that is a checkpoint, as in a training run's output)."""
    path = Path(path)
    where = f"{flag} {path}" if flag else str(path)
    if not path.exists():
        raise FileNotFoundError(f"{where}: no such directory")
    if not path.is_dir():
        raise FileNotFoundError(f"{where}: not a directory (a checkpoint is a directory with {CONFIG_FILE})")
    if not (path / CONFIG_FILE).is_file():
        if (path / "policy" / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{where}: not a VLA checkpoint (no {CONFIG_FILE}); "
                                    f"did you mean {path / 'policy'}?")
        raise FileNotFoundError(f"{where}: not a VLA checkpoint (no {CONFIG_FILE})")
    return path


@dataclass(frozen=True)
class CheckpointMeta:
    """What ``config.json`` holds."""

    config: VLAConfig
    embodiment_ids: dict[str, int]
    default_embodiment: str | None
    format_version: int = CHECKPOINT_FORMAT


def read_meta(path: str | os.PathLike, flag: str | None = None) -> CheckpointMeta:
    """Parse ``config.json`` of the checkpoint at ``path`` (ValueError naming the file when invalid)."""
    config_file = check_checkpoint_dir(path, flag) / CONFIG_FILE
    try:
        meta = json.loads(config_file.read_text())
        return CheckpointMeta(
            config=VLAConfig.from_dict(meta["model"]),
            embodiment_ids={str(k): int(v) for k, v in meta.get("embodiment_ids", {}).items()},
            default_embodiment=meta.get("default_embodiment"),
            format_version=int(meta.get("format_version", CHECKPOINT_FORMAT)),
        )
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{config_file}: invalid checkpoint config: {e}") from e


def read_embodiments(path: str | os.PathLike, ids: Mapping[str, int]) -> list[EmbodimentSpec]:
    """The specs listed in ``config.json``, in id order."""
    specs = []
    for name in sorted(ids, key=ids.get):
        spec_file = Path(path) / "embodiments" / f"{name}.json"
        if not spec_file.exists():
            raise FileNotFoundError(f"{spec_file}: embodiment {name!r} listed in {CONFIG_FILE} but its spec is missing")
        specs.append(EmbodimentSpec.load(spec_file))
    return specs


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model,
    embodiments: Sequence[EmbodimentSpec],
    embodiment_ids: Mapping[str, int],
    default_embodiment: str,
    adapters=None,
) -> Path:
    """Write the checkpoint directory atomically (temp dir + rename); returns its path.

    With adapters, ``model.safetensors`` holds the base weights under plain names and the adapters go to
    ``adapters/``. ``training_state/`` and ``adapters/`` already at ``path`` are kept unless rewritten.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        _write_contents(tmp, model, embodiments, embodiment_ids, default_embodiment, adapters)
        if path.exists():
            for extra in KEPT_ON_REWRITE:
                if (path / extra).exists() and not (tmp / extra).exists():
                    shutil.copytree(path / extra, tmp / extra)
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _write_contents(out: Path, model, embodiments, embodiment_ids, default_embodiment, adapters) -> None:
    from safetensors.torch import save_file, save_model

    config: VLAConfig = model.config
    if config.backbone.kind == "hf":
        model.backbone.processor.save_pretrained(out / "backbone")
        model.backbone.vlm.config.save_pretrained(out / "backbone")
    meta: dict[str, Any] = {
        "format_version": CHECKPOINT_FORMAT,
        "model": config.to_dict(),
        "embodiment_ids": dict(embodiment_ids),
        "default_embodiment": default_embodiment,
    }
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    if adapters is not None and len(adapters):
        base = adapters.base_state_dict()
        save_file({k: v.detach().cpu().contiguous() for k, v in base.items()}, str(out / WEIGHTS_FILE))
        adapters.save(out / "adapters")
    else:
        save_model(model, str(out / WEIGHTS_FILE))
    (out / "embodiments").mkdir()
    for spec in embodiments:
        spec.save(out / "embodiments" / f"{spec.name}.json")


def load_model(path: str | os.PathLike, config: VLAConfig):
    """Build the :class:`VLAModel` of ``config`` (no pretrained file read) and load the checkpoint's weights."""
    from safetensors.torch import load_model as _load

    from vla.model.vla_model import VLAModel

    path = Path(path)
    backbone = dataclasses.replace(config.backbone, lm_random_init=True)  # weights come from the checkpoint
    if config.backbone.kind == "hf":
        backbone = dataclasses.replace(backbone, hf_model=str(path / "backbone"))
    model = VLAModel(dataclasses.replace(config, backbone=backbone))
    model.config = config
    missing, unexpected = _load(model, str(path / WEIGHTS_FILE), strict=False)
    if missing or unexpected:
        raise ValueError(f"{path / WEIGHTS_FILE}: weights do not match config "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    return model


def load_adapters(path: str | os.PathLike, model):
    """The checkpoint's :class:`~vla.adapters.AdapterSet` on ``model``, or None when it has no ``adapters/``."""
    if not (Path(path) / "adapters").is_dir():
        return None
    from vla.adapters import AdapterSet

    adapters = AdapterSet(model)
    adapters.load(Path(path) / "adapters")
    return adapters
