"""The one graph form both readers produce: convolutions with their (BN-folded) weights, and every other
operator as a parameter-free node that only routes tensors. Torch-free (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ConvLayer:
    """A convolution with its weights in PyTorch layout: weight [out, in / groups, kh, kw], bias [out] or None.
    ``weight_name`` is where the weight came from (the ONNX initializer; the ncnn layer name)."""
    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    groups: int
    weight_name: str = ""

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1]) * self.groups

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def kind(self) -> str:
        if self.groups == 1:
            return "dense"
        if self.groups == self.in_channels == self.out_channels:
            return "depthwise"
        return f"grouped{self.groups}"

    def describe(self) -> str:
        """e.g. ``depthwise 5x5 s2 96->96``."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        stride = f"s{sh}" if sh == sw else f"s{sh}x{sw}"
        return f"{self.kind} {kh}x{kw} {stride} {self.in_channels}->{self.out_channels}"


@dataclass
class Node:
    """One operator. ``conv`` is set for convolutions; every other node carries no weights. ``spatial_scale`` is
    how much a non-conv node multiplies the stride of its input (pooling 2, x2 upsampling 0.5; None: unknown)."""
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    conv: ConvLayer | None = None
    spatial_scale: float | None = 1.0


@dataclass
class NetGraph:
    """Nodes in topological order. ``weight_format`` says how the weights were stored (fp32, fp16, ...);
    ``input_hw`` is set when the file fixes its input size (ONNX), None when any size runs (ncnn)."""
    source: str
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    weight_format: str = "fp32"
    input_hw: tuple[int, int] | None = None

    @property
    def convs(self) -> list[ConvLayer]:
        return [n.conv for n in self.nodes if n.conv is not None]

    def has_op(self, op_type: str) -> bool:
        return any(n.op_type == op_type for n in self.nodes)
