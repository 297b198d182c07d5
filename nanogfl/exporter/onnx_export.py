"""Deploy graph -> one simplified ONNX file (input ``data`` [1,3,H,W], output ``output`` [1,N,C+4*(reg_max+1)])."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..contract import INPUT_BLOB, OUTPUT_BLOB
from ..model.deploy import DeployModel
from .common import ExportError, require_module

OPSET = 13  # 11 is the floor for the graph; 13 lets ONNX Runtime quantise per channel (int8)


def export_onnx(deploy: DeployModel, input_hw: tuple[int, int], path: str | Path, dynamic: bool = False) -> Path:
    """Trace ``deploy`` at ``input_hw`` with the legacy (TorchScript) exporter, then simplify with onnxsim.
    ``dynamic``: the input's height and width (and so the number of priors) stay free."""
    onnx = require_module("onnx", "ONNX export")
    onnxsim = require_module("onnxsim", "ONNX export (graph simplification)")
    path = Path(path)
    dummy = torch.zeros(1, 3, *input_hw)
    raw_path = path.with_name(path.stem + ".raw.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter announces its own deprecation and tracer notes
        torch.onnx.export(deploy, (dummy,), str(raw_path), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_BLOB], output_names=[OUTPUT_BLOB], do_constant_folding=True,
                          dynamic_axes={INPUT_BLOB: {2: "height", 3: "width"}, OUTPUT_BLOB: {1: "priors"}}
                          if dynamic else None)
    try:
        simplified, ok = onnxsim.simplify(onnx.load(str(raw_path)))
    finally:
        raw_path.unlink(missing_ok=True)
    if not ok:
        raise ExportError(f"{path.name}: onnxsim could not validate the simplified graph")
    onnx.checker.check_model(simplified)
    onnx.save(simplified, str(path))
    return path
