"""Small building blocks shared by the backbone, neck and heads."""
from __future__ import annotations

import torch
from torch import nn

LEAKY_SLOPE = 0.1


def activation(name: str = "leaky_relu") -> nn.Module:
    """NanoDet's LeakyReLU(0.1), or ReLU (the server-size GFL detectors)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(LEAKY_SLOPE, inplace=True)


def batchnorm_eval(module: nn.Module) -> None:
    """Every BatchNorm inside ``module`` to eval mode: it normalises with its running statistics, unchanged."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class DepthwiseConv2d(nn.Conv2d):
    """A grouped (depthwise) conv that stays float32 under CPU bf16 autocast: oneDNN's bf16 depthwise kernels are
    slower than its float32 ones (measured: 5x5 at 40x40, forward + backward, 1.7x slower), unlike its dense
    convs. Same parameters as ``nn.Conv2d``; outside CPU autocast it is ``nn.Conv2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class ConvBNAct(nn.Sequential):
    """Bias-free conv, BatchNorm, optional LeakyReLU(0.1). ``groups=in_channels`` makes it depthwise."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [
            (DepthwiseConv2d if groups > 1 else nn.Conv2d)(in_channels, out_channels, kernel_size, stride,
                                                            kernel_size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if act:
            layers.append(activation())
        super().__init__(*layers)


class DepthwiseSeparable(nn.Sequential):
    """k x k depthwise conv + BN + act, then 1x1 pointwise conv + BN + act (NanoDet's DepthwiseConvModule)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(
            ConvBNAct(in_channels, in_channels, kernel_size, stride, groups=in_channels),
            ConvBNAct(in_channels, out_channels, 1),
        )


class Scale(nn.Module):
    """A learnable scalar multiplier (per-level scale on box logits)."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale
