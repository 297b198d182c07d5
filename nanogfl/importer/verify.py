"""Run the source file itself (through the runtime's ncnn / ONNX Runtime backend) next to the imported model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..contract import check_input_size
from ..model.deploy import deploy_model
from ..model.detector import GFLDetector
from ..runtime.backends import Backend, open_model
from ..runtime.metadata import ModelMeta
from .graph import NetGraph


def open_source(source: NetGraph, class_names: list[str], input_hw: tuple[int, int]) -> Backend:
    """The source file as a runtime backend, exact fp32 arithmetic, at ``input_hw``. Its blob names come from the
    graph; its class columns are probabilities when the graph ends in a Sigmoid, logits otherwise."""
    if len(source.inputs) != 1 or len(source.outputs) != 1:
        raise ValueError(f"{source.source}: expected one input and one output")
    meta = ModelMeta(class_names=list(class_names), input_hw=check_input_size(input_hw),
                     class_activation="sigmoid" if source.has_op("Sigmoid") else "none",
                     input_name=source.inputs[0], output_name=source.outputs[0])
    return open_model(Path(source.source), threads=1, meta=meta, ncnn_fp16=False)


@torch.no_grad()
def compare_with_source(model: GFLDetector, source: NetGraph, class_names: list[str], blob: np.ndarray) -> float:
    """Largest absolute difference between the source's output and our deploy graph's on ``blob`` (class
    probabilities and box logits), relative to the largest absolute output value (at least 1)."""
    expected = open_source(source, class_names, tuple(blob.shape[2:])).forward(blob)
    ours = deploy_model(model, fold_batchnorm=False)(torch.from_numpy(blob))[0].numpy()
    if ours.shape != expected.shape:
        raise ValueError(f"output shapes differ: ours {ours.shape}, {source.source} {expected.shape}")
    return float(np.abs(ours - expected).max() / max(1.0, float(np.abs(expected).max())))
