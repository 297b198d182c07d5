"""A detection confusion matrix (torch-free): which class each ground-truth box was detected as, if any."""
from __future__ import annotations

import numpy as np

from .runtime.nms import pairwise_iou

CONFUSION_IOU = 0.5
CONFUSION_SCORE = 0.25  # detections below this do not count (the deploy view of the model, not the AP view)


class ConfusionMatrix:
    """Counts [C + 1, C + 1]: row = true class, column = predicted class, index C = background (a missed box
    in the last column, a false detection in the last row).

    Per image, detections above ``score_threshold`` are taken by score; each takes the unmatched ground-truth
    box of highest IoU (any class) if that IoU is at least ``iou_threshold``.

    >>> cm = ConfusionMatrix(num_classes=3)
    >>> cm.update(gt_boxes, gt_labels, det_boxes, det_scores, det_labels)
    >>> cm.matrix  # [4, 4] int64
    """

    def __init__(self, num_classes: int, iou_threshold: float = CONFUSION_IOU,
                 score_threshold: float = CONFUSION_SCORE) -> None:
        self.num_classes = num_classes
        self.iou_threshold = iou_threshold
        self.score_threshold = score_threshold
        self.matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)

    def update(self, gt_boxes: np.ndarray, gt_labels: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
               labels: np.ndarray) -> None:
        background = self.num_classes
        keep = scores >= self.score_threshold
        order = np.argsort(-scores[keep], kind="stable")
        boxes, labels = boxes[keep][order], labels[keep][order].astype(np.int64)
        gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
        gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
        matched = np.zeros(len(gt_boxes), bool)
        ious = pairwise_iou(boxes.astype(np.float32), gt_boxes) if len(boxes) and len(gt_boxes) else None
        for i, label in enumerate(labels):
            if ious is not None:
                candidates = np.where(matched, -1.0, ious[i])
                best = int(candidates.argmax())
                if candidates[best] >= self.iou_threshold:
                    matched[best] = True
                    self.matrix[gt_labels[best], label] += 1
                    continue
            self.matrix[background, label] += 1
        np.add.at(self.matrix, (gt_labels[~matched], background), 1)

    def merge(self, other: "ConfusionMatrix") -> None:
        self.matrix += other.matrix
