"""NanoDet-Plus's assign-guidance head (training only): shared over levels, GroupNorm towers."""
from __future__ import annotations

import torch
from torch import nn

from ..layers import Scale, activation
from .common import PRIOR_PROB_BIAS, flatten_levels


def _conv_gn_act(in_channels: int, out_channels: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.GroupNorm(groups, out_channels), activation())


class SimpleConvHead(nn.Module):
    """Shared across levels: separate cls/reg towers of ``stacked_convs`` x (3x3 conv + GroupNorm + act), a 3x3
    output conv each, and a learnable scale per level on the box logits."""

    def __init__(self, num_classes: int, in_channels: int, num_levels: int, reg_max: int = 7,
                 stacked_convs: int = 4, gn_groups: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls_convs = nn.Sequential(*[_conv_gn_act(in_channels, in_channels, gn_groups)
                                         for _ in range(stacked_convs)])
        self.reg_convs = nn.Sequential(*[_conv_gn_act(in_channels, in_channels, gn_groups)
                                         for _ in range(stacked_convs)])
        self.cls_out = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.reg_out = nn.Conv2d(in_channels, 4 * (reg_max + 1), 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
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

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        outputs = []
        for f, scale in zip(features, self.scales):
            cls = self.cls_out(self.cls_convs(f))
            reg = scale(self.reg_out(self.reg_convs(f)))
            outputs.append(torch.cat((cls, reg), dim=1))
        return flatten_levels(outputs)
