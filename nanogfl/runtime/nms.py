"""Multi-label candidate selection and class-aware greedy NMS in numpy."""
from __future__ import annotations

import numpy as np

from ..contract import EVAL_IOU_THRESHOLD, EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD

MATRIX_NMS_LIMIT = 256  # up to this many candidates, one overlap matrix beats a Python loop of vector ops


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, 4] x [M, 4] boxes (x1, y1, x2, y2) -> [N, M] IoU (0 where the union is empty)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def overlaps_above(box: np.ndarray, boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Whether IoU(box, boxes) > iou_threshold, broadcasting rows of (x1, y1, x2, y2, area).

    Tested as inter > threshold * union, which needs no division: a pair with no positive union (degenerate or
    overflowing boxes) never counts as overlapping, and nothing turns into NaN.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        inter_w = np.minimum(box[..., 2], boxes[..., 2]) - np.maximum(box[..., 0], boxes[..., 0])
        inter_h = np.minimum(box[..., 3], boxes[..., 3]) - np.maximum(box[..., 1], boxes[..., 1])
        inter = np.maximum(inter_w, 0) * np.maximum(inter_h, 0)
        union = box[..., 4] + boxes[..., 4] - inter
        return inter > iou_threshold * union


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float,
               max_keep: int) -> np.ndarray:
    """Indices kept by class-aware greedy NMS, best score first (ties: lower index first), at most ``max_keep``.

    Greedy NMS walks the candidates by descending score, keeps each one not yet suppressed and suppresses the
    later candidates of the same class that overlap it by more than ``iou_threshold``. Boxes are kept in score
    order, so stopping after ``max_keep`` gives exactly the top ``max_keep`` survivors.
    """
    order = np.argsort(-scores, kind="stable")
    rows = boxes[order].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        areas = np.maximum(rows[:, 2] - rows[:, 0], 0) * np.maximum(rows[:, 3] - rows[:, 1], 0)
    rows = np.concatenate((rows, areas[:, None]), axis=1)  # x1, y1, x2, y2, area
    labels = labels[order]
    count = len(order)
    use_matrix = count <= MATRIX_NMS_LIMIT
    if use_matrix:
        overlaps = overlaps_above(rows[:, None], rows[None], iou_threshold) & (labels[:, None] == labels)
    else:
        by_class = np.argsort(labels, kind="stable")  # ranks grouped by class, ascending inside each class
        class_starts = np.searchsorted(labels[by_class], labels)
        class_ends = np.searchsorted(labels[by_class], labels, side="right")
    suppressed = np.zeros(count, bool)
    keep: list[int] = []
    for rank in range(count):
        if suppressed[rank]:
            continue
        keep.append(rank)
        if len(keep) == max_keep:
            break
        if use_matrix:
            suppressed |= overlaps[rank]
            continue
        same_class = by_class[class_starts[rank]:class_ends[rank]]
        later = same_class[np.searchsorted(same_class, rank, side="right"):]
        later = later[~suppressed[later]]
        suppressed[later[overlaps_above(rows[rank], rows[later], iou_threshold)]] = True
    return order[np.asarray(keep, dtype=np.int64)]


def multiclass_nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float = EVAL_SCORE_THRESHOLD,
                   iou_threshold: float = EVAL_IOU_THRESHOLD, max_detections: int = EVAL_MAX_DETECTIONS
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """boxes [N, 4], scores [N, C] -> (boxes [K, 4] float32, scores [K] float32, labels [K] int64).

    Every (box, class) pair scoring above ``score_threshold`` is a candidate (one box may yield several
    labels); NMS runs per class; the result is sorted by score and cut to ``max_detections``.
    Rows with non-finite coordinates are ignored.
    """
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.ndim != 2 or len(scores) != len(boxes):
        raise ValueError(f"expected boxes [N, 4] and scores [N, C], got {boxes.shape} and {scores.shape}")
    candidate_mask = scores > score_threshold  # NaN scores compare False
    candidate_mask &= np.isfinite(boxes).all(axis=1, keepdims=True)
    rows, labels = np.nonzero(candidate_mask)
    if rows.size == 0 or max_detections <= 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    candidate_scores = scores[rows, labels]
    keep = greedy_nms(boxes[rows], candidate_scores, labels, iou_threshold, max_detections)
    return (boxes[rows[keep]].astype(np.float32), candidate_scores[keep].astype(np.float32),
            labels[keep].astype(np.int64))
