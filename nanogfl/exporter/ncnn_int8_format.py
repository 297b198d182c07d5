"""Reading an fp32/fp16 ncnn model's convolution weights and writing ncnn's int8 model format, as ncnn2int8 does.

The .bin is the weights of the layers in .param order. For Convolution / ConvolutionDepthWise (src/layer/
convolution*.cpp ``load_model``): ``weight_data`` (4-byte tag, then the data: tag 0 fp32, 0x01306B47 fp16,
0x000D4B38 int8 padded to 4 bytes), ``bias_data`` (raw fp32, when 5=1), and, when the param's ``8=``
int8_scale_term is set, ``weight_data_int8_scales`` (raw fp32: one per output channel for Convolution, one per
group for ConvolutionDepthWise with 8=1) and ``bottom_blob_int8_scales`` (one raw fp32). ncnn's scales multiply:
``int8 = round(x * scale)`` clamped to [-127, 127]; ncnn computes such layers in int8 and dequantises to fp32.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import ExportError

PARAM_MAGIC = "7767517"
TAG_FP32, TAG_FP16, TAG_INT8 = 0, 0x01306B47, 0x000D4B38
WEIGHTED_TYPES = ("Convolution", "ConvolutionDepthWise")
INT8_SCALE_TERM = {"Convolution": 2, "ConvolutionDepthWise": 1}  # what ncnn2int8 writes


@dataclass
class NcnnLayer:
    """One .param line: type, name, input/output blob names and the ``key=value`` tokens in file order."""
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: list[tuple[str, str]]
    weight: np.ndarray | None = None  # float32, Convolution / ConvolutionDepthWise only
    bias: np.ndarray | None = None

    def param(self, key: str, default: str = "0") -> str:
        return next((value for k, value in self.params if k == key), default)

    @property
    def channel_groups(self) -> int:
        """How many weight scales ncnn reads: output channels (Convolution) or groups (depthwise)."""
        return int(self.param("0") if self.type == "Convolution" else self.param("7", "1"))


@dataclass
class NcnnModel:
    layers: list[NcnnLayer] = field(default_factory=list)
    blob_count: int = 0

    @property
    def weighted(self) -> list[NcnnLayer]:
        return [layer for layer in self.layers if layer.type in WEIGHTED_TYPES]


def read_ncnn(param_path: Path) -> NcnnModel:
    """Parse ``param_path`` and the .bin beside it (fp32 or fp16 weights, no int8)."""
    lines = param_path.read_text().splitlines()
    if not lines or lines[0].strip() != PARAM_MAGIC:
        raise ExportError(f"{param_path}: not an ncnn .param (no 7767517 magic line)")
    model = NcnnModel(blob_count=int(lines[1].split()[1]))
    for line in lines[2:]:
        tokens = line.split()
        if not tokens:
            continue
        inputs, outputs = int(tokens[2]), int(tokens[3])
        blobs_end = 4 + inputs + outputs
        params = [tuple(token.split("=", 1)) for token in tokens[blobs_end:]]
        model.layers.append(NcnnLayer(tokens[0], tokens[1], tokens[4:4 + inputs], tokens[4 + inputs:blobs_end],
                                      params))  # type: ignore[arg-type]
    data = param_path.with_suffix(".bin").read_bytes()
    offset = 0
    for layer in model.weighted:
        if layer.param("8") != "0":
            raise ExportError(f"{param_path}: layer {layer.name} is already int8")
        size = int(layer.param("6"))
        (tag,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if tag == TAG_FP32:
            layer.weight = np.frombuffer(data, "<f4", size, offset).copy()
            offset += 4 * size
        elif tag == TAG_FP16:
            layer.weight = np.frombuffer(data, "<f2", size, offset).astype(np.float32)
            offset += (2 * size + 3) // 4 * 4
        else:
            raise ExportError(f"{param_path}: layer {layer.name} has weights of unsupported storage tag {tag:#x}")
        if layer.param("5") == "1":
            count = int(layer.param("0"))
            layer.bias = np.frombuffer(data, "<f4", count, offset).copy()
            offset += 4 * count
    if offset != len(data):
        raise ExportError(f"{param_path.with_suffix('.bin')}: {len(data)} bytes, the .param describes {offset}")
    return model


def weight_scales(layer: NcnnLayer) -> np.ndarray:
    """127 / max |w| per output channel (per group for depthwise), 1 for an all-zero channel."""
    assert layer.weight is not None
    absmax = np.abs(layer.weight.reshape(layer.channel_groups, -1)).max(axis=1)
    return np.where(absmax > 0, 127.0 / np.maximum(absmax, 1e-30), 1.0).astype(np.float32)


def quantize_weight(layer: NcnnLayer, scales: np.ndarray) -> np.ndarray:
    assert layer.weight is not None
    scaled = layer.weight.reshape(layer.channel_groups, -1) * scales[:, None]
    return np.clip(np.round(scaled), -127, 127).astype(np.int8).reshape(-1)


def write_ncnn(model: NcnnModel, param_path: Path, input_scales: dict[str, float]) -> tuple[Path, Path]:
    """Write ``model`` as ncnn .param/.bin: the layers named in ``input_scales`` (name -> scale of their input
    blob) with int8 weights and int8 arithmetic, the other weighted layers with fp32 weights."""
    unknown = sorted(set(input_scales) - {layer.name for layer in model.weighted})
    if unknown:
        raise ExportError(f"no Convolution layer named {unknown[0]!r} to quantise")
    lines = [PARAM_MAGIC, f"{len(model.layers)} {model.blob_count}"]
    chunks: list[bytes] = []
    for layer in model.layers:
        params = list(layer.params)
        if layer.name in input_scales:
            params = [(k, v) for k, v in params if k != "8"] + [("8", str(INT8_SCALE_TERM[layer.type]))]
        tokens = [layer.type, layer.name, str(len(layer.inputs)), str(len(layer.outputs)), *layer.inputs,
                  *layer.outputs, *(f"{k}={v}" for k, v in params)]
        lines.append(f"{tokens[0]:<24} {tokens[1]:<24} " + " ".join(tokens[2:]))
        if layer.weight is None:
            continue
        if layer.name in input_scales:
            scales = weight_scales(layer)
            quantized = quantize_weight(layer, scales).tobytes()
            chunks += [struct.pack("<I", TAG_INT8), quantized, b"\0" * (-len(quantized) % 4)]
        else:
            chunks += [struct.pack("<I", TAG_FP32), layer.weight.astype("<f4").tobytes()]
        if layer.bias is not None:
            chunks.append(layer.bias.astype("<f4").tobytes())
        if layer.name in input_scales:
            chunks += [scales.astype("<f4").tobytes(), np.float32(input_scales[layer.name]).astype("<f4").tobytes()]
    bin_path = param_path.with_suffix(".bin")
    bin_path.write_bytes(b"".join(chunks))
    param_path.write_text("\n".join(lines) + "\n")
    return param_path, bin_path
