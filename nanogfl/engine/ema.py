"""Exponential moving average of the weights (the EMA model is what checkpoints deploy)."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """NanoDet-Plus EMA: update weight d(t) = decay * exp(-(t + 1) / ramp) + (1 - decay).

    Early on d is ~1 (the average follows the model), later it settles at 1 - decay. Buffers (BN statistics)
    are averaged the same way; integer buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9998, ramp: float = 2000.0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.ramp = ramp
        self.updates = 0

    def update_weight(self) -> float:
        return self.decay * math.exp(-(self.updates + 1) / self.ramp) + (1.0 - self.decay)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = self.update_weight()
        self.updates += 1
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            new = source[name].detach()
            if value.dtype.is_floating_point:
                value.mul_(1.0 - weight).add_(new.to(value.dtype), alpha=weight)
            else:
                value.copy_(new)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
