"""The one deploy-graph constructor: what export, ``nanogfl info``, the torch backend and the importer run."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .detector import GFLDetector
from .fuse import fuse_batchnorm


class DeployModel(nn.Module):
    """The exported graph: one tensor [B, N, C + 4 * (reg_max + 1)] whose class columns are scores in 0..1
    (sigmoid, or GFLV2's joint score), then the box-bin logits."""

    def __init__(self, detector: GFLDetector) -> None:
        super().__init__()
        self.detector = detector
        self.num_classes = detector.num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.detector(images, probabilities=True)


def deploy_model(detector: GFLDetector, fold_batchnorm: bool = True, inplace: bool = False) -> DeployModel:
    """The deploy graph of ``detector`` in eval mode: training-only parts dropped, BatchNorm folded into the
    convolutions (unless ``fold_batchnorm`` is False: the reference a folded export is checked against), the
    output activation applied. A copy unless ``inplace`` (then ``detector`` itself is changed)."""
    model = detector if inplace else copy.deepcopy(detector)
    model.drop_aux()
    if fold_batchnorm:
        fuse_batchnorm(model, inplace=True)
    return DeployModel(model).eval()
