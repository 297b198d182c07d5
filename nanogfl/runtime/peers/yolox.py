"""YOLOX outputs -> boxes and per-class scores in input pixels (numpy).

One output [N, 5 + C] over the strides' grid points (levels in stride order, row-major): (dx, dy, log w, log h),
objectness, C class scores. Centre = (d + grid) * stride, size = exp(log size) * stride, score = obj * class.
"""
from __future__ import annotations

import numpy as np

from ..decode import make_priors
from ..metadata import ModelMeta
from .common import sigmoid


def decode(outputs: list[np.ndarray], meta: ModelMeta, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``outputs`` [the one [1, N, 5 + C] output] -> (boxes [N, 4] x1y1x2y2, scores [N, C])."""
    width = 5 + meta.num_classes
    output = np.asarray(outputs[0], np.float32)
    if output.size % width:
        raise ValueError(f"YOLOX output has shape {output.shape}; expected [N, {width}] for {meta.num_classes} classes")
    output = output.reshape(-1, width)
    priors = make_priors(input_hw, meta.strides, meta.prior_offset)  # (x, y, stride), x = (col + offset) * stride
    if len(priors) != len(output):
        raise ValueError(f"YOLOX output has {len(output)} rows but input size {tuple(input_hw)} with strides "
                         f"{tuple(meta.strides)} gives {len(priors)} grid points")
    probabilities = output[:, 4:] if meta.class_activation == "sigmoid" else sigmoid(output[:, 4:])
    strides = priors[:, 2:3]
    centres = output[:, :2] * strides + priors[:, :2]
    with np.errstate(over="ignore"):  # a huge log size gives an infinite box, which NMS ignores
        half_sizes = np.exp(output[:, 2:4]) * strides / 2
    boxes = np.concatenate((centres - half_sizes, centres + half_sizes), axis=1)
    return boxes, probabilities[:, :1] * probabilities[:, 1:]
