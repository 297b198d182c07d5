"""Self-describing checkpoints: deployable weights, config and class names in one file, written atomically.

Files are plain tensors and containers, opened with ``torch.load(weights_only=True)``: opening a checkpoint
never runs code from it.
"""
from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from .config import Config, config_from_dict
from .errors import UserError
from .fileio import atomic_write
from .model.build import build_detector
from .model.detector import GFLDetector
from .runtime.metadata import ModelMeta

CHECKPOINT_FORMAT = "nanogfl-checkpoint"
CHECKPOINT_VERSION = 2  # 2: explicit aux_trained; 1 marked imported models by an "imported_from" key
AUX_PREFIXES = ("aux_neck.", "aux_head.")


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, unreadable, unsafe, or not for this model."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds.

    ``model`` is the deployable state dict (the EMA weights when trained here; the trained weights themselves
    with ``train.ema_decay: 0``), with the aux branch except in ``best.pt``; ``aux_trained`` says whether it
    holds an aux branch that learned anything (False for an imported official model, whose aux branch is freshly
    initialised, and for ``best.pt``, which has none);
    ``train_state`` (optimizer, raw weights, step counters) is present in ``last.pt`` only, for ``--resume``.
    """
    model: dict[str, torch.Tensor]
    config: dict[str, Any]
    class_names: list[str]
    aux_trained: bool
    epoch: int = 0  # finished epochs
    metrics: dict[str, Any] = field(default_factory=dict)
    source: Optional[str] = None  # the file it was imported from
    train_state: Optional[dict[str, Any]] = None
    version: int = CHECKPOINT_VERSION

    def to_payload(self) -> dict[str, Any]:
        """The dict stored in the file (no copies of the tensors)."""
        return {"format": CHECKPOINT_FORMAT, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}


def deployable_only(checkpoint: Checkpoint) -> Checkpoint:
    """What ``best.pt`` holds: the deployable weights, without the aux branch (it only guides training) and
    without the training state; val, export, predict and ``train.pretrained`` read it like any checkpoint."""
    model = {k: v for k, v in checkpoint.model.items() if not k.startswith(AUX_PREFIXES)}
    return dataclasses.replace(checkpoint, model=model, aux_trained=False, train_state=None)


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` atomically: a crash or full disk leaves the previous file intact."""
    payload = checkpoint.to_payload()
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _from_payload(payload: dict[str, Any], path: Path) -> Checkpoint:
    version = int(payload.get("version", 1))
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {version} is newer than this nanogfl reads "
                              f"({CHECKPOINT_VERSION}); upgrade nanogfl")
    missing = [key for key in ("model", "config", "class_names") if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing[0]!r}")
    source = payload.get("source", payload.get("imported_from"))
    aux_trained = bool(payload["aux_trained"]) if "aux_trained" in payload else source is None
    return Checkpoint(model=payload["model"], config=payload["config"], class_names=list(payload["class_names"]),
                      aux_trained=aux_trained, epoch=int(payload.get("epoch", 0)),
                      metrics=dict(payload.get("metrics") or {}), source=source,
                      train_state=payload.get("train_state"), version=version)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Open a checkpoint without running code from it (older versions are read too)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).split("\n")[0].strip()
        raise CheckpointError(f"{path}: refused: the file holds Python objects other than tensors and plain "
                              f"containers, and opening it could run code ({reason[:160]})") from None
    except Exception as e:  # truncated file, not a torch file, ...
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a nanogfl checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    return _from_payload(payload, path)


def checkpoint_config(checkpoint: Checkpoint, path: str | Path) -> Config:
    """The training config stored in ``checkpoint``; keys retired since it was written are migrated with a note."""
    return config_from_dict(checkpoint.config, str(path), migrate=True)


def load_model(path: str | Path, with_aux: bool = False) -> tuple[GFLDetector, Config, list[str]]:
    """Model (deployable weights, eval mode), config and class names from a checkpoint."""
    checkpoint = read_checkpoint(path)
    cfg = checkpoint_config(checkpoint, path)
    class_names = checkpoint.class_names
    model = build_detector(cfg.model, len(class_names), with_aux=with_aux)
    state = checkpoint.model
    if not with_aux:
        state = {k: v for k, v in state.items() if not k.startswith(AUX_PREFIXES)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # tensor shape mismatch, e.g. another class count or width than the config says
        first = str(e).split("size mismatch for ", 1)[-1].splitlines()[0].strip().rstrip(".")
        raise CheckpointError(f"{path}: weights do not fit {cfg.model.arch} with {len(class_names)} classes "
                              f"(size mismatch for {first})") from None
    if not with_aux:
        missing = [k for k in missing if not k.startswith(AUX_PREFIXES)]
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit {cfg.model.arch} with {len(class_names)} classes "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval(), cfg, class_names


def model_meta(cfg: Config, class_names: list[str], input_hw: tuple[int, int] | None = None) -> ModelMeta:
    """The runtime metadata (class names, input size, strides, ...) of a model trained with ``cfg``. A model
    trained with ``model.keep_ratio_scale`` keeps it unless a fixed ``input_hw`` is asked for."""
    return ModelMeta(class_names=list(class_names), input_hw=tuple(input_hw or cfg.input_hw),
                     strides=tuple(cfg.model.head.strides), reg_max=cfg.model.head.reg_max,
                     mean=tuple(cfg.data.mean), std=tuple(cfg.data.std), arch=cfg.model.arch,
                     prior_offset=cfg.model.head.prior_offset,
                     keep_ratio_scale=[] if input_hw else list(cfg.model.keep_ratio_scale),
                     pre_nms_top_k=cfg.eval.pre_nms_top_k)
