"""Decoders of other detector families' exported models, so ``val`` and ``benchmark`` run them next to ours.

``ModelMeta.layout`` picks one; each turns the model's raw outputs into boxes [N, 4] (x1, y1, x2, y2 in input
pixels) and per-class scores [N, C]; the shared multi-label NMS and box mapping follow (``postprocess_peer``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..metadata import ModelMeta
from ..postprocess import Detections, detections_in_image
from . import picodet, yolo_fastestv2, yolox

Decoder = Callable[[list[np.ndarray], ModelMeta, tuple[int, int]], tuple[np.ndarray, np.ndarray]]
DECODERS: dict[str, Decoder] = {"yolox": yolox.decode, "yolo_fastestv2": yolo_fastestv2.decode,
                                "picodet": picodet.decode}


def decode_peer(outputs: list[np.ndarray], meta: ModelMeta,
                input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs of a ``meta.layout`` model -> (boxes [N, 4] in input pixels, scores [N, C])."""
    if meta.layout not in DECODERS:
        raise ValueError(f"no peer decoder for layout {meta.layout!r}; known: {', '.join(DECODERS)}")
    return DECODERS[meta.layout](outputs, meta, (int(input_hw[0]), int(input_hw[1])))


def postprocess_peer(outputs: list[np.ndarray], meta: ModelMeta, matrix: np.ndarray, image_hw: tuple[int, int],
                     score_threshold: float, iou_threshold: float, max_detections: int,
                     input_hw: tuple[int, int]) -> Detections:
    """Decode (``meta.best_class_only``: each box keeps its best class), multi-label class-aware NMS, then map the
    boxes back through the preprocessing ``matrix`` (original -> input) and clip them to the original image."""
    boxes, scores = decode_peer(outputs, meta, input_hw)
    if meta.best_class_only and len(scores):
        best = scores.argmax(axis=1)
        top = np.zeros_like(scores)
        top[np.arange(len(scores)), best] = scores[np.arange(len(scores)), best]
        scores = top
    rows = np.flatnonzero(scores.max(axis=1) > score_threshold) if len(scores) else np.zeros(0, np.int64)
    if rows.size == 0:
        return Detections.empty()
    return detections_in_image(boxes[rows], scores[rows], matrix, image_hw, score_threshold, iou_threshold,
                               max_detections)
