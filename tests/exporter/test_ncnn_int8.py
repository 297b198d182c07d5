"""The ncnn int8 writer on a hand-written three-convolution net: the fp32 model reads and writes back byte for
byte, the int8 file has ncnn's layout (tagged int8 weights, per-channel scales, input scale), ncnn loads it and
computes within int8 rounding of fp32; and the input ranges' percentile rule."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from nanogfl.exporter.common import ExportError
from nanogfl.exporter.ncnn_int8 import HISTOGRAM_BINS, InputRanges, measure_input_ranges, open_ncnn, run_ncnn
from nanogfl.exporter.ncnn_int8_format import TAG_INT8, read_ncnn, weight_scales, write_ncnn

ncnn = pytest.importorskip("ncnn")

PARAM = """7767517
4 4
Input                    data                     0 1 data 0=12 1=10 2=3
Convolution              conv0                    1 1 data c0 0=8 1=3 4=1 5=1 6=216 9=2 -23310=1,1.000000e-01
ConvolutionDepthWise     dw0                      1 1 c0 d0 0=8 1=3 4=1 5=1 6=72 7=8
Convolution              conv1                    1 1 d0 output 0=5 1=1 5=1 6=40
"""
SIZES = {"conv0": (216, 8), "dw0": (72, 8), "conv1": (40, 5)}


@pytest.fixture()
def fp32_net(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    chunks = []
    for weights, biases in SIZES.values():
        chunks += [struct.pack("<I", 0), rng.normal(0, 0.3, weights).astype("<f4").tobytes(),
                   rng.normal(0, 0.1, biases).astype("<f4").tobytes()]
    param = tmp_path / "net.param"
    param.write_text(PARAM)
    param.with_suffix(".bin").write_bytes(b"".join(chunks))
    return param


def blobs(count: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(0, 1, (1, 3, 10, 12)).astype(np.float32) for _ in range(count)]


def test_fp32_model_reads_and_writes_back_unchanged(fp32_net, tmp_path):
    model = read_ncnn(fp32_net)
    assert [layer.name for layer in model.weighted] == ["conv0", "dw0", "conv1"]
    assert [layer.channel_groups for layer in model.weighted] == [8, 8, 5]
    copy, copy_bin = write_ncnn(model, tmp_path / "copy.param", {})
    assert copy_bin.read_bytes() == fp32_net.with_suffix(".bin").read_bytes()
    assert copy.read_text().split() == PARAM.split()


def test_int8_file_has_ncnn_layout_and_computes_close_to_fp32(fp32_net, tmp_path):
    model = read_ncnn(fp32_net)
    ranges = measure_input_ranges(fp32_net, model, blobs(), "data")
    int8_param, int8_bin = write_ncnn(model, tmp_path / "int8.param", ranges.scales(["conv0", "dw0", "conv1"], 1.0))
    lines = int8_param.read_text().splitlines()
    assert lines[3].split()[-1] == "8=2" and lines[4].split()[-1] == "8=1" and lines[5].split()[-1] == "8=2"
    data = int8_bin.read_bytes()
    assert struct.unpack_from("<I", data, 0)[0] == TAG_INT8
    conv0 = model.weighted[0]
    expected_int8 = np.clip(np.round(conv0.weight.reshape(8, -1) * weight_scales(conv0)[:, None]), -127, 127)
    assert np.array_equal(np.frombuffer(data, np.int8, 216, 4), expected_int8.reshape(-1).astype(np.int8))
    scales_at = 4 + 216 + 4 * 8  # tag, int8 weights (216: already 4-aligned), bias
    assert np.allclose(np.frombuffer(data, "<f4", 8, scales_at), weight_scales(conv0))
    assert np.frombuffer(data, "<f4", 1, scales_at + 32)[0] == pytest.approx(127.0 / ranges.absmax["conv0"])
    # 4 + 72 int8 weights; conv1: 4 + 40; each + fp32 bias, weight scales and one input scale
    assert len(data) == sum(4 + w + 4 * b + 4 * b + 4 for w, b in SIZES.values())

    inputs = blobs(2)
    fp32 = [out[0] for out in run_ncnn(open_ncnn(fp32_net), inputs, "data", ["output"])]
    int8 = [out[0] for out in run_ncnn(open_ncnn(int8_param), inputs, "data", ["output"])]
    for reference, quantized in zip(fp32, int8):
        spread = np.abs(reference).max()
        assert 0 < np.abs(reference - quantized).max() < 0.05 * spread  # int8 ran, and it is the same net


def test_keeping_a_layer_in_float_writes_it_as_fp32(fp32_net, tmp_path):
    model = read_ncnn(fp32_net)
    param, _ = write_ncnn(model, tmp_path / "mixed.param", {"conv0": 10.0, "conv1": 5.0})
    assert "8=" not in param.read_text().splitlines()[4]
    with pytest.raises(ExportError, match="no Convolution layer named 'nope'"):
        write_ncnn(model, tmp_path / "bad.param", {"nope": 1.0})
    with pytest.raises(ExportError, match="already int8"):
        read_ncnn(param)


def test_percentile_range_drops_the_outlier_tail():
    histogram = np.zeros(HISTOGRAM_BINS)
    histogram[: HISTOGRAM_BINS // 4] = 1000.0  # |x| spread over the first quarter of [0, 8]
    histogram[-1] = 1.0  # one outlier at the max
    ranges = InputRanges({"conv": 8.0}, {"conv": histogram})
    assert ranges.scales(["conv"], 1.0)["conv"] == pytest.approx(127.0 / 8.0)
    assert ranges.scales(["conv"], 0.9999)["conv"] == pytest.approx(127.0 / 2.0, rel=0.01)
