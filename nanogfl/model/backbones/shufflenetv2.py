"""ShuffleNetV2 backbone (Ma et al., 2018) as used by NanoDet-Plus: LeakyReLU, no final 1x1 conv."""
from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct

# stage output channels per width multiplier
SHUFFLENET_V2_CHANNELS: dict[float, tuple[int, int, int]] = {
    0.5: (48, 96, 192),
    1.0: (116, 232, 464),
    1.5: (176, 352, 704),
    2.0: (244, 488, 976),
}
STAGE_REPEATS = (4, 8, 4)
STEM_CHANNELS = 24


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    # view/transpose/view instead of F.channel_shuffle, which ONNX export and pnnx do not handle.
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width)
    return x.transpose(1, 2).contiguous().view(batch, channels, height, width)


class ShuffleUnit(nn.Module):
    """One ShuffleNetV2 unit. Stride 1 splits the channels; stride 2 runs both branches on the input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = out_channels // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, act=False),
                ConvBNAct(in_channels, branch, 1),
            )
        else:
            self.branch1 = None
        right_in = in_channels if stride > 1 else branch
        self.branch2 = nn.Sequential(
            ConvBNAct(right_in, branch, 1),
            ConvBNAct(branch, branch, 3, stride, groups=branch, act=False),
            ConvBNAct(branch, branch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            left, right = x.chunk(2, dim=1)
            out = torch.cat((left, self.branch2(right)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """Returns the outputs of stages 2, 3 and 4 (strides 8, 16, 32)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        if width not in SHUFFLENET_V2_CHANNELS:
            raise ValueError(f"ShuffleNetV2 width must be one of {sorted(SHUFFLENET_V2_CHANNELS)}, got {width}")
        self.out_channels = SHUFFLENET_V2_CHANNELS[width]
        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        in_channels = STEM_CHANNELS
        for repeats, out_channels in zip(STAGE_REPEATS, self.out_channels):
            units = [ShuffleUnit(in_channels, out_channels, 2)]
            units += [ShuffleUnit(out_channels, out_channels, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            in_channels = out_channels
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.stem(x))
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs
