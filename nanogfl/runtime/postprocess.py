"""Model output -> detections in original-image pixels: decode, NMS, then undo the preprocessing warp."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..contract import DEPLOY_SCORE_THRESHOLD, EVAL_IOU_THRESHOLD, EVAL_MAX_DETECTIONS
from .decode import decode_output, feature_sizes, make_priors
from .metadata import ModelMeta
from .nms import multiclass_nms


def class_name(label: int, class_names: Sequence[str] | None) -> str:
    """The name of class ``label``, or its number where ``class_names`` does not reach it."""
    return class_names[label] if class_names is not None and label < len(class_names) else str(label)


def class_counts(labels: Sequence[int], class_names: Sequence[str] | None) -> dict[str, int]:
    """{"person": 2, "car": 1}: how many of ``labels`` per class name, most frequent first."""
    return dict(Counter(class_name(label, class_names) for label in labels).most_common())


@dataclass
class Detections:
    boxes: np.ndarray  # [K, 4] float32 x1, y1, x2, y2 in original-image pixels
    scores: np.ndarray  # [K] float32
    labels: np.ndarray  # [K] int64, 0..C-1
    track_ids: np.ndarray | None = None  # [K] int64 when tracked (runtime/track.py): >= 1, or -1 for not yet

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, indices: np.ndarray) -> "Detections":
        """The detections at ``indices``, in that order."""
        track_ids = None if self.track_ids is None else self.track_ids[indices]
        return Detections(self.boxes[indices], self.scores[indices], self.labels[indices], track_ids)

    def to_list(self, class_names: Sequence[str] | None = None) -> list[dict]:
        """JSON-friendly rows: {"label", "class_id", "score", "box": [x1, y1, x2, y2]}, plus "track_id" (an int,
        or None for an object not yet confirmed) when the detections are tracked."""
        rows = []
        track_ids = [None] * len(self) if self.track_ids is None else self.track_ids.tolist()
        for box, score, label, track_id in zip(self.boxes.tolist(), self.scores.tolist(), self.labels.tolist(),
                                               track_ids):
            row = {"label": class_name(label, class_names), "class_id": int(label), "score": round(float(score), 5),
                   "box": [round(v, 2) for v in box]}
            if self.track_ids is not None:
                row["track_id"] = int(track_id) if track_id >= 1 else None
            rows.append(row)
        return rows


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """Map boxes [K, 4] through a 3x3 matrix (its four corners, then their bounding box), clipped to the image."""
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32)
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    corners = np.stack((np.stack((x1, y1), 1), np.stack((x2, y1), 1), np.stack((x1, y2), 1),
                        np.stack((x2, y2), 1)), axis=1)  # [K, 4 corners, 2]
    homogeneous = np.concatenate((corners, np.ones((*corners.shape[:2], 1))), axis=2) @ matrix.T
    points = homogeneous[..., :2] / homogeneous[..., 2:3]
    warped = np.concatenate((points.min(axis=1), points.max(axis=1)), axis=1)
    np.clip(warped[:, 0::2], 0, width, out=warped[:, 0::2])
    np.clip(warped[:, 1::2], 0, height, out=warped[:, 1::2])
    return warped.astype(np.float32)


def top_k_per_level(scores: np.ndarray, rows: np.ndarray, level_starts: np.ndarray, k: int,
                    score_threshold: float) -> np.ndarray:
    """``scores`` [R, C] of the prior rows ``rows`` with every (prior, class) pair outside the ``k`` best above
    ``score_threshold`` of its pyramid level set to 0 (mmdetection's ``nms_pre`` before NMS)."""
    level = np.searchsorted(level_starts, rows, side="right") - 1
    kept = np.zeros_like(scores)
    for index in np.unique(level):
        selected = np.flatnonzero(level == index)
        block = scores[selected]
        flat = np.where(block > score_threshold, block, -np.inf).ravel()
        if np.count_nonzero(flat > -np.inf) <= k:
            kept[selected] = block
            continue
        best = np.argpartition(-flat, k - 1)[:k]
        r, c = np.unravel_index(best, block.shape)
        kept[selected[r], c] = block[r, c]
    return kept


def postprocess(output: np.ndarray, meta: ModelMeta, matrix: np.ndarray, image_hw: tuple[int, int],
                score_threshold: float = DEPLOY_SCORE_THRESHOLD, iou_threshold: float = EVAL_IOU_THRESHOLD,
                max_detections: int = EVAL_MAX_DETECTIONS, input_hw: tuple[int, ...] | None = None) -> Detections:
    """Output [N, C + 4 * (reg_max + 1)] (or [1, N, ...]) with class probabilities -> Detections in the
    original image, given the preprocessing matrix (original -> input), the original (height, width) and the
    input's (default: ``meta.input_hw``; a keep-ratio model's input size differs per image)."""
    if output.ndim == 3 and output.shape[0] == 1:
        output = output[0]
    input_hw = (int(input_hw[0]), int(input_hw[1])) if input_hw is not None else meta.input_hw
    priors = make_priors(input_hw, meta.strides, meta.prior_offset)
    if len(priors) != len(output):
        raise ValueError(f"model output has {len(output)} rows but input size {tuple(input_hw)} with strides "
                         f"{tuple(meta.strides)} gives {len(priors)} priors: the model was exported for another "
                         f"size, or its metadata is wrong")
    num_classes = meta.num_classes
    # Only rows with some class above the threshold can produce a detection: decode just those.
    rows = np.flatnonzero(output[:, :num_classes].max(axis=1) > score_threshold)
    if rows.size == 0:
        return Detections.empty()
    boxes, scores = decode_output(output[rows], num_classes, meta.reg_max, priors[rows], input_hw)
    if meta.pre_nms_top_k > 0:
        sizes = [h * w for h, w in feature_sizes(input_hw, meta.strides)]
        scores = top_k_per_level(scores, rows, np.cumsum([0, *sizes[:-1]]), meta.pre_nms_top_k, score_threshold)
    return detections_in_image(boxes, scores, matrix, image_hw, score_threshold, iou_threshold, max_detections)


def detections_in_image(boxes: np.ndarray, scores: np.ndarray, matrix: np.ndarray, image_hw: tuple[int, int],
                        score_threshold: float, iou_threshold: float, max_detections: int) -> Detections:
    """Decoded candidates (boxes [N, 4] in input pixels, scores [N, C]) -> multi-label class-aware NMS, then the
    boxes mapped back through the preprocessing ``matrix`` (original -> input) and clipped to the original image:
    the tail every output layout shares (ours and runtime/peers)."""
    boxes, scores, labels = multiclass_nms(boxes, scores, score_threshold, iou_threshold, max_detections)
    return Detections(warp_boxes(boxes, np.linalg.inv(matrix), image_hw[1], image_hw[0]), scores, labels)
