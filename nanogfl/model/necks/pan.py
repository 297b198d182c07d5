"""The convolution-free PAN of the original NanoDet-m: 1x1 laterals, then bilinear top-down and bottom-up sums."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PAN(nn.Module):
    """Path aggregation without fusion convs (NanoDet-m).

    Each backbone level gets a 1x1 conv (with bias, no norm, no activation) to ``out_channels``; the top-down path
    adds each level, bilinearly upsampled x2, to the one below it; the bottom-up path then adds each level,
    bilinearly downsampled x0.5, to the one above it. As many outputs as inputs, at the same strides.

    >>> neck = PAN((116, 232, 464), 96)
    >>> [o.shape[1:] for o in neck([torch.zeros(1, 116, 40, 40), torch.zeros(1, 232, 20, 20),
    ...                             torch.zeros(1, 464, 10, 10)])]  # [96, 40, 40], [96, 20, 20], [96, 10, 10]
    """

    def __init__(self, in_channels: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        for conv in self.laterals:
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)

    @property
    def num_levels(self) -> int:
        return len(self.laterals)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        levels = [conv(f) for conv, f in zip(self.laterals, features)]
        for i in range(len(levels) - 1, 0, -1):
            levels[i - 1] = levels[i - 1] + F.interpolate(levels[i], scale_factor=2.0, mode="bilinear")
        for i in range(len(levels) - 1):
            levels[i + 1] = levels[i + 1] + F.interpolate(levels[i], scale_factor=0.5, mode="bilinear")
        return levels
