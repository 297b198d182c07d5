"""Read an ncnn model (.param text + .bin weights) into a :class:`NetGraph`. Torch-free.

Only convolutions carry weights in the graphs we import; every other layer type must be one we know to be
parameter-free, because the .bin file is a bare concatenation of weights in layer order and an unknown layer
would make us read the following weights from the wrong offset.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .graph import ConvLayer, NetGraph, Node

PARAM_MAGIC = 7767517
TAG_FP32 = 0x00000000
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
CONV_TYPES = ("Convolution", "ConvolutionDepthWise")
PARAMETER_FREE_TYPES = frozenset((
    "Input", "Split", "Concat", "Slice", "ShuffleChannel", "Interp", "BinaryOp", "Eltwise", "Pooling", "ReLU",
    "Sigmoid", "Reshape", "Permute", "Flatten", "Crop", "Padding", "UnaryOp", "Swish", "HardSigmoid",
    "HardSwish", "Clip", "Noop", "Dropout", "Softmax", "TanH", "Mish", "ELU", "Squeeze", "ExpandDims",
))


class NcnnFormatError(UserError):
    pass


def _parse_value(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def parse_layer_params(tokens: list[str], where: str) -> dict[int, object]:
    """``k=v`` pairs; a key <= -23300 holds the array for key ``-23300 - k`` written as ``count,v1,v2...``."""
    params: dict[int, object] = {}
    for token in tokens:
        key_text, sep, value = token.partition("=")
        try:
            key = int(key_text)
            if not sep:
                raise ValueError
            if key <= -23300:
                items = value.split(",")
                params[-23300 - key] = [_parse_value(v) for v in items[1:]]
            else:
                params[key] = _parse_value(value)
        except ValueError:
            raise NcnnFormatError(f"{where}: bad layer parameter {token!r}") from None
    return params


def parse_param(path: Path) -> list[tuple[str, str, list[str], list[str], dict[int, object]]]:
    """(type, name, bottoms, tops, params) for each layer of a text .param file."""
    try:
        lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise NcnnFormatError(f"{path}: not a text ncnn .param file (binary .param.bin is not supported)") from None
    if not lines or lines[0] != [str(PARAM_MAGIC)]:
        raise NcnnFormatError(f"{path}: not an ncnn .param file (first line must be {PARAM_MAGIC})")
    try:
        layer_count = int(lines[1][0])
    except (IndexError, ValueError):
        raise NcnnFormatError(f"{path}: line 2 must hold the layer and blob counts") from None
    layers = []
    for number, tokens in enumerate(lines[2:], start=3):
        where = f"{path}:{number}"
        try:
            layer_type, name, n_in, n_out = tokens[0], tokens[1], int(tokens[2]), int(tokens[3])
        except (IndexError, ValueError):
            raise NcnnFormatError(f"{where}: malformed layer line") from None
        bottoms, tops = tokens[4:4 + n_in], tokens[4 + n_in:4 + n_in + n_out]
        if len(tops) != n_out:
            raise NcnnFormatError(f"{where}: layer {name!r} lists fewer blobs than it declares")
        layers.append((layer_type, name, bottoms, tops, parse_layer_params(tokens[4 + n_in + n_out:], where)))
    if len(layers) != layer_count:
        raise NcnnFormatError(f"{path}: header says {layer_count} layers, the file has {len(layers)}")
    return layers


class _BinReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.offset = 0
        self.formats: set[str] = set()

    def _take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.data):
            raise NcnnFormatError(f"{self.path}: file ends inside {what}; the .bin does not belong to this .param")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def tagged(self, count: int, what: str) -> np.ndarray:
        """A weight blob: 4-byte storage tag, then the values."""
        tag = int.from_bytes(self._take(4, what), "little")
        if tag == TAG_FP32:
            self.formats.add("fp32")
            return np.frombuffer(self._take(4 * count, what), "<f4").astype(np.float32)
        if tag == TAG_FP16:
            self.formats.add("fp16")
            padded = (2 * count + 3) // 4 * 4
            return np.frombuffer(self._take(padded, what)[:2 * count], "<f2").astype(np.float32)
        kind = "int8" if tag == TAG_INT8 else "quantised"
        raise NcnnFormatError(f"{self.path}: {what} is stored as {kind} (tag 0x{tag:08X}); only fp32/fp16 "
                              "ncnn models can be imported exactly — use the fp16 or fp32 model")

    def raw(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self._take(4 * count, what), "<f4").astype(np.float32)


def _conv_layer(layer_type: str, name: str, params: dict[int, object], weights: _BinReader,
                where: str) -> ConvLayer:
    if params.get(8, 0):
        raise NcnnFormatError(f"{where}: layer {name!r} is int8-quantised (int8_scale_term); only fp32/fp16 "
                              "ncnn models can be imported exactly — use the fp16 or fp32 model")
    if params.get(19, 0):
        raise NcnnFormatError(f"{where}: layer {name!r} takes its weights as an input blob (dynamic weight)")
    out_channels = int(params.get(0, 0))
    kernel_w = int(params.get(1, 0))
    kernel_h = int(params.get(11, kernel_w))
    dilation_w = int(params.get(2, 1))
    dilation_h = int(params.get(12, dilation_w))
    stride_w = int(params.get(3, 1))
    stride_h = int(params.get(13, stride_w))
    weight_size = int(params.get(6, 0))
    groups = int(params.get(7, 1)) if layer_type == "ConvolutionDepthWise" else 1
    if dilation_w != 1 or dilation_h != 1:
        raise NcnnFormatError(f"{where}: layer {name!r} is dilated; NanoDet-Plus has no dilated convolution")
    per_input = out_channels * kernel_h * kernel_w
    if per_input <= 0 or weight_size % per_input or out_channels % groups:
        raise NcnnFormatError(f"{where}: layer {name!r}: weight size {weight_size} does not fit "
                              f"{out_channels} outputs of {kernel_h}x{kernel_w}")
    in_per_group = weight_size // per_input
    weight = weights.tagged(weight_size, f"the weights of layer {name!r}")
    bias = weights.raw(out_channels, f"the bias of layer {name!r}") if params.get(5, 0) else None
    return ConvLayer(name, weight.reshape(out_channels, in_per_group, kernel_h, kernel_w), bias,
                     (stride_h, stride_w), groups, weight_name=name)


def _spatial_scale(layer_type: str, params: dict[int, object]) -> float | None:
    if layer_type == "Pooling":
        return None if params.get(4, 0) else float(params.get(2, 1))  # 4: global pooling; 2: stride
    if layer_type == "Interp":
        if params.get(3, 0) or params.get(4, 0):  # a fixed output size
            return None
        height_scale, width_scale = float(params.get(1, 1.0)), float(params.get(2, 1.0))
        return 1.0 / height_scale if height_scale == width_scale and height_scale > 0 else None
    return 1.0


def read_ncnn(param_path: str | Path, bin_path: str | Path | None = None) -> NetGraph:
    """Parse ``model.param`` and its weights (default: ``model.bin`` beside it)."""
    param_path = Path(param_path)
    bin_path = Path(bin_path) if bin_path else param_path.with_suffix(".bin")
    for path in (param_path, bin_path):
        if not path.is_file():
            raise NcnnFormatError(f"ncnn file not found: {path}")
    weights = _BinReader(bin_path)
    nodes, inputs = [], []
    for layer_type, name, bottoms, tops, params in parse_param(param_path):
        where = str(param_path)
        if layer_type in CONV_TYPES:
            conv = _conv_layer(layer_type, name, params, weights, where)
            nodes.append(Node(name, layer_type, bottoms[:1], tops, conv))
            continue
        if layer_type not in PARAMETER_FREE_TYPES:
            raise NcnnFormatError(f"{where}: layer {name!r} has type {layer_type}, which a NanoDet-Plus deploy "
                                  "graph does not contain (BatchNorm must be folded; no int8/other weights)")
        if layer_type == "Input":
            inputs += tops
        nodes.append(Node(name, layer_type, bottoms, tops, spatial_scale=_spatial_scale(layer_type, params)))
    if weights.offset != len(weights.data):
        raise NcnnFormatError(f"{bin_path}: {len(weights.data) - weights.offset} bytes left after the last "
                              "layer's weights; the .bin does not belong to this .param")
    consumed = {blob for node in nodes for blob in node.inputs}
    outputs = [blob for node in nodes for blob in node.outputs if blob not in consumed]
    return NetGraph(str(param_path), nodes, inputs, outputs, "+".join(sorted(weights.formats)) or "none")
