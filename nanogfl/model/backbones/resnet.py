"""ResNet / ResNeXt backbones as mmdetection's GFL detectors use them: "pytorch" style (stride on the 3x3 conv),
BatchNorm with frozen statistics, the stem and first stage frozen; C3..C5 out.

Module names follow the torchvision / mmdetection layout (``conv1``, ``bn1``, ``layer1.0.conv2``,
``layer1.0.downsample.0``), so their state dicts map key for key. The first convolution takes BGR input (the
order nanogfl feeds every model); RGB weights are flipped on import (``model/server_weights.py``).
"""
from __future__ import annotations

from torch import nn

from ..layers import batchnorm_eval

BLOCKS_PER_STAGE: dict[int, tuple[int, int, int, int]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
EXPANSION = 4
STEM_CHANNELS = 64


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, groups) -> 1x1 x4, each with BatchNorm; ReLU after the residual sum."""

    CONV_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))  # fused for deployment (model/fuse.py)

    def __init__(self, in_channels: int, planes: int, stride: int, groups: int, width_per_group: int) -> None:
        super().__init__()
        width = planes * width_per_group // 64 * groups
        out_channels = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """ResNet-``depth`` (50, 101, 152); ``groups`` > 1 makes it ResNeXt (32 groups of width 4: X-101-32x4d).

    ``frozen_stages`` (1: the stem and ``layer1``) get no gradient and keep eval mode; ``norm_eval`` keeps every
    BatchNorm in eval mode while training (statistics and the frozen ones' affine terms as loaded).

    >>> backbone = ResNet(50)
    >>> [f.shape[1] for f in backbone(torch.zeros(1, 3, 64, 64))]  # [512, 1024, 2048] at strides 8, 16, 32
    """

    CONV_BN_PAIRS = (("conv1", "bn1"),)

    def __init__(self, depth: int = 50, groups: int = 1, width_per_group: int = 64, frozen_stages: int = 1,
                 norm_eval: bool = True) -> None:
        super().__init__()
        if depth not in BLOCKS_PER_STAGE:
            raise ValueError(f"ResNet depth must be one of {sorted(BLOCKS_PER_STAGE)}, got {depth}")
        if not 0 <= frozen_stages <= 4:
            raise ValueError(f"frozen_stages must be in 0..4, got {frozen_stages}")
        self.depth = depth
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = STEM_CHANNELS
        for index, blocks in enumerate(BLOCKS_PER_STAGE[depth]):
            planes = 64 * 2 ** index
            stage = []
            for block in range(blocks):
                stride = 2 if block == 0 and index > 0 else 1
                stage.append(Bottleneck(channels, planes, stride, groups, width_per_group))
                channels = planes * EXPANSION
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        self.out_channels = tuple(64 * 2 ** i * EXPANSION for i in (1, 2, 3))
        self.reset_parameters()
        self._freeze()

    def reset_parameters(self) -> None:
        """He initialisation of the convolutions, BatchNorm at identity, the last BatchNorm of every block at zero
        (each block starts as the identity), as mmdetection initialises a ResNet without pretrained weights."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def frozen_modules(self) -> list[nn.Module]:
        stages = [nn.ModuleList([self.conv1, self.bn1])] if self.frozen_stages else []
        return stages + [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]

    def _freeze(self) -> None:
        for module in self.frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> "ResNet":
        super().train(mode)
        if mode:
            for module in self.frozen_modules():
                module.eval()
            if self.norm_eval:
                batchnorm_eval(self)
        return self

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]
