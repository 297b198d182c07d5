"""nanogfl.importer refuses, in one line that names the way out, files it cannot import: a legacy NanoDet-m graph
given as NanoDet-Plus, an int8 ncnn model, a width that belongs to another variant."""
from __future__ import annotations

import pytest

from nanogfl.importer.convert import import_graph, read_source
from nanogfl.importer.graph_match import GraphMismatch
from nanogfl.importer.ncnn_reader import TAG_INT8, NcnnFormatError


def test_legacy_nanodet_m_onnx_as_plus_names_the_right_arch(shared_data):
    path = shared_data / "nanodet_m_onnx" / "nanodet-m_320.onnx"
    with pytest.raises(GraphMismatch, match=r"not a nanodet-plus-m deploy graph.*\[112, 112, 112\].*--arch nanodet-m$"):
        import_graph(read_source(path), "nanodet-plus-m")


def test_int8_ncnn_is_refused(official_ncnn, tmp_path):
    param = (tmp_path / "int8.param")
    param.write_text(official_ncnn.read_text())
    data = bytearray(official_ncnn.with_suffix(".bin").read_bytes())
    data[:4] = TAG_INT8.to_bytes(4, "little")
    (tmp_path / "int8.bin").write_bytes(bytes(data))
    with pytest.raises(NcnnFormatError, match="convrelu_0.*int8.*fp16 or fp32"):
        read_source(param)
    lines = official_ncnn.read_text().splitlines()
    lines[3] += " 8=2"  # int8_scale_term, as ncnn2int8 writes it
    param.write_text("\n".join(lines))
    with pytest.raises(NcnnFormatError, match="int8-quantised"):
        read_source(param)


def test_wrong_width_names_the_difference_and_the_right_arch(official_ncnn):
    with pytest.raises(GraphMismatch, match=r"24->58 where nanodet-plus-m-1\.5x .* 24->88.*--arch nanodet-plus-m$"):
        import_graph(read_source(official_ncnn), "nanodet-plus-m-1.5x")
