"""The feature pyramid of the server-size GFL detectors (mmdetection's FPN with ``add_extra_convs='on_output'``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FPN(nn.Module):
    """1x1 laterals (with bias) on C3..C5; top-down, each lateral gets the one above it upsampled (nearest) to its
    size; a 3x3 output conv per level; then ``extra_levels`` stride-2 3x3 convs, the first on P5's output, each
    next on the previous one (P6, P7), without an activation between them. No normalisation anywhere.

    >>> neck = FPN((512, 1024, 2048), 256)
    >>> [o.shape[2:] for o in neck([torch.zeros(1, 512, 16, 16), torch.zeros(1, 1024, 8, 8),
    ...                             torch.zeros(1, 2048, 4, 4)])]  # 16, 8, 4, 2, 1
    """

    def __init__(self, in_channels: tuple[int, ...], out_channels: int = 256, extra_levels: int = 2) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        self.fpn_convs.extend(nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)
                              for _ in range(extra_levels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def num_levels(self) -> int:
        return len(self.fpn_convs)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                                              mode="nearest")
        outputs = [conv(level) for conv, level in zip(self.fpn_convs, laterals)]
        for conv in self.fpn_convs[len(laterals):]:
            outputs.append(conv(outputs[-1]))
        return outputs
