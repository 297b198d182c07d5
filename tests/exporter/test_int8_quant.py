"""ONNX Runtime int8 on a tiny hand-built detector-shaped graph (conv, conv, reshape/transpose to [1, N, C + 32]):
``auto`` tries every calibration and keeps the smallest error, and the scan + selection run end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from nanogfl.exporter.int8_methods import CALIBRATIONS  # noqa: E402
from nanogfl.exporter.int8_quant import quantize_onnx_int8, run_onnx  # noqa: E402
from nanogfl.exporter.pipeline import ExportOptions  # noqa: E402
from nanogfl.runtime.metadata import ModelMeta  # noqa: E402

CLASSES, WIDTH, SIDE = 3, 3 + 32, 8


def tiny_detector(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), "w0"),
             numpy_helper.from_array(rng.normal(0, 0.5, (WIDTH, 8, 1, 1)).astype(np.float32), "w1"),
             numpy_helper.from_array(np.array([1, WIDTH, SIDE * SIDE], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["data", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c0"], ["a0"], name="act0", alpha=0.1),
             helper.make_node("Conv", ["a0", "w1"], ["c1"], name="predictor"),
             helper.make_node("Reshape", ["c1", "shape"], ["r"], name="reshape"),
             helper.make_node("Transpose", ["r"], ["output"], name="transpose", perm=[0, 2, 1])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT,
                                                                            [1, 3, SIDE, SIDE])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, SIDE * SIDE, WIDTH])],
                              inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_auto_calibration_and_scan_on_a_tiny_graph(tmp_path):
    fp32 = tiny_detector(tmp_path / "tiny.onnx")
    meta = ModelMeta(class_names=[f"c{i}" for i in range(CLASSES)], input_hw=(SIDE, SIDE))
    rng = np.random.default_rng(1)
    blobs = [rng.normal(0, 1, (1, 3, SIDE, SIDE)).astype(np.float32) for _ in range(6)]
    lines: list[str] = []
    options = ExportOptions(calib_method="auto", scan_images=4, max_float_layers=1, float_target=0.0)
    calibration, selection = quantize_onnx_int8(fp32, tmp_path / "tiny.int8.onnx", blobs, meta, options,
                                                log=lines.append)
    tried = [line for line in lines if line.strip().startswith("calibration ")]
    assert len(tried) == len(CALIBRATIONS) and calibration in CALIBRATIONS
    assert any(line.strip().startswith("scan") for line in lines)
    assert selection is not None and len(selection.kept) == 1 and len(selection.rows) == 3  # 2 convs + tail
    ops = {node.op_type for node in onnx.load(str(tmp_path / "tiny.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    quantized, reference = run_onnx(tmp_path / "tiny.int8.onnx", blobs[:1]), run_onnx(fp32, blobs[:1])
    assert quantized[0].shape == reference[0].shape == (SIDE * SIDE, WIDTH)
