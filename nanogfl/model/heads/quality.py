"""Placeholder for GFLV2's DGQP (replaced by the real module)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DistributionQuality(nn.Module):
    def __init__(self, reg_max: int = 7, topk: int = 4, channels: int = 64, add_mean: bool = True) -> None:
        super().__init__()
        self.reg_max, self.topk = reg_max, topk
        self.fc1 = nn.Linear(4 * (topk + 1), channels)
        self.fc2 = nn.Linear(channels, 1)

    def forward(self, box_logits: torch.Tensor) -> torch.Tensor:
        probs = box_logits.reshape(*box_logits.shape[:-1], 4, self.reg_max + 1).softmax(-1)
        top = probs.topk(self.topk, dim=-1).values
        stats = torch.cat((top, top.mean(-1, keepdim=True)), -1).flatten(-2)
        return self.fc2(F.relu(self.fc1(stats)))


def joint_score_logits(cls_logits: torch.Tensor, quality_logits: torch.Tensor) -> torch.Tensor:
    log_p = F.logsigmoid(cls_logits) + F.logsigmoid(quality_logits)
    log_p = log_p.clamp(max=-1e-7)
    return (log_p - torch.log(-torch.expm1(log_p))).clamp(-100, 100)
