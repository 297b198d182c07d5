"""GFL decode in numpy: priors, per-side softmax over distance bins, distances -> boxes.

The torch twin is ``nanogfl.model.box_ops``; tests check the two against each other on real model outputs.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def feature_sizes(input_hw: tuple[int, int], strides: tuple[int, ...]) -> list[tuple[int, int]]:
    """(rows, cols) of each level's feature map: ceil(input / stride)."""
    return [(math.ceil(input_hw[0] / s), math.ceil(input_hw[1] / s)) for s in strides]


@lru_cache(maxsize=16)
def _cached_priors(input_hw: tuple[int, int], strides: tuple[int, ...], offset: float) -> np.ndarray:
    levels = []
    for (rows, cols), stride in zip(feature_sizes(input_hw, strides), strides):
        ys, xs = np.meshgrid((np.arange(rows, dtype=np.float32) + np.float32(offset)) * stride,
                             (np.arange(cols, dtype=np.float32) + np.float32(offset)) * stride, indexing="ij")
        levels.append(np.stack((xs.ravel(), ys.ravel(), np.full(xs.size, stride, np.float32)), axis=1))
    priors = np.concatenate(levels, axis=0)
    priors.flags.writeable = False  # shared by every caller through the cache
    return priors


def make_priors(input_hw: tuple[int, int], strides: tuple[int, ...], offset: float = 0.0) -> np.ndarray:
    """[N, 3] float32 rows of (x, y, stride): point ((col + offset) * s, (row + offset) * s), levels concatenated
    in stride order, row-major inside a level (offset 0: NanoDet-Plus; 0.5: NanoDet-m's cell centres). The
    array is cached and read-only."""
    return _cached_priors((int(input_hw[0]), int(input_hw[1])), tuple(int(s) for s in strides), float(offset))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (subtracts the max, so huge logits give no overflow)."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


def distribution_to_distance(box_logits: np.ndarray, reg_max: int) -> np.ndarray:
    """[N, 4 * (reg_max + 1)] side-major bin logits -> [N, 4] expected distances in bins (not yet x stride)."""
    probs = softmax(box_logits.reshape(-1, 4, reg_max + 1).astype(np.float32, copy=False))
    return probs @ np.arange(reg_max + 1, dtype=np.float32)


def decode_output(output: np.ndarray, num_classes: int, reg_max: int, priors: np.ndarray,
                  input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Model output [N, C + 4 * (reg_max + 1)] -> (boxes [N, 4] float32 in input pixels, clipped to the input;
    scores [N, C], the class columns as they are).

    Rows are independent, so a caller may pass a subset of rows together with the matching subset of priors.
    """
    width = num_classes + 4 * (reg_max + 1)
    if output.ndim != 2 or output.shape[1] != width:
        raise ValueError(f"model output has shape {output.shape}; expected [N, {width}] for {num_classes} classes "
                         f"and reg_max {reg_max}")
    if len(priors) != len(output):
        raise ValueError(f"model output has {len(output)} rows but there are {len(priors)} priors "
                         f"(input size {tuple(input_hw)} or strides do not match the model)")
    distances = distribution_to_distance(output[:, num_classes:], reg_max) * priors[:, 2:3]
    points = priors[:, :2]
    boxes = np.concatenate((points - distances[:, :2], points + distances[:, 2:]), axis=1)
    np.clip(boxes[:, 0::2], 0, input_hw[1], out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, input_hw[0], out=boxes[:, 1::2])
    return boxes.astype(np.float32, copy=False), output[:, :num_classes]
