"""Run the source file itself (ncnn or ONNX Runtime) next to the imported model and compare outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..model.detector import DeployModel, NanoDetPlus
from .graph import NetGraph


def run_ncnn(param_path: str | Path, blob: np.ndarray, input_name: str, output_name: str) -> np.ndarray:
    """One forward of an ncnn model in fp32 arithmetic (fp16 storage off) on a [1, 3, H, W] blob."""
    import ncnn

    param_path = Path(param_path)
    net = ncnn.Net()
    for option in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
        setattr(net.opt, option, False)
    net.opt.num_threads = 1
    if net.load_param(str(param_path)) or net.load_model(str(param_path.with_suffix(".bin"))):
        raise RuntimeError(f"ncnn could not load {param_path}")
    extractor = net.create_extractor()
    extractor.input(input_name, ncnn.Mat(np.ascontiguousarray(blob[0], dtype=np.float32)))
    status, output = extractor.extract(output_name)
    if status:
        raise RuntimeError(f"ncnn could not compute {output_name!r} of {param_path}")
    return np.array(output)[None]


def run_onnx(path: str | Path, blob: np.ndarray, input_name: str, output_name: str) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([output_name], {input_name: blob.astype(np.float32)})[0]


def run_source(source: NetGraph, blob: np.ndarray) -> np.ndarray:
    """The source model's single output on ``blob`` (class columns as the file computes them)."""
    if len(source.inputs) != 1 or len(source.outputs) != 1:
        raise ValueError(f"{source.source}: expected one input and one output")
    run = run_onnx if source.source.lower().endswith(".onnx") else run_ncnn
    return run(source.source, blob, source.inputs[0], source.outputs[0])


@torch.no_grad()
def compare_with_source(model: NanoDetPlus, source: NetGraph, blob: np.ndarray) -> float:
    """Largest absolute difference between the source's output and ours on ``blob``, relative to the largest
    absolute output value (at least 1). The source decides whether class columns are probabilities (it
    contains a Sigmoid) or logits."""
    expected = run_source(source, blob)
    net = DeployModel(model) if source.has_op("Sigmoid") else model
    ours = net.eval()(torch.from_numpy(blob)).numpy()
    if ours.shape != expected.shape:
        raise ValueError(f"output shapes differ: ours {ours.shape}, {source.source} {expected.shape}")
    return float(np.abs(ours - expected).max() / max(1.0, float(np.abs(expected).max())))
