"""Self-describing checkpoints: weights (EMA), config and class names in one file, written atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..fileio import atomic_write
from ..config import Config, config_from_dict
from ..model import NanoDetPlus, build_nanodet_plus

CHECKPOINT_FORMAT = "nanogfl-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(UserError):
    pass


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """``payload`` needs ``model`` (state dict), ``config`` (dict) and ``class_names``; training state optional."""
    for key in ("model", "config", "class_names"):
        if key not in payload:
            raise ValueError(f"checkpoint payload lacks {key!r}")
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated file, not a torch file, ...
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a nanogfl checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    return payload


def build_model(cfg: Config, num_classes: int, with_aux: bool = True) -> NanoDetPlus:
    return build_nanodet_plus(cfg.model.arch, num_classes, reg_max=cfg.model.reg_max,
                              detach_epoch=cfg.model.detach_epoch, with_aux=with_aux)


def load_model(path: str | Path, with_aux: bool = False) -> tuple[NanoDetPlus, Config, list[str]]:
    """Model (EMA weights, eval mode), config and class names from a checkpoint."""
    payload = read_checkpoint(path)
    cfg = config_from_dict(payload["config"], str(path))
    class_names = list(payload["class_names"])
    model = build_model(cfg, len(class_names), with_aux=with_aux)
    state = payload["model"]
    if not with_aux:
        state = {k: v for k, v in state.items() if not k.startswith(("aux_neck.", "aux_head."))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # tensor shape mismatch, e.g. another class count or width than the config says
        first = str(e).split("size mismatch for ", 1)[-1].splitlines()[0].strip().rstrip(".")
        raise CheckpointError(f"{path}: weights do not fit {cfg.model.arch} with {len(class_names)} classes "
                              f"(size mismatch for {first})") from None
    if not with_aux:
        missing = [k for k in missing if not k.startswith(("aux_neck.", "aux_head."))]
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit {cfg.model.arch} with {len(class_names)} classes "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval(), cfg, class_names


def model_meta(cfg: Config, class_names: list[str], input_hw: tuple[int, int] | None = None):
    """The runtime metadata (class names, input size, strides, ...) of a model trained with ``cfg``."""
    from ..model import STRIDES
    from ..runtime.metadata import ModelMeta

    return ModelMeta(class_names=list(class_names), input_hw=tuple(input_hw or cfg.input_hw), strides=STRIDES,
                     reg_max=cfg.model.reg_max, mean=tuple(cfg.data.mean), std=tuple(cfg.data.std),
                     arch=cfg.model.arch)
