"""Detection heads: the deployable per-level depthwise GFL head and the training-only aux head."""
from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBNAct, activation

PRIOR_PROB_BIAS = -4.595  # log(0.01 / 0.99): initial class probability 0.01


def flatten_levels(outputs: list[torch.Tensor]) -> torch.Tensor:
    """[B, C, H_l, W_l] per level -> [B, N, C], levels in order, row-major inside a level."""
    return torch.cat([o.flatten(start_dim=2) for o in outputs], dim=2).permute(0, 2, 1)


class GFLHead(nn.Module):
    """One independent tower per level: ``stacked_convs`` x (k x k dw + BN + act, 1x1 + BN + act), then a
    1x1 conv with bias to ``num_classes + 4 * (reg_max + 1)`` channels (class logits, then box bins)."""

    def __init__(self, num_classes: int, in_channels: int, num_levels: int = 4, reg_max: int = 7,
                 stacked_convs: int = 2, kernel_size: int = 5) -> None:
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

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Returns raw predictions [B, N, num_classes + 4 * (reg_max + 1)]."""
        return flatten_levels([pred(tower(f)) for f, tower, pred in zip(features, self.towers, self.predictors)])


class Scale(nn.Module):
    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _conv_gn_act(in_channels: int, out_channels: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.GroupNorm(groups, out_channels), activation())


class AuxHead(nn.Module):
    """Assign-guidance head (training only): shared across levels, separate cls/reg towers of 3x3 conv +
    GroupNorm + act, a learnable scale per level on the box branch."""

    def __init__(self, num_classes: int, in_channels: int, num_levels: int = 4, reg_max: int = 7,
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
