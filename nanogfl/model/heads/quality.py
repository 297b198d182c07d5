"""GFLV2's Distribution-Guided Quality Predictor (DGQP): a box's localisation quality read off the shape of its
side distributions, built from ops that ONNX and ncnn both run (ncnn has no TopK layer).

Official reference: implus/GFocalV2, ``mmdet/models/dense_heads/gfocal_head.py`` (``reg_conf``): softmax over the
``reg_max + 1`` bins of each side (not detached), the top ``k`` probabilities per side and, with ``add_mean``,
their mean appended after them (side-major: side 0's top1..topk, mean, side 1 ...), then 1x1 conv
``4 * (k + 1) -> 64``, ReLU, 1x1 conv ``64 -> 1``, sigmoid; both convs normal(std 0.01), bias 0; one predictor
shared by every level; the class score is ``sigmoid(cls) * quality``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

JOINT_LOGIT_LIMIT = 100.0


def _top_k_columns(columns: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """The k largest of ``columns`` (same-shape tensors, compared element by element), largest first: k bubble
    passes of compare-exchanges from the back, each pass carrying the largest remaining value to its place."""
    values = list(columns)
    n = len(values)
    for place in range(min(k, n)):
        for j in range(n - 1, place, -1):
            values[j - 1], values[j] = torch.maximum(values[j - 1], values[j]), torch.minimum(values[j - 1], values[j])
    return values[:k]


def top_k_values(x: torch.Tensor, k: int, dim: int = -1) -> torch.Tensor:
    """The ``k`` largest values along ``dim``, sorted descending (size n -> k along ``dim``), equal to
    ``torch.topk(x, k, dim).values`` (ties included) but made of slices, ``torch.maximum``/``torch.minimum`` and one
    ``cat``, so it exports to ncnn. The gradient matches topk's except on exact ties, where it is shared."""
    dim = dim % x.dim()
    n = x.shape[dim]
    if not torch.jit.is_tracing() and not 1 <= k <= n:
        raise ValueError(f"top_k_values: k must be in [1, {n}] for a dim of size {n}, got {k}")
    lead = (slice(None),) * dim  # plain slicing: pnnx turns it into one ncnn Slice (torch.narrow it cannot convert)
    return torch.cat(_top_k_columns([x[lead + (slice(j, j + 1),)] for j in range(n)], k), dim=dim)


class DistributionQuality(nn.Module):
    """GFLV2's DGQP: side-major box-bin logits [B, N, 4 * (reg_max + 1)] -> quality logits [B, N, 1].

    Per side: softmax over the bins, the top ``topk`` probabilities (and their mean with ``add_mean``); the
    ``4 * (topk + add_mean)`` statistics go through 1x1 conv -> ReLU -> 1x1 conv to one logit (apply sigmoid, or
    logsigmoid, outside). The weights do not depend on ``reg_max``: 1,409 parameters with the defaults, laid out
    like the official ``reg_conf`` convs. The distribution is not detached (as in the official code): the quality
    loss also trains the box bins.

    The work runs channels-first, [B, 4, bins, N]: in ncnn every bin is then one contiguous row of N values, so the
    compare-exchanges are plain vector ops and the statistics come out as the [20, N] input of a 1x1 convolution
    (in ncnn about 3x faster than slicing the columns of a [4N, bins] blob and a Linear on [N, 20]).

    >>> dgqp = DistributionQuality(reg_max=7)
    >>> dgqp(torch.zeros(1, 3598, 32)).shape  # [1, 3598, 1]
    """

    def __init__(self, reg_max: int = 7, topk: int = 4, channels: int = 64, add_mean: bool = True) -> None:
        super().__init__()
        if not 1 <= topk <= reg_max + 1:
            raise ValueError(f"DistributionQuality: topk must be in [1, reg_max + 1 = {reg_max + 1}], got {topk}")
        self.reg_max = reg_max
        self.topk = topk
        self.add_mean = add_mean
        self.in_channels = 4 * (topk + int(add_mean))
        self.conv1 = nn.Conv2d(self.in_channels, channels, 1)
        self.conv2 = nn.Conv2d(channels, 1, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official init: normal(std 0.01) weights, zero biases."""
        for conv in (self.conv1, self.conv2):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def statistics(self, box_logits: torch.Tensor) -> torch.Tensor:
        """[B, N, 4 * (reg_max + 1)] -> [B, 4 * (topk + add_mean), N]: channel ``side * (topk + 1) + j`` is the
        side's j-th largest bin probability, j = topk their mean (side-major, as in the official code)."""
        bins = self.reg_max + 1
        if not torch.jit.is_tracing() and box_logits.shape[-1] != 4 * bins:
            raise ValueError(f"DistributionQuality(reg_max={self.reg_max}) takes {4 * bins} box columns, "
                             f"got {box_logits.shape[-1]}")
        batch = box_logits.shape[0]
        # [B, 4, bins, N] in one permute; in ncnn each bin of each side is then a contiguous row of N values
        probs = F.softmax(box_logits.reshape(batch, -1, 4, bins).permute(0, 2, 3, 1), dim=2)
        rows = _top_k_columns([probs[:, :, j:j + 1] for j in range(bins)], self.topk)
        if self.add_mean:  # a sum of rows: in ncnn a few BinaryOps beat a Reduction over them
            total = rows[0]
            for row in rows[1:]:
                total = total + row
            rows.append(total * (1.0 / self.topk))
        return torch.cat(rows, dim=2).reshape(batch, self.in_channels, -1)

    def forward(self, box_logits: torch.Tensor) -> torch.Tensor:
        """Quality logits [B, N, 1] (before the sigmoid)."""
        stats = self.statistics(box_logits).unsqueeze(-1)  # [B, C, N, 1]: the 1x1 convs run as one GEMM each
        return self.conv2(F.relu(self.conv1(stats))).reshape(box_logits.shape[0], -1, 1)


def joint_score_logits(cls_logits: torch.Tensor, quality_logits: torch.Tensor) -> torch.Tensor:
    """``logit(sigmoid(cls) * sigmoid(quality))``, stable for any finite input and clamped to +-100, so a
    BCE-with-logits loss (QFL) or a logits-based assigner can work on GFLV2's joint score. ``quality_logits``
    broadcasts ([B, N, 1] against [B, N, C]); computed in float32.

    With a = cls, b = quality: log p = logsigmoid(a) + logsigmoid(b) and, without cancellation,
    1 - p = sigmoid(-a) + sigmoid(a) * sigmoid(-b), so log(1 - p) = logaddexp(logsigmoid(-a),
    logsigmoid(a) + logsigmoid(-b)): no log(0), finite gradients even where p rounds to 1.
    """
    a, b = cls_logits.float(), quality_logits.float()
    log_cls = F.logsigmoid(a)
    log_p = log_cls + F.logsigmoid(b)
    log_1mp = torch.logaddexp(F.logsigmoid(-a), log_cls + F.logsigmoid(-b))
    return (log_p - log_1mp).clamp(-JOINT_LOGIT_LIMIT, JOINT_LOGIT_LIMIT)
