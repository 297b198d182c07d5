"""Priors, GFL box decode and box geometry in torch. The numpy twin of the decode lives in
``nanogfl.runtime.decode``; tests check the two against each other."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def feature_sizes(input_hw: tuple[int, int], strides: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(math.ceil(input_hw[0] / s), math.ceil(input_hw[1] / s)) for s in strides]


def make_priors(input_hw: tuple[int, int], strides: tuple[int, ...], offset: float = 0.0,
                device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[N, 3] rows of (x, y, stride): point ((col + offset) * s, (row + offset) * s), levels concatenated.
    NanoDet-Plus uses offset 0, NanoDet-m 0.5 (cell centres)."""
    rows = []
    for (h, w), s in zip(feature_sizes(input_hw, strides), strides):
        ys, xs = torch.meshgrid((torch.arange(h, device=device, dtype=dtype) + offset) * s,
                                (torch.arange(w, device=device, dtype=dtype) + offset) * s, indexing="ij")
        rows.append(torch.stack((xs.flatten(), ys.flatten(), torch.full_like(xs.flatten(), float(s))), dim=1))
    return torch.cat(rows, dim=0)


def distribution_to_distance(box_logits: torch.Tensor, reg_max: int) -> torch.Tensor:
    """[..., 4 * (reg_max + 1)] side-major bin logits -> [..., 4] expected distances in bins."""
    probs = F.softmax(box_logits.reshape(*box_logits.shape[:-1], 4, reg_max + 1), dim=-1)
    bins = torch.arange(reg_max + 1, device=box_logits.device, dtype=probs.dtype)
    return (probs * bins).sum(dim=-1)


def distance_to_box(points: torch.Tensor, distances: torch.Tensor,
                    max_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """(x, y) and (left, top, right, bottom) -> (x1, y1, x2, y2), optionally clipped to the input."""
    x1 = points[..., 0] - distances[..., 0]
    y1 = points[..., 1] - distances[..., 1]
    x2 = points[..., 0] + distances[..., 2]
    y2 = points[..., 1] + distances[..., 3]
    if max_hw is not None:
        x1, x2 = x1.clamp(0, max_hw[1]), x2.clamp(0, max_hw[1])
        y1, y2 = y1.clamp(0, max_hw[0]), y2.clamp(0, max_hw[0])
    return torch.stack((x1, y1, x2, y2), dim=-1)


def box_to_distance(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    return torch.stack((points[..., 0] - boxes[..., 0], points[..., 1] - boxes[..., 1],
                        boxes[..., 2] - points[..., 0], boxes[..., 3] - points[..., 1]), dim=-1)


def decode_boxes(box_logits: torch.Tensor, priors: torch.Tensor, reg_max: int,
                 max_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Box logits [..., N, 4 * (reg_max + 1)] and priors [N, 3] -> boxes [..., N, 4] in input pixels."""
    distances = distribution_to_distance(box_logits, reg_max) * priors[:, 2:3]
    return distance_to_box(priors[:, :2], distances, max_hw)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def pairwise_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """[N, 4] x [M, 4] -> [N, M] IoU."""
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / union.clamp(min=eps)


def aligned_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """IoU of matching rows of [..., 4] and [..., 4]; elementwise the same arithmetic as ``pairwise_iou``."""
    lt = torch.maximum(boxes1[..., :2], boxes2[..., :2])
    rb = torch.minimum(boxes1[..., 2:], boxes2[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    union = box_area(boxes1) + box_area(boxes2) - inter
    return inter / union.clamp(min=eps)


def aligned_giou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Generalized IoU of matching rows of [N, 4] and [N, 4]."""
    lt = torch.maximum(boxes1[:, :2], boxes2[:, :2])
    rb = torch.minimum(boxes1[:, 2:], boxes2[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    union = (box_area(boxes1) + box_area(boxes2) - inter).clamp(min=eps)
    iou = inter / union
    enclose = (torch.maximum(boxes1[:, 2:], boxes2[:, 2:]) - torch.minimum(boxes1[:, :2], boxes2[:, :2]))
    enclose_area = enclose.clamp(min=0).prod(dim=-1).clamp(min=eps)
    return iou - (enclose_area - union) / enclose_area
