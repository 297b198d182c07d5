"""Learning-rate schedule: linear warmup over steps, then cosine over epochs (NanoDet-Plus recipe).

A pure function of (epoch, step), so a resumed run follows exactly the same schedule."""
from __future__ import annotations

import math

from ..config import TrainConfig


def learning_rate(cfg: TrainConfig, epoch: int, global_step: int) -> float:
    cosine = cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * epoch / max(cfg.epochs, 1)))
    if global_step < cfg.warmup_steps:
        progress = global_step / cfg.warmup_steps
        return cosine * (cfg.warmup_ratio + (1 - cfg.warmup_ratio) * progress)
    return cosine
