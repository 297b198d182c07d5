"""Generalized Focal Loss terms, element-wise (reduction and normalisation live in the criterion)."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .box_ops import aligned_giou


def reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Average of ``value`` over the distributed ranks (``value`` itself when not running distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def loss_normaliser(local_total: torch.Tensor, floor: float = 1.0) -> torch.Tensor:
    """max(total over all ranks, 1) / world size.

    DDP averages gradients over ranks, so dividing each rank's loss by this makes the step identical to one
    process on the global batch. (NanoDet's own ``reduce_mean`` is a no-op: it all-reduces a temporary and
    returns its input, so each NanoDet rank divides by max(its local total, 1). That matches one process only on
    one rank; early in training, when the summed quality weights are below 1, the clamp makes 2 ranks see half
    the box losses of one process. With one process both normalisers are max(total, 1).) ``floor`` replaces the
    1: NanoDet-m's GFL head divides its box losses by the unclamped total.
    """
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    return (reduce_mean(local_total) * world).clamp(min=floor) / world


def quality_focal_loss(logits: torch.Tensor, labels: torch.Tensor, soft_labels: torch.Tensor,
                       beta: float = 2.0) -> torch.Tensor:
    """QFL per prior [M]: sum over classes of BCE-with-logits(x, t) * |t - sigmoid(x)|^beta, where the target t
    is ``soft_labels`` (the IoU) on class ``labels`` and 0 on every other class (everywhere for label -1).

    logits [M, C], labels [M] int (-1 = background), soft_labels [M]. Computed as the all-negative loss
    (BCE against 0 is softplus) with the few positive entries overwritten: no [M, C] target tensor.
    """
    negative = F.softplus(logits) * logits.sigmoid().pow(beta)
    positive = (labels >= 0).nonzero().squeeze(1)
    positive_logits = logits[positive, labels[positive]]
    targets = soft_labels[positive].to(logits.dtype)
    positive_loss = (F.binary_cross_entropy_with_logits(positive_logits, targets, reduction="none")
                     * (targets - positive_logits.sigmoid()).abs().pow(beta))
    return negative.index_put((positive, labels[positive]), positive_loss).sum(dim=-1)


def distribution_focal_loss(bin_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """DFL per distance [K]: cross-entropy against the two bins around the continuous target, weighted by
    closeness. bin_logits [K, reg_max + 1], targets [K] in [0, reg_max) (clamp before calling)."""
    left = targets.long()
    right = left + 1
    weight_left = right.to(targets.dtype) - targets
    weight_right = targets - left.to(targets.dtype)
    log_probs = bin_logits.log_softmax(dim=-1)
    return -(log_probs.gather(1, left[:, None]).squeeze(1) * weight_left
             + log_probs.gather(1, right[:, None]).squeeze(1) * weight_right)


def giou_loss(pred_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
    """1 - GIoU for matching rows of [K, 4] boxes -> [K]."""
    return 1.0 - aligned_giou(pred_boxes, target_boxes)
