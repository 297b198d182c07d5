"""Adaptive training sample selection (ATSS), as NanoDet-m / GFL assign it, vectorised over GTs and images.

Each prior stands for a virtual square cell of side ``box_scale * stride`` centred at its point. Per image and GT:
on every level the ``topk`` cells whose centres lie nearest the GT centre are candidates; the GT's IoU threshold
is the mean plus the (unbiased) standard deviation of its candidates' cell/GT IoUs; a candidate is positive when
its IoU reaches the threshold and its centre lies more than ``CENTRE_MARGIN`` inside every side of the GT. A prior
positive for several GTs goes to the one of highest cell IoU (the lowest GT index on a tie).

The soft label returned is the IoU of the prior's *predicted* box with its GT, the quality target of the loss.
Nearest-candidate ties are broken by the lower prior index (the reference's ``topk`` leaves them unspecified).
"""
from __future__ import annotations

import torch

from ..box_ops import aligned_iou, pairwise_iou
from .dsla import Assignment, pad_targets

CENTRE_MARGIN = 0.01  # pixels: the reference's strict "centre inside the GT" test is min(l, t, r, b) > 0.01


def level_sizes(strides: torch.Tensor) -> list[int]:
    """Prior counts of the levels: contiguous runs of equal stride in the priors' stride column."""
    return torch.unique_consecutive(strides, return_counts=True)[1].tolist()


def nearest_candidates(distances: torch.Tensor, sizes: list[int], topk: int) -> torch.Tensor:
    """distances [B, N, G] -> bool [B, N, G]: per level and GT, the ``min(topk, level size)`` nearest priors,
    ties at the k-th distance going to the lowest prior index."""
    chosen = []
    for level in distances.split(sizes, dim=1):
        k = min(topk, level.shape[1])
        kth = level.topk(k, dim=1, largest=False).values[:, -1:]  # [B, 1, G]
        nearer = level < kth
        tied = level == kth
        room = k - nearer.sum(dim=1, keepdim=True)
        chosen.append(nearer | (tied & (tied.cumsum(dim=1) <= room)))
    return torch.cat(chosen, dim=1)


class ATSSAssigner:
    """ATSS label assignment of NanoDet-m / GFL (see the module docstring). ``cls_logits`` is accepted for the
    interface shared with ``DynamicSoftLabelAssigner`` but unused; ``assign_batch`` labels a whole batch at once."""

    def __init__(self, topk: int = 9, box_scale: float = 5.0) -> None:
        self.topk = topk
        self.box_scale = box_scale

    def assign(self, cls_logits: torch.Tensor, priors: torch.Tensor, pred_boxes: torch.Tensor,
               gt_boxes: torch.Tensor, gt_labels: torch.Tensor) -> Assignment:
        """One image: cls_logits [N, C], priors [N, 3], pred_boxes [N, 4], gt_boxes [G, 4], gt_labels [G]."""
        boxes, labels, valid = pad_targets([gt_boxes], [gt_labels], pred_boxes.device)
        result = self.assign_batch(cls_logits[None], priors, pred_boxes[None], boxes, labels, valid)
        return Assignment(result.gt_index[0], result.labels[0], result.ious[0])

    @torch.no_grad()
    def assign_batch(self, cls_logits: torch.Tensor, priors: torch.Tensor, pred_boxes: torch.Tensor,
                     gt_boxes: torch.Tensor, gt_labels: torch.Tensor, gt_valid: torch.Tensor,
                     prior_valid: torch.Tensor | None = None) -> Assignment:
        """cls_logits [B, N, C] (unused), priors [N, 3] rows (x, y, stride) with the levels concatenated,
        pred_boxes [B, N, 4]; padded GTs from ``pad_targets``. ``prior_valid`` [B, N] (padded batches): only
        those priors are candidates, as mmdetection assigns among the anchors inside the image."""
        batch, num_priors = pred_boxes.shape[:2]
        num_gts = gt_boxes.shape[1]
        device = pred_boxes.device
        background = torch.full((batch, num_priors), -1, dtype=torch.long, device=device)
        if num_gts == 0 or num_priors == 0:
            return Assignment(background, background.clone(), torch.zeros(batch, num_priors, device=device))
        gt_valid = gt_valid & gt_boxes.isfinite().all(dim=2)  # a NaN/inf GT can claim nothing
        gt_boxes = torch.where(gt_valid[..., None], gt_boxes.float(), 0.0)
        priors = priors.to(gt_boxes.dtype)

        size = priors[:, 2] * self.box_scale
        cells = torch.stack((priors[:, 0] - 0.5 * size, priors[:, 1] - 0.5 * size,
                             priors[:, 0] + 0.5 * size, priors[:, 1] + 0.5 * size), dim=1)
        cell_x = ((cells[:, 0] + cells[:, 2]) / 2.0)[None, :, None]  # [1, N, 1]
        cell_y = ((cells[:, 1] + cells[:, 3]) / 2.0)[None, :, None]
        x1, y1, x2, y2 = (gt_boxes[:, None, :, i] for i in range(4))  # each [B, 1, G]
        distances = ((cell_x - (x1 + x2) / 2.0).square() + (cell_y - (y1 + y2) / 2.0).square()).sqrt()
        overlaps = pairwise_iou(cells, gt_boxes.reshape(-1, 4)).reshape(num_priors, batch, num_gts).transpose(0, 1)

        sizes = level_sizes(priors[:, 2])
        if prior_valid is None:
            candidate = nearest_candidates(distances, sizes, self.topk)
            count = sum(min(self.topk, n) for n in sizes)  # candidates per GT, the same for every GT
        else:
            distances = distances.masked_fill(~prior_valid[..., None], float("inf"))
            candidate = nearest_candidates(distances, sizes, self.topk) & prior_valid[..., None]
            count = candidate.sum(dim=1, keepdim=True).clamp(min=1)  # [B, 1, G]: fewer on a level mostly padding
        candidate_overlaps = torch.where(candidate, overlaps, 0.0)
        mean = candidate_overlaps.sum(dim=1, keepdim=True) / count
        spread = torch.where(candidate, overlaps - mean, 0.0).square().sum(dim=1, keepdim=True)
        threshold = mean + (spread / (count - 1)).sqrt()  # unbiased, like torch.std: NaN (no positive) if count 1

        inside = ((cell_x - x1 > CENTRE_MARGIN) & (cell_y - y1 > CENTRE_MARGIN)
                  & (x2 - cell_x > CENTRE_MARGIN) & (y2 - cell_y > CENTRE_MARGIN))
        positive = candidate & (overlaps >= threshold) & inside & gt_valid[:, None, :]

        best, best_index = overlaps.masked_fill(~positive, float("-inf")).max(dim=2)  # first maximum on a tie
        is_positive = best > float("-inf")
        gt_index = torch.where(is_positive, best_index, background)
        safe_index = gt_index.clamp(min=0)
        labels = torch.where(is_positive, gt_labels.gather(1, safe_index), background)
        matched = gt_boxes.gather(1, safe_index[..., None].expand(-1, -1, 4))
        soft = aligned_iou(pred_boxes.float(), matched).nan_to_num(0.0, 0.0, 0.0).clamp(0.0, 1.0)
        return Assignment(gt_index, labels, torch.where(is_positive, soft, 0.0))
