"""Whether a checkpoint's training state can be continued exactly by a run of a given config."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoint import Checkpoint
from ..config import Config
from ..errors import UserError


def resumable_state(checkpoint: Checkpoint, path: Path, cfg: Config, class_names: list[str]) -> dict[str, Any]:
    """The ``train_state`` of ``checkpoint`` (read from ``path``), or a one-line UserError when this run cannot
    continue it: weights only, other classes, another optimiser, EMA on one side only."""
    state = checkpoint.train_state
    if state is None:
        raise UserError(f"{path}: holds weights only (no optimizer state); use train.pretrained to fine-tune")
    if checkpoint.class_names != class_names:
        raise UserError(f"{path}: trained on different classes than the config's dataset; cannot resume")
    saved = checkpoint.config.get("train", {}).get("optimizer", "adamw")  # (older checkpoints: AdamW)
    if saved != cfg.train.optimizer:
        raise UserError(f"{path}: trained with train.optimizer {saved}, the config says {cfg.train.optimizer}; "
                        f"cannot resume")
    if ("ema" in state) != (cfg.train.ema_decay > 0):
        raise UserError(f"{path}: {'has' if 'ema' in state else 'has no'} EMA state but train.ema_decay is "
                        f"{cfg.train.ema_decay}; cannot resume")
    return state
