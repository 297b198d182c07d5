"""ncnn precision is a choice: the metadata records the one the export was verified in (old files: fp32), the
runtime uses it unless ``--precision`` says otherwise, and the benchmark reports it."""
import dataclasses
import json

import numpy as np
import pytest
from helpers import official_meta

from nanogfl.cli import main
from nanogfl.errors import UserError
from nanogfl.runtime.backends import open_model
from nanogfl.runtime.metadata import ModelMeta
from nanogfl.runtime.ncnn_support import NCNN_PRECISION_OPTIONS, ncnn_has_fp16

FP16_OPTIONS = ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic")


def ncnn_options(backend) -> dict[str, bool]:
    return {option: bool(getattr(backend.net.opt, option)) for option in NCNN_PRECISION_OPTIONS["fp32"]}


def test_old_metadata_loads_as_fp32_and_the_field_round_trips(tmp_path):
    old = json.loads(official_meta().to_json())
    del old["ncnn_precision"]
    assert ModelMeta.from_dict(old).ncnn_precision == "fp32"
    path = tmp_path / "m.json"
    ModelMeta(class_names=["a"], input_hw=(64, 64), ncnn_precision="fp16").save(path)
    assert ModelMeta.load(path).ncnn_precision == "fp16"


def test_default_is_the_metadata_precision_and_the_flag_overrides_it(official_model, official_ncnn):
    default = open_model(official_model, threads=1)
    assert default.precision == "fp32" and not any(ncnn_options(default).values())
    fp16 = open_model(official_model, threads=1, precision="fp16")
    assert fp16.precision == "fp16"
    assert all(ncnn_options(fp16)[o] for o in FP16_OPTIONS) and not ncnn_options(fp16)["use_bf16_storage"]
    meta16 = dataclasses.replace(official_meta(), ncnn_precision="fp16")
    assert open_model(official_ncnn, threads=1, meta=meta16).precision == "fp16"  # auto = the metadata's
    assert open_model(official_ncnn, threads=1, meta=meta16, precision="fp32").precision == "fp32"
    if not ncnn_has_fp16():  # x86, Cortex-A72: ncnn has no fp16 kernels to run, the numbers are the same
        blob = np.random.default_rng(0).normal(size=(1, 3, 416, 416)).astype(np.float32)
        np.testing.assert_array_equal(default.forward(blob), fp16.forward(blob))


def test_bad_precisions_are_one_line_errors(official_ncnn, tiny_onnx):
    bad = dataclasses.replace(official_meta(), ncnn_precision="int8")
    with pytest.raises(UserError, match="ncnn_precision must be one of fp32, fp16"):
        open_model(official_ncnn, meta=bad)
    with pytest.raises(UserError, match="unknown precision"):
        open_model(official_ncnn, meta=official_meta(), precision="fp8")
    with pytest.raises(UserError, match="applies to ncnn models"):
        open_model(tiny_onnx, precision="fp16")
    assert open_model(tiny_onnx).precision == "fp32"


def test_benchmark_rows_per_precision(official_model, tiny_onnx, tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = main(["benchmark", "--model", str(official_model), str(tiny_onnx), "--precision", "fp32", "fp16",
                   "--threads", "1", "--runs", "2", "--warmup", "0", "--json", str(out)])
    table = capsys.readouterr().out
    assert status == 0
    report = json.loads(out.read_text())
    rows = [(r["backend"], r["precision"]) for r in report["results"]]
    assert rows == [("ncnn", "fp32"), ("ncnn", "fp16"), ("onnxruntime", "fp32")]  # one row: ONNX has no choice
    assert report["environment"]["ncnn_fp16_arithmetic"] == ncnn_has_fp16()
    assert "prec" in table.splitlines()[0] and "prec fp16: " in table


def test_cli_flag(official_model, coco_images, tiny_onnx, capsys):
    assert main(["predict", "--model", str(official_model), "--source", str(coco_images[0]), "--json",
                 "--precision", "fp16", "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["detections"]
    assert main(["predict", "--model", str(tiny_onnx.with_suffix(".pt")), "--source", str(coco_images[0]),
                 "--precision", "fp16"]) == 2
    assert "CUDA only" in capsys.readouterr().err  # a checkpoint runs fp16 on CUDA alone
