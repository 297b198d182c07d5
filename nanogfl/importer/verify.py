"""Run the source file itself (through the runtime's ncnn / ONNX Runtime backend) next to the imported model."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..contract import check_input_size
from ..errors import UserError
from ..model.deploy import deploy_model
from ..model.detector import GFLDetector
from ..runtime.backends import Backend, open_model
from ..runtime.decode import feature_sizes
from ..runtime.metadata import ModelMeta
from .graph import NetGraph


def _split_output_order(backend: Backend, outputs: list[str]) -> list[str]:
    """Per-level outputs (NanoDet-m: class and box blobs per stride, in no fixed order or naming) sorted into
    [cls_8, box_8, cls_16, ...] by their shapes on one run."""
    meta = backend.meta
    rows_of_level = {h * w: i for i, (h, w) in enumerate(feature_sizes(meta.input_hw, meta.strides))}
    kind_of_width = {meta.num_classes: 0, 4 * (meta.reg_max + 1): 1}
    blob = np.zeros((1, 3, *meta.input_hw), np.float32)
    slots: dict[tuple[int, int], str] = {}
    for name, array in zip(outputs, backend.extract(blob, outputs)):
        width = array.shape[-1]
        rows = array.size // max(width, 1)
        slot = (rows_of_level.get(rows, -1), kind_of_width.get(width, -1))
        if -1 in slot or slot in slots:
            raise UserError(f"{backend.path}: output {name!r} of shape {array.shape} is not one class [HW, "
                            f"{meta.num_classes}] or box [HW, {4 * (meta.reg_max + 1)}] output of a stride "
                            f"{list(meta.strides)} level at input {meta.input_hw}")
        slots[slot] = name
    return [slots[key] for key in sorted(slots)]


def open_source(source: NetGraph, class_names: list[str], input_hw: tuple[int, int], strides: tuple[int, ...],
                reg_max: int) -> Backend:
    """The source file as a runtime backend, exact fp32 arithmetic, at ``input_hw``. Its blob names come from the
    graph (several outputs: per-level class and box blobs); its class columns are probabilities when the graph
    has a Sigmoid, logits otherwise."""
    if len(source.inputs) != 1 or len(source.outputs) not in (1, 2 * len(strides)):
        raise UserError(f"{source.source}: expected one input and one output (or a class and a box output per "
                        f"stride {list(strides)}), got {len(source.inputs)} inputs and {len(source.outputs)} outputs")
    meta = ModelMeta(class_names=list(class_names), input_hw=check_input_size(input_hw), strides=tuple(strides),
                     reg_max=reg_max, class_activation="sigmoid" if source.has_op("Sigmoid") else "none",
                     input_name=source.inputs[0], output_name=source.outputs[0])
    backend = open_model(Path(source.source), threads=1, meta=meta, precision="fp32")
    if len(source.outputs) > 1:
        split = _split_output_order(backend, list(source.outputs))
        backend = open_model(Path(source.source), threads=1, meta=dataclasses.replace(meta, split_outputs=split),
                             precision="fp32")
    return backend


@torch.no_grad()
def compare_with_source(model: GFLDetector, source: NetGraph, class_names: list[str], blob: np.ndarray) -> float:
    """Largest absolute difference between the source's output and our deploy graph's on ``blob`` (class
    probabilities and box logits), relative to the largest absolute output value (at least 1)."""
    backend = open_source(source, class_names, tuple(blob.shape[2:]), model.strides, model.reg_max)
    expected = backend.forward(blob)
    ours = deploy_model(model, fold_batchnorm=False)(torch.from_numpy(blob))[0].numpy()
    if ours.shape != expected.shape:
        raise ValueError(f"output shapes differ: ours {ours.shape}, {source.source} {expected.shape}")
    return float(np.abs(ours - expected).max() / max(1.0, float(np.abs(expected).max())))
