"""The GFL head shared across levels (mmdetection's ``GFLHead``; NanoDet-Plus's aux head is the same design)."""
from __future__ import annotations

import torch
from torch import nn

from ..layers import Scale, activation
from .common import PRIOR_PROB_BIAS, class_scores, flatten_levels


def _conv_gn_act(in_channels: int, out_channels: int, groups: int, act: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.GroupNorm(groups, out_channels), activation(act))


class SharedGFLHead(nn.Module):
    """One head for every level: separate cls and reg towers of ``stacked_convs`` x (3x3 conv without bias,
    GroupNorm, activation), a 3x3 output conv each (``cls_out``: class logits, ``reg_out``: 4 x (reg_max + 1)
    side-major box-bin logits), and a learnable scale per level (init 1.0) on the box logits.

    The server-size GFL detectors use it with ReLU, 256 channels, 4 convs, reg_max 16 on P3..P7; NanoDet-Plus's
    training-only aux head with LeakyReLU on the dual neck. ``quality`` (GFLV2's predictor) makes the class
    score the joint score, as in ``DepthwiseGFLHead``.

    >>> head = SharedGFLHead(num_classes=80, in_channels=256, num_levels=5, reg_max=16, act="relu")
    """

    def __init__(self, num_classes: int, in_channels: int, num_levels: int, reg_max: int = 7,
                 stacked_convs: int = 4, gn_groups: int = 32, act: str = "leaky_relu",
                 quality: nn.Module | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.cls_convs = nn.Sequential(*[_conv_gn_act(in_channels, in_channels, gn_groups, act)
                                         for _ in range(stacked_convs)])
        self.reg_convs = nn.Sequential(*[_conv_gn_act(in_channels, in_channels, gn_groups, act)
                                         for _ in range(stacked_convs)])
        self.cls_out = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.reg_out = nn.Conv2d(in_channels, 4 * (reg_max + 1), 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        self.quality = quality
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.reset_predictors()

    def reset_predictors(self) -> None:
        for conv in (self.cls_out, self.reg_out):
            nn.init.normal_(conv.weight, std=0.01)
        nn.init.constant_(self.cls_out.bias, PRIOR_PROB_BIAS)
        nn.init.zeros_(self.reg_out.bias)

    def forward(self, features: list[torch.Tensor], probabilities: bool = False) -> torch.Tensor:
        """Predictions [B, N, num_classes + 4 * (reg_max + 1)] over the levels: class logits (class scores when
        ``probabilities``), then box-bin logits."""
        outputs = []
        for f, scale in zip(features, self.scales):
            cls = self.cls_out(self.cls_convs(f))
            reg = scale(self.reg_out(self.reg_convs(f)))
            outputs.append(torch.cat((cls, reg), dim=1))
        return class_scores(flatten_levels(outputs), self.num_classes, self.quality, probabilities)
