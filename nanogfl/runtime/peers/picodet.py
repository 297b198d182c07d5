"""PicoDet (PaddleDetection, ncnn export without post-processing) outputs -> boxes and per-class scores (numpy).

A class blob [H * W, C] and a box blob [H * W, 4 * (reg_max + 1)] per stride, as ``split_outputs`` lists them:
class scores (sigmoided in the graph; ``class_activation`` "none" applies it here) and side-major (left, top,
right, bottom) distance-bin logits. Points sit at cell centres ((x + 0.5) * stride: ``prior_offset`` 0.5); a
side's distance is the softmax-expected bin x stride (the GFL integral).
"""
from __future__ import annotations

import numpy as np

from ..decode import distribution_to_distance, feature_sizes, make_priors
from ..metadata import ModelMeta
from .common import sigmoid


def decode(outputs: list[np.ndarray], meta: ModelMeta, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``outputs`` [cls_8, box_8, cls_16, box_16, ...] -> (boxes [N, 4] x1y1x2y2, scores [N, C])."""
    bins = 4 * (meta.reg_max + 1)
    classes, distributions = [], []
    for (cls, box), stride, (rows, cols) in zip(zip(outputs[0::2], outputs[1::2]), meta.strides,
                                                feature_sizes(input_hw, meta.strides)):
        for kind, array, width in (("class", cls, meta.num_classes), ("box", box, bins)):
            if np.asarray(array).size != rows * cols * width:
                raise ValueError(f"PicoDet {kind} output of stride {stride} has shape {np.shape(array)}; expected "
                                 f"[{rows * cols}, {width}] for input {tuple(input_hw)}")
        classes.append(np.asarray(cls, np.float32).reshape(-1, meta.num_classes))
        distributions.append(np.asarray(box, np.float32).reshape(-1, bins))
    scores = np.concatenate(classes)
    if meta.class_activation == "none":
        scores = sigmoid(scores)
    priors = make_priors(input_hw, meta.strides, meta.prior_offset)
    distances = distribution_to_distance(np.concatenate(distributions), meta.reg_max) * priors[:, 2:3]
    boxes = np.concatenate((priors[:, :2] - distances[:, :2], priors[:, :2] + distances[:, 2:]), axis=1)
    return boxes, scores
