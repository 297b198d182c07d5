"""What every GFL head shares: the initial class bias, the level flattening, and the class-score activation
(plain sigmoid, or GFLV2's joint score with a quality predictor)."""
from __future__ import annotations

import torch
from torch import nn

from .quality import joint_score_logits

PRIOR_PROB_BIAS = -4.595  # log(0.01 / 0.99): initial class probability 0.01


def flatten_levels(outputs: list[torch.Tensor]) -> torch.Tensor:
    """[B, C, H_l, W_l] per level -> [B, N, C], levels in order, row-major inside a level."""
    return torch.cat([o.flatten(start_dim=2) for o in outputs], dim=2).permute(0, 2, 1)


def class_scores(preds: torch.Tensor, num_classes: int, quality: nn.Module | None, probabilities: bool
                 ) -> torch.Tensor:
    """Finish a head's flattened output [B, N, C + 4 * (reg_max + 1)].

    Without ``quality`` the class columns stay logits (``probabilities`` False: training) or become sigmoid
    probabilities (deploy). With GFLV2's quality predictor the class score is sigmoid(logit) x quality, computed
    from the box columns: training gets the logit of that joint score (so QFL and the assigner, which work on
    logits, train the joint score exactly), deploy gets the joint score itself.
    """
    if quality is None and not probabilities:
        return preds
    cls_logits, box_logits = preds.split([num_classes, preds.shape[-1] - num_classes], dim=-1)
    if quality is None:
        return torch.cat((cls_logits.sigmoid(), box_logits), dim=-1)
    quality_logits = quality(box_logits)
    if probabilities:
        return torch.cat((cls_logits.sigmoid() * quality_logits.sigmoid(), box_logits), dim=-1)
    return torch.cat((joint_score_logits(cls_logits, quality_logits), box_logits), dim=-1)
