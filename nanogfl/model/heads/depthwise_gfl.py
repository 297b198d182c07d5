"""The deployable NanoDet-Plus head: an independent depthwise tower per level, shared by classes and boxes."""
from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct
from .common import PRIOR_PROB_BIAS, class_scores, flatten_levels


class DepthwiseGFLHead(nn.Module):
    """One tower per level: ``stacked_convs`` x (k x k dw + BN + act, 1x1 + BN + act), then a 1x1 conv with bias
    to ``num_classes + 4 * (reg_max + 1)`` channels (class logits, then side-major box-bin logits). The same
    head with 5x5 kernels is NanoDet-Plus's, with 3x3 kernels NanoDet-m's. ``quality`` (GFLV2's
    DistributionQuality, shared by all levels) turns the class score into the joint score.

    >>> head = DepthwiseGFLHead(num_classes=80, in_channels=96, num_levels=2)
    >>> levels = [torch.zeros(1, 96, 40, 40), torch.zeros(1, 96, 20, 20)]
    >>> head(levels).shape  # [1, 1600 + 400, 80 + 4 * 8]
    """

    def __init__(self, num_classes: int, in_channels: int, num_levels: int, reg_max: int = 7,
                 stacked_convs: int = 2, kernel_size: int = 5, quality: nn.Module | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.towers = nn.ModuleList()
        for _ in range(num_levels):
            layers: list[nn.Module] = []
            for _ in range(stacked_convs):
                layers += [ConvBNAct(in_channels, in_channels, kernel_size, groups=in_channels),
                           ConvBNAct(in_channels, in_channels, 1)]
            self.towers.append(nn.Sequential(*layers))
        self.predictors = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes + 4 * (reg_max + 1), 1) for _ in range(num_levels))
        self.quality = quality
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for tower in self.towers:
            for m in tower.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=0.01)
        self.reset_predictors()

    def reset_predictors(self) -> None:
        for conv in self.predictors:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.constant_(conv.bias, PRIOR_PROB_BIAS)

    def forward(self, features: list[torch.Tensor], probabilities: bool = False) -> torch.Tensor:
        """Predictions [B, N, num_classes + 4 * (reg_max + 1)]: class logits (class probabilities when
        ``probabilities``), then box-bin logits."""
        preds = flatten_levels([pred(tower(f)) for f, tower, pred in zip(features, self.towers, self.predictors)])
        return class_scores(preds, self.num_classes, self.quality, probabilities)
