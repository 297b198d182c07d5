"""Dynamic soft label assignment (NanoDet-Plus), vectorised over GTs and batched over images.

Per image: candidates are priors whose point lies strictly inside at least one GT; the cost of a
(candidate, GT) pair is the soft-label focal BCE summed over classes plus ``iou_factor * -log(IoU)``; each GT
takes its ``k`` lowest-cost candidates with ``k = max(1, int(sum of its top-``topk`` IoUs))``; a prior taken by
several GTs keeps the GT of minimum cost. GTs of a batch are padded to the same count and masked.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..box_ops import pairwise_iou

IOU_EPS = 1e-7
LOGIT_LIMIT = 100.0  # far beyond where sigmoid saturates in float32; keeps inf logits finite


@dataclass(frozen=True)
class Assignment:
    """Per prior: assigned GT index, its label (both -1 for background), and the soft label (IoU of the
    predicted box with the assigned GT, 0 for background). Shapes [B, N] (or [N] from ``assign``)."""
    gt_index: torch.Tensor
    labels: torch.Tensor
    ious: torch.Tensor

    @property
    def positive(self) -> torch.Tensor:
        return self.gt_index >= 0


def pad_targets(gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor], device: torch.device | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image GT lists -> boxes [B, G, 4] float32, labels [B, G] int64, valid [B, G] bool (G = max count)."""
    if len(gt_boxes) != len(gt_labels):
        raise ValueError(f"got {len(gt_boxes)} box tensors but {len(gt_labels)} label tensors")
    max_gt = max((len(b) for b in gt_boxes), default=0)
    boxes = torch.zeros(len(gt_boxes), max_gt, 4, device=device)
    labels = torch.zeros(len(gt_boxes), max_gt, dtype=torch.long, device=device)
    valid = torch.zeros(len(gt_boxes), max_gt, dtype=torch.bool, device=device)
    for i, (b, lab) in enumerate(zip(gt_boxes, gt_labels)):
        if len(b) != len(lab):
            raise ValueError(f"image {i}: {len(b)} boxes but {len(lab)} labels")
        boxes[i, :len(b)] = b.reshape(-1, 4).to(boxes)
        labels[i, :len(b)] = lab.to(labels)
        valid[i, :len(b)] = True
    return boxes, labels, valid


def _negative_cost(logits: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits(x, 0) * sigmoid(x)^2, the cost of a class whose target is 0."""
    return F.softplus(logits) * logits.sigmoid().square()


def soft_label_cost(cls_logits: torch.Tensor, ious: torch.Tensor, gt_labels: torch.Tensor) -> torch.Tensor:
    """Classification cost [B, N, G]: sum over classes of BCE-with-logits(x, t) * |t - sigmoid(x)|^2 with
    t = one_hot(label) * IoU (NanoDet's formulation, on logits, so large logits stay exact).

    cls_logits [B, N, C], ious [B, N, G], gt_labels [B, G]. Every class but the GT's has target 0, so the sum is
    the GT-independent all-negative sum corrected at the GT's class: no [B, N, G, C] tensor.
    """
    all_negative = _negative_cost(cls_logits).sum(dim=2, keepdim=True)
    at_label = cls_logits.gather(2, gt_labels[:, None, :].expand(-1, cls_logits.shape[1], -1))
    negative_at_label = _negative_cost(at_label)
    positive_at_label = (F.binary_cross_entropy_with_logits(at_label, ious, reduction="none")
                         * (ious - at_label.sigmoid()).square())
    return all_negative - negative_at_label + positive_at_label


class DynamicSoftLabelAssigner:
    """NanoDet-Plus's dynamic soft label assigner (see the module docstring), fed with the guiding head's class
    logits and decoded boxes. ``assign_batch`` labels every prior of a batch at once."""

    def __init__(self, topk: int = 13, iou_factor: float = 3.0) -> None:
        self.topk = topk
        self.iou_factor = iou_factor

    def assign(self, cls_logits: torch.Tensor, priors: torch.Tensor, pred_boxes: torch.Tensor,
               gt_boxes: torch.Tensor, gt_labels: torch.Tensor) -> Assignment:
        """One image: cls_logits [N, C], priors [N, 3], pred_boxes [N, 4], gt_boxes [G, 4], gt_labels [G]."""
        boxes, labels, valid = pad_targets([gt_boxes], [gt_labels], cls_logits.device)
        result = self.assign_batch(cls_logits[None], priors, pred_boxes[None], boxes, labels, valid)
        return Assignment(result.gt_index[0], result.labels[0], result.ious[0])

    @torch.no_grad()
    def assign_batch(self, cls_logits: torch.Tensor, priors: torch.Tensor, pred_boxes: torch.Tensor,
                     gt_boxes: torch.Tensor, gt_labels: torch.Tensor, gt_valid: torch.Tensor) -> Assignment:
        """cls_logits [B, N, C], priors [N, 3], pred_boxes [B, N, 4]; padded GTs from ``pad_targets``."""
        batch, num_priors = cls_logits.shape[:2]
        background = torch.full((batch, num_priors), -1, dtype=torch.long, device=cls_logits.device)
        if gt_boxes.shape[1] == 0 or num_priors == 0:
            return Assignment(background, background.clone(),
                              torch.zeros(batch, num_priors, device=cls_logits.device))
        cls_logits = cls_logits.float().nan_to_num(0.0).clamp(-LOGIT_LIMIT, LOGIT_LIMIT)
        gt_boxes = gt_boxes.float()
        gt_valid = gt_valid & gt_boxes.isfinite().all(dim=2)  # a NaN/inf GT can claim nothing

        px, py = priors[None, :, 0, None], priors[None, :, 1, None]
        inside = ((px > gt_boxes[:, None, :, 0]) & (py > gt_boxes[:, None, :, 1])
                  & (px < gt_boxes[:, None, :, 2]) & (py < gt_boxes[:, None, :, 3]) & gt_valid[:, None, :])
        candidate = inside.any(dim=2)
        pair_valid = candidate[:, :, None] & gt_valid[:, None, :]  # [B, N, G]

        # Degenerate or astronomically large boxes can give inf/inf: such pairs simply do not overlap.
        ious = torch.vmap(pairwise_iou)(pred_boxes.float(), gt_boxes).nan_to_num(0.0, 0.0, 0.0).clamp(0.0, 1.0)
        cost = soft_label_cost(cls_logits, ious, gt_labels) + self.iou_factor * -(ious + IOU_EPS).log()
        cost = cost.masked_fill(~pair_valid, float("inf"))

        # The sum of at most `topk` IoUs (each <= 1) never exceeds topk, so `k_max` lowest costs suffice.
        k_max = min(self.topk, num_priors)
        candidate_ious = ious.masked_fill(~pair_valid, 0.0)
        dynamic_k = candidate_ious.topk(k_max, dim=1).values.sum(dim=1).int().clamp(min=1)  # [B, G]
        lowest_cost, lowest_index = cost.topk(k_max, dim=1, largest=False)  # [B, k_max, G]
        rank = torch.arange(k_max, device=cost.device)[None, :, None]
        take = (rank < dynamic_k[:, None, :]) & lowest_cost.isfinite()
        matched = torch.zeros_like(pair_valid).scatter_(1, lowest_index, take)

        # Conflicts keep the GT of minimum cost over all GTs, as the reference implementation does.
        claims = matched.sum(dim=2)
        gt_index = torch.where(claims > 1, cost.argmin(dim=2), matched.to(torch.uint8).argmax(dim=2))
        gt_index = torch.where(claims > 0, gt_index, background)
        positive = gt_index >= 0
        safe_index = gt_index.clamp(min=0)
        labels = torch.where(positive, gt_labels.gather(1, safe_index), background)
        soft = ious.gather(2, safe_index[..., None]).squeeze(2) * positive
        return Assignment(gt_index, labels, soft)
