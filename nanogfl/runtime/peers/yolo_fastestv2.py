"""YOLO-FastestV2 outputs -> boxes and per-class scores in input pixels (numpy).

One output per stride, a grid [rows, cols, 5A + C] (A anchors): 4A box terms (anchor-major tx, ty, tw, th), A
objectness values, then C class probabilities shared by the cell's anchors; the graph applies every activation.
YOLOv5-style decode: centre = (2 t - 0.5 + cell) * stride, size = (2 t)^2 * anchor, score = obj[a] * class.
"""
from __future__ import annotations

import numpy as np

from ..decode import feature_sizes
from ..metadata import ModelMeta


def decode(outputs: list[np.ndarray], meta: ModelMeta, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``outputs`` [one grid per stride] -> (boxes [N, 4] x1y1x2y2, scores [N, C]), N = sum of cells x anchors,
    cell-major then anchor."""
    boxes, scores = [], []
    for output, stride, anchors, (rows, cols) in zip(outputs, meta.strides, meta.anchors,
                                                     feature_sizes(input_hw, meta.strides)):
        count = len(anchors)
        width = 5 * count + meta.num_classes
        if np.asarray(output).size != rows * cols * width:
            raise ValueError(f"YOLO-FastestV2 output of stride {stride} has shape {np.shape(output)}; expected "
                             f"[{rows}, {cols}, {width}] for input {tuple(input_hw)}, {count} anchors and "
                             f"{meta.num_classes} classes")
        cells = np.asarray(output, np.float32).reshape(rows * cols, width)
        terms = cells[:, :4 * count].reshape(-1, count, 4)
        ys, xs = np.divmod(np.arange(rows * cols, dtype=np.float32), cols)
        grid = np.stack((xs, ys), axis=1)[:, None, :] + np.float32(meta.prior_offset)  # [cells, 1, 2]
        centres = (2 * terms[..., :2] - 0.5 + grid) * stride
        half_sizes = (2 * terms[..., 2:]) ** 2 * np.asarray(anchors, np.float32)[None] / 2
        boxes.append(np.concatenate((centres - half_sizes, centres + half_sizes), axis=2).reshape(-1, 4))
        objectness = cells[:, 4 * count:5 * count]
        scores.append((objectness[:, :, None] * cells[:, None, 5 * count:]).reshape(-1, meta.num_classes))
    return np.concatenate(boxes), np.concatenate(scores)
