"""Read an ONNX model into a :class:`NetGraph`: Conv weights from initializers/Constant nodes, with a
following BatchNormalization folded into its Conv. Needs the ``onnx`` package (not torch)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError
from .graph import ConvLayer, NetGraph, Node

if TYPE_CHECKING:
    import onnx

# operators that hold learned weights we would silently drop if we treated them as routing
UNSUPPORTED_WEIGHTED_OPS = frozenset((
    "Gemm", "MatMul", "ConvTranspose", "ConvInteger", "QLinearConv", "QLinearMatMul", "DequantizeLinear",
    "InstanceNormalization", "LayerNormalization", "GroupNormalization", "PRelu", "LSTM", "GRU", "RNN",
))


class OnnxFormatError(UserError):
    pass


def _load(source: "str | Path | bytes | onnx.ModelProto") -> tuple["onnx.ModelProto", str]:
    try:
        import onnx
    except ImportError:
        raise UserError("reading ONNX needs the onnx package: pip install 'nanogfl[export]'") from None
    if isinstance(source, onnx.ModelProto):
        return source, "<onnx model>"
    if isinstance(source, bytes):
        return onnx.load_from_string(source), "<onnx bytes>"
    path = Path(source)
    if not path.is_file():
        raise OnnxFormatError(f"ONNX file not found: {path}")
    try:
        return onnx.load(str(path)), str(path)
    except Exception as e:  # protobuf DecodeError and friends
        raise OnnxFormatError(f"{path}: cannot read ONNX ({type(e).__name__}: {e})") from None


def _attributes(node: "onnx.NodeProto") -> dict[str, object]:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _constants(model: "onnx.ModelProto") -> dict[str, np.ndarray]:
    """Initializers, Constant node values, and Identity aliases of either (torch dedups equal tensors so)."""
    from onnx import numpy_helper
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and "value" in _attributes(node):
            values[node.output[0]] = numpy_helper.to_array(_attributes(node)["value"])
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


def _conv(node: "onnx.NodeProto", constants: dict[str, np.ndarray], where: str) -> ConvLayer:
    attrs = _attributes(node)
    if node.input[1] not in constants:
        raise OnnxFormatError(f"{where}: Conv {node.name!r} takes its weight from a computed tensor")
    weight = constants[node.input[1]].astype(np.float32)
    bias = constants[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else None
    if weight.ndim != 4:
        raise OnnxFormatError(f"{where}: Conv {node.name!r} is not 2-D (weight shape {weight.shape})")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise OnnxFormatError(f"{where}: Conv {node.name!r} is dilated; NanoDet-Plus has no dilated convolution")
    stride = tuple(int(s) for s in attrs.get("strides", [1, 1]))
    return ConvLayer(node.name or node.output[0], weight, bias, (stride[0], stride[1]), int(attrs.get("group", 1)),
                     weight_name=node.input[1])


def _fold_batchnorm(conv: ConvLayer, node: "onnx.NodeProto", constants: dict[str, np.ndarray], where: str) -> None:
    if any(name not in constants for name in node.input[1:5]):
        raise OnnxFormatError(f"{where}: BatchNormalization {node.name!r} takes its statistics from computed tensors")
    gamma, beta, mean, var = (constants[name].astype(np.float64) for name in node.input[1:5])
    scale = gamma / np.sqrt(var + float(_attributes(node).get("epsilon", 1e-5)))
    bias = conv.bias.astype(np.float64) if conv.bias is not None else np.zeros_like(mean)
    conv.weight = (conv.weight * scale.reshape(-1, 1, 1, 1)).astype(np.float32)
    conv.bias = ((bias - mean) * scale + beta).astype(np.float32)


def _spatial_scale(node: "onnx.NodeProto", constants: dict[str, np.ndarray]) -> float | None:
    if node.op_type in ("MaxPool", "AveragePool"):
        strides = _attributes(node).get("strides", [1, 1])
        return float(strides[0]) if len(set(strides)) == 1 else None
    if node.op_type.startswith("Global"):
        return None
    if node.op_type in ("Resize", "Upsample"):
        scale_input = 2 if node.op_type == "Resize" else 1
        scales = constants.get(node.input[scale_input]) if len(node.input) > scale_input else None
        if scales is None or scales.size != 4 or scales[2] != scales[3] or scales[2] <= 0:
            return None
        return 1.0 / float(scales[2])
    return 1.0


def read_onnx(source: "str | Path | bytes | onnx.ModelProto") -> NetGraph:
    model, where = _load(source)
    constants = _constants(model)
    consumers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    nodes: list[Node] = []
    producer: dict[str, Node] = {}
    formats = set()
    for index, onnx_node in enumerate(model.graph.node):
        op = onnx_node.op_type
        if op == "Constant" or (op == "Identity" and onnx_node.output[0] in constants):
            continue
        name = onnx_node.name or f"{op}_{index}"
        if onnx_node.domain not in ("", "ai.onnx") or "." in op:
            op_name = f"{onnx_node.domain}.{op}" if onnx_node.domain else op
            raise OnnxFormatError(f"{where}: node {name!r} is {op_name}, not a standard ONNX operator "
                                  "(pnnx's .pnnx.onnx is not importable; use the ncnn files or a torch export)")
        if op in UNSUPPORTED_WEIGHTED_OPS:
            raise OnnxFormatError(f"{where}: node {name!r} is a {op}, which a NanoDet-Plus deploy graph does "
                                  "not contain (quantised or a different architecture)")
        if op == "BatchNormalization":
            conv_node = producer.get(onnx_node.input[0])
            if conv_node is None or conv_node.conv is None or consumers.get(onnx_node.input[0], 0) != 1:
                raise OnnxFormatError(f"{where}: BatchNormalization {name!r} does not directly follow a Conv")
            _fold_batchnorm(conv_node.conv, onnx_node, constants, where)
            conv_node.outputs = list(onnx_node.output[:1])
            producer[onnx_node.output[0]] = conv_node
            continue
        data_inputs = [i for i in onnx_node.input if i and i not in constants]
        if op == "Conv":
            conv = _conv(onnx_node, constants, where)
            formats.add(str(constants[onnx_node.input[1]].dtype))
            node = Node(name, op, list(onnx_node.input[:1]), list(onnx_node.output), conv)
        else:
            node = Node(name, op, data_inputs, list(onnx_node.output),
                        spatial_scale=_spatial_scale(onnx_node, constants))
        nodes.append(node)
        for output in onnx_node.output:
            producer[output] = node
    initializer_names = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializer_names]
    weight_format = "+".join(sorted({"float32": "fp32", "float16": "fp16"}.get(f, f) for f in formats)) or "none"
    return NetGraph(where, nodes, [i.name for i in inputs], [o.name for o in model.graph.output], weight_format,
                    _static_input_hw(inputs[0]) if len(inputs) == 1 else None)


def _static_input_hw(value_info: "onnx.ValueInfoProto") -> tuple[int, int] | None:
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) != 4 or not all(d.HasField("dim_value") for d in dims[2:]):
        return None
    return int(dims[2].dim_value), int(dims[3].dim_value)
