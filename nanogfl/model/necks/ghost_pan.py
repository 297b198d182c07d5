"""Ghost-PAN neck of NanoDet-Plus: a PAN whose fusion blocks are GhostNet bottlenecks."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBNAct, DepthwiseSeparable


class GhostModule(nn.Module):
    """1x1 conv to half the channels, a cheap 3x3 depthwise conv makes the other half (GhostNet)."""

    def __init__(self, in_channels: int, out_channels: int, act: bool = True) -> None:
        super().__init__()
        primary = math.ceil(out_channels / 2)
        self.primary = ConvBNAct(in_channels, primary, 1, act=act)
        self.cheap = ConvBNAct(primary, out_channels - primary, 3, groups=primary, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary(x)
        return torch.cat((x1, self.cheap(x1)), dim=1)


class GhostBottleneck(nn.Module):
    """ghost(in -> mid) -> ghost(mid -> out, linear) + shortcut(k x k dw + BN, 1x1 + BN)."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.ghost1 = GhostModule(in_channels, mid_channels, act=True)
        self.ghost2 = GhostModule(mid_channels, out_channels, act=False)
        self.shortcut = nn.Sequential(
            ConvBNAct(in_channels, in_channels, kernel_size, groups=in_channels, act=False),
            ConvBNAct(in_channels, out_channels, 1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ghost2(self.ghost1(x)) + self.shortcut(x)


class GhostPAN(nn.Module):
    """Reduce each input level to ``channels``, top-down then bottom-up fusion, plus one extra level (P6).

    Outputs ``len(in_channels) + 1`` maps at strides 8, 16, 32, 64 for backbone strides 8, 16, 32.
    """

    def __init__(self, in_channels: tuple[int, ...], channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        levels = len(in_channels)
        self.num_levels = levels + 1
        self.reduce = nn.ModuleList(ConvBNAct(c, channels, 1) for c in in_channels)
        self.top_down = nn.ModuleList(
            GhostBottleneck(2 * channels, channels, channels, kernel_size) for _ in range(levels - 1))
        self.downsample = nn.ModuleList(
            DepthwiseSeparable(channels, channels, kernel_size, 2) for _ in range(levels - 1))
        self.bottom_up = nn.ModuleList(
            GhostBottleneck(2 * channels, channels, channels, kernel_size) for _ in range(levels - 1))
        self.extra_from_input = DepthwiseSeparable(channels, channels, kernel_size, 2)
        self.extra_from_output = DepthwiseSeparable(channels, channels, kernel_size, 2)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        reduced = [layer(f) for layer, f in zip(self.reduce, features)]
        # top-down: inner[i] is the fused map at level i, built from the coarsest level downwards
        inner = [reduced[-1]]
        for block, lateral in zip(self.top_down, reversed(reduced[:-1])):
            upsampled = F.interpolate(inner[0], scale_factor=2.0, mode="bilinear", align_corners=False)
            inner.insert(0, block(torch.cat((upsampled, lateral), dim=1)))
        outputs = [inner[0]]
        for down, block, top_down_feature in zip(self.downsample, self.bottom_up, inner[1:]):
            outputs.append(block(torch.cat((down(outputs[-1]), top_down_feature), dim=1)))
        outputs.append(self.extra_from_input(reduced[-1]) + self.extra_from_output(outputs[-1]))
        return outputs
