"""The GFL training objective: assign labels with the (detached) guiding predictions, then QFL + GIoU + DFL on the
main head and, for NanoDet-Plus, the same terms on the aux head, all from the one assignment."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .assigners import Assignment, ATSSAssigner, DynamicSoftLabelAssigner, pad_targets
from .box_ops import box_to_distance, decode_boxes, make_priors
from .losses import distribution_focal_loss, giou_loss, loss_normaliser, quality_focal_loss


@dataclass(frozen=True)
class Targets:
    """Training targets for the flattened batch (B * N priors)."""
    labels: torch.Tensor  # [B * N] assigned class, -1 for background
    soft_labels: torch.Tensor  # [B * N] IoU of the guiding box with its GT, 0 for background
    positive_index: torch.Tensor  # [P] flat indices of positive priors
    positive_priors: torch.Tensor  # [P, 3]
    positive_boxes: torch.Tensor  # [P, 4] assigned GT boxes
    num_pos_average: torch.Tensor  # positives over all ranks (at least 1) / world size
    valid_index: torch.Tensor | None = None  # [V] flat indices of priors inside their image (None: all)


LOSS_NORMALISATIONS = ("clamped", "per_image")


def valid_priors(priors: torch.Tensor, image_hw: list[tuple[int, int]] | None, input_hw: tuple[int, int]
                 ) -> torch.Tensor | None:
    """[B, N] bool: the priors whose point lies inside each image's valid (height, width) of a padded batch
    (mmdetection's anchor valid flags); None when every image fills the whole input."""
    if image_hw is None or all(tuple(hw) == input_hw for hw in image_hw):
        return None
    limits = torch.tensor(image_hw, dtype=priors.dtype, device=priors.device)  # [B, 2] (height, width)
    return (priors[None, :, 0] < limits[:, 1:2]) & (priors[None, :, 1] < limits[:, 0:1])
UNCLAMPED_FLOOR = 1e-12  # "per_image": box losses over the bare weight sum (0 / floor = 0 without positives)


class GFLCriterion:
    """QFL (weight 1) + GIoU (2) + DFL (0.25) for a GFL head, with labels from ``assigner``.

    Called with the main (and optional aux) raw predictions and per-image GT boxes/labels; returns the total loss
    and its detached terms. QFL is normalised by the positive count, GIoU and DFL by the summed quality weights
    (max class probability of each positive), both over all DDP ranks. ``normalisation`` "clamped" takes
    max(count, 1) and max(weights, 1) (NanoDet-Plus, mmdetection's GFL); "per_image" counts each image's
    positives as at least 1 and leaves the weight sum unclamped (NanoDet-m's GFL head).

    >>> criterion = GFLCriterion(DynamicSoftLabelAssigner(), num_classes=80, reg_max=7, strides=(8, 16, 32, 64))
    >>> loss, terms = criterion(preds, aux_preds, gt_boxes, gt_labels, input_hw=(320, 320))
    >>> loss.backward()
    """

    def __init__(self, assigner: DynamicSoftLabelAssigner | ATSSAssigner, num_classes: int, reg_max: int,
                 strides: tuple[int, ...], qfl_weight: float = 1.0, giou_weight: float = 2.0,
                 dfl_weight: float = 0.25, prior_offset: float = 0.0, normalisation: str = "clamped") -> None:
        if normalisation not in LOSS_NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {LOSS_NORMALISATIONS}, got {normalisation!r}")
        self.prior_offset = prior_offset
        self.normalisation = normalisation
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.strides = tuple(strides)
        self.assigner = assigner
        self.qfl_weight = qfl_weight
        self.giou_weight = giou_weight
        self.dfl_weight = dfl_weight

    def __call__(self, preds: torch.Tensor, aux_preds: torch.Tensor | None, gt_boxes: list[torch.Tensor],
                 gt_labels: list[torch.Tensor], input_hw: tuple[int, int], assign_with_aux: bool = True,
                 image_hw: list[tuple[int, int]] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """preds / aux_preds: raw [B, N, C + 4 * (reg_max + 1)]; per-image GT boxes [G, 4] (input pixels) and
        labels [G]. The aux predictions guide the assignment unless ``assign_with_aux`` is False (or there are
        none). ``image_hw``: each image's valid (height, width) inside a padded batch of ``input_hw``; priors
        beyond it are neither positives nor negatives. Returns (total loss, detached terms: qfl, giou, dfl,
        aux_*, num_pos)."""
        with torch.autocast(device_type=preds.device.type, enabled=False):
            preds = preds.float()
            aux_preds = aux_preds.float() if aux_preds is not None else None
            priors = make_priors(input_hw, self.strides, self.prior_offset, device=preds.device)
            self._check_inputs(preds, priors, gt_boxes, gt_labels)
            valid = valid_priors(priors, image_hw, tuple(input_hw))
            guide = aux_preds if aux_preds is not None and assign_with_aux else preds
            assignment, padded_boxes = self._assign(guide.detach(), priors, gt_boxes, gt_labels, valid)
            targets = self._targets(assignment, padded_boxes, priors, valid)
            terms = self._head_losses(preds, targets, "")
            if aux_preds is not None:
                terms.update(self._head_losses(aux_preds, targets, "aux_"))
        total = torch.stack(list(terms.values())).sum()
        logged = {name: value.detach() for name, value in terms.items()}
        logged["num_pos"] = assignment.positive.sum().float()
        return total, logged

    def _check_inputs(self, preds: torch.Tensor, priors: torch.Tensor, gt_boxes: list[torch.Tensor],
                      gt_labels: list[torch.Tensor]) -> None:
        channels = self.num_classes + 4 * (self.reg_max + 1)
        if preds.dim() != 3 or preds.shape[1:] != (len(priors), channels):
            raise ValueError(f"predictions have shape {tuple(preds.shape)}; expected [B, {len(priors)}, {channels}] "
                             f"for {self.num_classes} classes, reg_max {self.reg_max}, strides {self.strides}")
        if len(gt_boxes) != preds.shape[0]:
            raise ValueError(f"{len(gt_boxes)} GT lists for a batch of {preds.shape[0]} images")
        if not gt_labels:
            return
        every_label = torch.cat([labels.reshape(-1) for labels in gt_labels])
        if ((every_label < 0) | (every_label >= self.num_classes)).any():  # one host read for the whole batch
            for i, labels in enumerate(gt_labels):
                if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
                    raise ValueError(f"image {i}: GT labels must lie in 0..{self.num_classes - 1}, "
                                     f"got {labels.min().item()}..{labels.max().item()}")

    def _assign(self, guide: torch.Tensor, priors: torch.Tensor, gt_boxes: list[torch.Tensor],
                gt_labels: list[torch.Tensor], prior_valid: torch.Tensor | None) -> tuple[Assignment, torch.Tensor]:
        pred_boxes = decode_boxes(guide[..., self.num_classes:], priors, self.reg_max)
        boxes, labels, valid = pad_targets(gt_boxes, gt_labels, guide.device)
        if prior_valid is None:
            return self.assigner.assign_batch(guide[..., :self.num_classes], priors, pred_boxes, boxes, labels,
                                              valid), boxes
        if not isinstance(self.assigner, ATSSAssigner):
            raise ValueError("padded batches of images of different sizes need the ATSS assigner")
        return self.assigner.assign_batch(guide[..., :self.num_classes], priors, pred_boxes, boxes, labels, valid,
                                          prior_valid), boxes

    def _targets(self, assignment: Assignment, padded_boxes: torch.Tensor, priors: torch.Tensor,
                 prior_valid: torch.Tensor | None) -> Targets:
        num_priors = assignment.gt_index.shape[1]
        positive = assignment.positive.flatten()
        positive_index = positive.nonzero().squeeze(1)
        image_index = positive_index // num_priors
        positive_boxes = padded_boxes[image_index, assignment.gt_index.flatten()[positive_index]]
        if self.normalisation == "per_image":
            num_pos = loss_normaliser(assignment.positive.sum(dim=1).clamp(min=1).sum().float())
        else:
            num_pos = loss_normaliser(positive.sum().float())
        return Targets(assignment.labels.flatten(), assignment.ious.flatten(), positive_index,
                       priors[positive_index % num_priors], positive_boxes, num_pos,
                       None if prior_valid is None else prior_valid.flatten().nonzero().squeeze(1))

    def _head_losses(self, preds: torch.Tensor, targets: Targets, prefix: str) -> dict[str, torch.Tensor]:
        # One split rather than slices: the backward of each slice would zero-fill a full-size gradient.
        cls_logits, all_box_logits = preds.reshape(-1, preds.shape[-1]).split(
            [self.num_classes, 4 * (self.reg_max + 1)], dim=1)
        if targets.valid_index is None:
            qfl = quality_focal_loss(cls_logits, targets.labels, targets.soft_labels).sum()
        else:  # priors in the padding of a smaller image count neither way
            index = targets.valid_index
            qfl = quality_focal_loss(cls_logits[index], targets.labels[index], targets.soft_labels[index]).sum()
        qfl = qfl / targets.num_pos_average

        # With no positives these selections are empty: the sums are 0 and still connected to the graph.
        box_logits = all_box_logits[targets.positive_index]
        weights = cls_logits.detach()[targets.positive_index].sigmoid().amax(dim=1)
        weight_norm = loss_normaliser(weights.sum(), UNCLAMPED_FLOOR if self.normalisation == "per_image" else 1.0)
        pred_boxes = decode_boxes(box_logits, targets.positive_priors, self.reg_max)
        giou = (weights * giou_loss(pred_boxes, targets.positive_boxes)).sum() / weight_norm

        strides = targets.positive_priors[:, 2:3]
        distances = box_to_distance(targets.positive_priors[:, :2], targets.positive_boxes) / strides
        distances = distances.clamp(0.0, self.reg_max - 0.1)
        dfl = distribution_focal_loss(box_logits.reshape(-1, self.reg_max + 1), distances.reshape(-1))
        dfl = (dfl * weights.repeat_interleave(4)).sum() / (4.0 * weight_norm)
        return {f"{prefix}qfl": self.qfl_weight * qfl, f"{prefix}giou": self.giou_weight * giou,
                f"{prefix}dfl": self.dfl_weight * dfl}
