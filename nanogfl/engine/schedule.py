"""Learning-rate schedule: linear warmup over steps, then cosine (NanoDet-Plus) or multistep (legacy NanoDet-m)
over epochs.

A pure function of (config, epoch, step), so a resumed run follows exactly the same schedule."""
from __future__ import annotations

import bisect
import math

from ..config import TrainConfig


def epoch_learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The scheduled lr of ``epoch`` (0-based, i.e. the number of finished epochs), before warmup.

    cosine: from ``lr`` at epoch 0 to ``min_lr`` at ``epochs``. multistep: ``lr * gamma ** k`` with k the number of
    milestones <= epoch, as torch's MultiStepLR stepped once per epoch (NanoDet's ``interval: epoch``).
    """
    if cfg.schedule == "multistep":
        return cfg.lr * cfg.gamma ** bisect.bisect_right(cfg.milestones, epoch)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * epoch / max(cfg.epochs, 1)))


def learning_rate(cfg: TrainConfig, epoch: int, global_step: int) -> float:
    """The lr of optimiser step ``global_step`` (0-based) in ``epoch``: during warmup the scheduled lr times
    ``warmup_ratio + (1 - warmup_ratio) * step / warmup_steps`` (NanoDet's linear warmup)."""
    scheduled = epoch_learning_rate(cfg, epoch)
    if global_step < cfg.warmup_steps:
        progress = global_step / cfg.warmup_steps
        return scheduled * (cfg.warmup_ratio + (1 - cfg.warmup_ratio) * progress)
    return scheduled
