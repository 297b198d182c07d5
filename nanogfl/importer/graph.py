"""The one graph form both readers produce: convolutions with their (BN-folded) weights, and every other
operator as a parameter-free node that only routes tensors. Torch-free (numpy only)."""
from __future__ import annotations

import math
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

    def conv_output_strides(self) -> dict[str, float] | None:
        """Convolution name -> stride of its output relative to the input image; None when some resize or
        pooling factor is unknown. (NanoDet-m's PAN feeds every head level from all three laterals: only the
        resolution tells the levels' towers apart.)"""
        stride: dict[str, float | None] = {blob: 1.0 for blob in self.inputs}
        result: dict[str, float] = {}
        for node in self.nodes:
            if not node.inputs:  # the Input layer of an ncnn graph
                continue
            incoming = next((stride[b] for b in node.inputs if b in stride), None)
            if node.conv is not None:
                if incoming is None:
                    return None
                produced: float | None = incoming * node.conv.stride[0]
                result[node.conv.name] = produced
            else:
                produced = None if incoming is None or node.spatial_scale is None else incoming * node.spatial_scale
            for blob in node.outputs:
                stride[blob] = produced
        return result

    def complexity(self, input_hw: tuple[int, int]) -> tuple[int, int]:
        """(weights, multiply-accumulates) of the convolutions at ``input_hw``: the size of a published file,
        counted the way ``nanogfl.model.complexity`` counts ours."""
        strides = self.conv_output_strides()
        if strides is None:
            raise ValueError(f"{self.source}: some resize or pooling factor is unknown; cannot count MACs")
        weights = macs = 0
        for conv in self.convs:
            weights += conv.weight.size + (conv.bias.size if conv.bias is not None else 0)
            rows = math.ceil(input_hw[0] / strides[conv.name])
            cols = math.ceil(input_hw[1] / strides[conv.name])
            macs += rows * cols * conv.weight.size
        return weights, macs
