"""The optimiser of a run and the gradient-norm step: AdamW (NanoDet-Plus) or SGD with momentum (legacy NanoDet-m).

Both take every parameter in one group with the same weight decay, as NanoDet's configs do (neither sets
``no_norm_decay`` / ``no_bias_decay``): the official builder's one group per parameter, each with the same
settings, updates the weights identically.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig, fused: bool = False) -> torch.optim.Optimizer:
    """``train.optimizer`` over ``model``'s trainable parameters (all but the frozen ones) at ``train.lr`` (the
    schedule sets it per step). ``fused``: torch's one-kernel implementation (the same update up to rounding)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    speed = {"fused": True} if fused else {}  # not passed otherwise: torch's default stays the fp32 path
    if cfg.optimizer == "sgd":  # torch SGD: L2 decay added to the gradient, then momentum (no dampening)
        return torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               **speed)
    return torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay, **speed)


def clip_gradients(parameters: Iterable[torch.Tensor], grad_clip: float) -> torch.Tensor:
    """The global gradient norm, clipping the gradients to ``grad_clip`` first when it is positive (0: none)."""
    return nn.utils.clip_grad_norm_(parameters, grad_clip if grad_clip > 0 else float("inf"))
