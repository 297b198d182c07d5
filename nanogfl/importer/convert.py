"""Published NanoDet-Plus / NanoDet-m deploy model (ncnn or ONNX) -> our unfused GFLDetector with the same weights.

Our own deploy graph is the reference: ``deploy_model(model)`` exported to ONNX in memory and
read with the same ONNX reader as user files. Its Conv weights are named after our modules, so once
:func:`match_layers` pairs every reference conv with a source conv, we know which module takes which weights.
"""
from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

import torch

from ..contract import INPUT_BLOB, NANODET_ARCHS, OUTPUT_BLOB
from ..errors import UserError
from ..model.deploy import deploy_model
from ..model.detector import GFLDetector
from ..model.variants import build_variant, variant_config
from .batchnorm import load_folded_weights
from .graph import ConvLayer, NetGraph
from .graph_match import GraphMismatch, match_layers, output_convs
from .ncnn_reader import read_ncnn
from .onnx_reader import read_onnx

REFERENCE_INPUT_HW = (64, 64)  # any size works: only the graph structure is used
DEPLOY_PREFIX = "detector."  # DeployModel wraps the detector under this attribute


def read_source(path: str | Path) -> NetGraph:
    """An ncnn model (give the .param or the .bin; the other lies beside it) or an ONNX file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".param", ".bin"):
        return read_ncnn(path.with_suffix(".param"), path.with_suffix(".bin"))
    if suffix == ".onnx":
        return read_onnx(path)
    raise UserError(f"{path}: expected an ncnn .param/.bin or an .onnx file")


def _num_classes_for(graph: NetGraph, arch: str) -> int | None:
    head = variant_config(arch).head
    box_channels = 4 * (head.reg_max + 1)
    widths = sorted(conv.out_channels for conv in output_convs(graph))
    if len(widths) != len(head.strides) or len(set(widths)) != 1 or widths[0] <= box_channels:
        return None
    return widths[0] - box_channels


def infer_num_classes(graph: NetGraph, arch: str) -> int:
    """The class count from the prediction convs: each has num_classes + 4 * (reg_max + 1) outputs."""
    num_classes = _num_classes_for(graph, arch)
    if num_classes is not None:
        return num_classes
    head = variant_config(arch).head
    widths = sorted(conv.out_channels for conv in output_convs(graph))
    others = [other for other in NANODET_ARCHS if other != arch and _num_classes_for(graph, other) is not None]
    hint = f" — its head fits {others[0]}: use --arch {others[0]}" if others else ""
    raise GraphMismatch(
        f"{graph.source} is not a {arch} deploy graph (different architecture): its output convolutions "
        f"have {widths} channels, expected {len(head.strides)} (one per stride {list(head.strides)}) of "
        f"num_classes + {4 * (head.reg_max + 1)} each{hint}")


@functools.lru_cache(maxsize=8)
def reference_graph(arch: str, num_classes: int) -> NetGraph:
    """Our deploy graph for ``arch``; each conv layer is named after the module it came from (cached: treat
    the result as read-only)."""
    model = build_variant(arch, num_classes, with_aux=False).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(deploy_model(model, inplace=True), torch.zeros(1, 3, *REFERENCE_INPUT_HW), buffer,
                          dynamo=False, opset_version=11, input_names=[INPUT_BLOB], output_names=[OUTPUT_BLOB],
                          do_constant_folding=False)
    graph = read_onnx(buffer.getvalue())
    for conv in graph.convs:
        if not (conv.weight_name.startswith(DEPLOY_PREFIX) and conv.weight_name.endswith(".weight")):
            raise RuntimeError(f"reference export renamed the weight of {conv.name!r} to {conv.weight_name!r}")
        conv.name = conv.weight_name[len(DEPLOY_PREFIX):-len(".weight")]
    return graph


def _label(arch: str, num_classes: int) -> str:
    return f"{arch} with {num_classes} classes"


def match_architecture(source: NetGraph, arch: str, num_classes: int) -> dict[str, ConvLayer]:
    """Module name -> source conv. On a mismatch, the error also names an architecture that does match."""
    try:
        return match_layers(source, reference_graph(arch, num_classes), _label(arch, num_classes))
    except GraphMismatch as error:
        for other in NANODET_ARCHS:
            if other == arch:
                continue
            try:
                match_layers(source, reference_graph(other, num_classes), _label(other, num_classes))
            except GraphMismatch:
                continue
            raise GraphMismatch(f"{error} — the file is a {other} model: use --arch {other}") from None
        raise


def import_graph(source: NetGraph, arch: str) -> GFLDetector:
    """A full detector (freshly initialised aux branch) computing the source graph's function in eval mode,
    with identity BatchNorm layers (see :mod:`nanogfl.importer.batchnorm`)."""
    num_classes = infer_num_classes(source, arch)
    layers = match_architecture(source, arch, num_classes)
    model = build_variant(arch, num_classes, with_aux=True)
    load_folded_weights(model, {name: (conv.weight, conv.bias) for name, conv in layers.items()})
    return model.eval()
