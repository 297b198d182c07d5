"""Export toolchain: ONNX + ncnn (fp16/fp32) files, their layout and metadata, parity with PyTorch checked
independently of the exporter's own check, non-square sizes, int8, clear errors, nothing left behind on failure
(the official weights' AP after export: test_export_official_ap.py)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
ncnn = pytest.importorskip("ncnn")
pytest.importorskip("onnxsim")
pytest.importorskip("pnnx")

from nanogfl.checkpoint import Checkpoint, load_model, read_checkpoint, save_checkpoint  # noqa: E402
from nanogfl.cli import main  # noqa: E402
from nanogfl.config import Config  # noqa: E402
from nanogfl.errors import UserError  # noqa: E402
from nanogfl.exporter import pipeline  # noqa: E402
from nanogfl.exporter.pipeline import ExportOptions, export_checkpoint  # noqa: E402
from nanogfl.exporter.verify import FP16_TOLERANCE, FP32_TOLERANCE, Tolerance, synthetic_frame  # noqa: E402
from nanogfl.model import DeployModel, nanodet_plus_m  # noqa: E402
from nanogfl.model.box_ops import decode_boxes, make_priors  # noqa: E402
from nanogfl.runtime.metadata import LAYOUT_VERSION, ModelMeta  # noqa: E402
from nanogfl.runtime.preprocess import preprocess  # noqa: E402

NUM_CLASSES = 5
CLASS_NAMES = [f"thing{i}" for i in range(NUM_CLASSES)]
WIDTH = NUM_CLASSES + 32
_cache: dict[str, object] = {}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # conversions and checks are small; on a busy 2-core machine two OpenMP threads can be 10x slower than one
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def rows_for(input_hw) -> int:
    return sum(math.ceil(input_hw[0] / s) * math.ceil(input_hw[1] / s) for s in (8, 16, 32, 64))


def frames(count: int = 4) -> list[np.ndarray]:
    return [np.roll(synthetic_frame(), 60 * i, axis=1) for i in range(count)]


@pytest.fixture(scope="module")
def frame_dir(tmp_path_factory) -> Path:
    """Real-looking frames for the exporter's own parity check (the model below is calibrated on their kind)."""
    import cv2

    folder = tmp_path_factory.mktemp("frames")
    for i, frame in enumerate(frames()):
        cv2.imwrite(str(folder / f"{i}.png"), frame)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A random NanoDet-Plus-m whose outputs vary like a trained one's: BN statistics measured on such frames
    (so folding BN is not a no-op and activations stay in range), predictors that spread the probabilities."""
    torch.manual_seed(0)
    model = nanodet_plus_m(NUM_CLASSES)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batch
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(np.concatenate([preprocess(f, (256, 256))[0] for f in frames(2)])))
        for conv in model.head.predictors:
            conv.weight.normal_(0, 0.03)
            conv.bias[:NUM_CLASSES].normal_(-2.0, 1.0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    save_checkpoint(path, Checkpoint(model=model.state_dict(), config=Config().to_dict(), class_names=CLASS_NAMES,
                                     aux_trained=True))
    return path


@pytest.fixture(scope="module")
def reference(checkpoint):
    model, _, _ = load_model(checkpoint)
    return DeployModel(model).eval()  # BN not folded: independent of the exporter's graph


def torch_output(reference, blob: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return reference(torch.from_numpy(blob))[0].numpy()


def onnx_output(path: Path, blob: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["output"], {"data": blob})[0][0]


def ncnn_output(param: Path, blob: np.ndarray) -> np.ndarray:
    net = ncnn.Net()
    net.opt.num_threads = 1
    assert net.load_param(str(param)) == 0 and net.load_model(str(param.with_suffix(".bin"))) == 0
    assert list(net.input_names()) == ["data"] and list(net.output_names()) == ["output"]
    image = np.ascontiguousarray(blob[0])  # the Mat refers to this memory: keep it alive
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(image))
    status, output = extractor.extract("output")
    assert status == 0
    return np.array(output)


def assert_parity(expected: np.ndarray, actual: np.ndarray, tolerance: Tolerance) -> None:
    assert actual.shape == expected.shape
    diff = np.abs(actual - expected)
    assert diff[:, :NUM_CLASSES].max() <= tolerance.probs
    assert diff[:, NUM_CLASSES:].max() <= tolerance.box_logits


def real_blob(input_hw) -> np.ndarray:
    return preprocess(frames()[3], input_hw)[0]


def exported(checkpoint, frame_dir, tmp_path_factory, key: str, input_hw, **options):
    """Export once per (size, options) for the whole module."""
    if key not in _cache:
        out = tmp_path_factory.mktemp(f"export_{key}")
        result = export_checkpoint(checkpoint, out, ExportOptions(input_hw=input_hw, threads=1,
                                                                  verify_images=str(frame_dir), **options))
        _cache[key] = (out, result)
    return _cache[key]


def test_cli_export_square_onnx_and_ncnn_fp16(checkpoint, reference, frame_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--weights", str(checkpoint), "--size", "320", "--out", str(out), "--threads", "1",
                 "--verify-images", str(frame_dir)]) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime  probs" in printed and "ncnn fp16    probs" in printed and "FAILED" not in printed
    stem = "nanodet-plus-m_320x320"
    # only the final files: no pnnx side files, no staging folder
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{stem}{s}" for s in (".bin", ".json", ".onnx", ".param"))

    meta = ModelMeta.load(out / f"{stem}.json")
    assert meta.class_names == CLASS_NAMES and meta.input_hw == (320, 320)
    assert meta.strides == (8, 16, 32, 64) and meta.reg_max == 7 and meta.class_activation == "sigmoid"
    assert meta.mean == (103.53, 116.28, 123.675) and meta.std == (57.375, 57.12, 58.395)
    assert meta.layout_version == LAYOUT_VERSION and meta.input_name == "data" and meta.output_name == "output"
    assert meta.extra["ncnn_weights"] == "fp16"

    graph = onnx.load(str(out / f"{stem}.onnx")).graph
    dims = [[d.dim_value for d in v.type.tensor_type.shape.dim] for v in (graph.input[0], graph.output[0])]
    assert [graph.input[0].name, graph.output[0].name] == ["data", "output"]
    assert dims == [[1, 3, 320, 320], [1, rows_for((320, 320)), WIDTH]]
    assert not any(node.op_type == "BatchNormalization" for node in graph.node)

    blob = real_blob((320, 320))
    expected = torch_output(reference, blob)
    assert expected[:, :NUM_CLASSES].std() > 0.05  # the check below means something
    assert_parity(expected, onnx_output(out / f"{stem}.onnx", blob), FP32_TOLERANCE)
    assert_parity(expected, ncnn_output(out / f"{stem}.param", blob), FP16_TOLERANCE)
    assert np.abs(ncnn_output(out / f"{stem}.param", blob) - expected)[:, :NUM_CLASSES].max() > 0  # fp16 really


@pytest.mark.parametrize("input_hw", [(320, 416), (416, 320)])
def test_non_square_sizes_keep_height_and_width(checkpoint, reference, frame_dir, tmp_path_factory, input_hw):
    fp16 = input_hw[0] > input_hw[1]  # one size per ncnn precision
    out, result = exported(checkpoint, frame_dir, tmp_path_factory, f"{input_hw[0]}x{input_hw[1]}", input_hw, fp16=fp16)
    stem = f"nanodet-plus-m_{input_hw[0]}x{input_hw[1]}"
    assert ModelMeta.load(out / f"{stem}.json").input_hw == input_hw
    assert [p.label for p in result.parity] == ["onnxruntime", "ncnn fp16" if fp16 else "ncnn fp32"]
    assert all(p.ok for p in result.parity)

    blob = real_blob(input_hw)
    expected = torch_output(reference, blob)
    priors = make_priors(input_hw, (8, 16, 32, 64))
    expected_boxes = decode_boxes(torch.from_numpy(expected[:, NUM_CLASSES:]), priors, 7)
    # the last prior of the stride-8 level sits at (W - 8, H - 8): height and width are not swapped
    last_of_level0 = input_hw[0] // 8 * input_hw[1] // 8 - 1
    assert priors[last_of_level0, :2].tolist() == [input_hw[1] - 8, input_hw[0] - 8]
    for output, tolerance in ((onnx_output(out / f"{stem}.onnx", blob), FP32_TOLERANCE),
                              (ncnn_output(out / f"{stem}.param", blob), FP16_TOLERANCE if fp16 else FP32_TOLERANCE)):
        assert output.shape == (rows_for(input_hw), WIDTH)
        assert_parity(expected, output, tolerance)
        boxes = decode_boxes(torch.from_numpy(output[:, NUM_CLASSES:]), priors, 7)
        error_in_bins = (boxes - expected_boxes).abs() / priors[:, 2:3]  # a bin is one stride
        assert error_in_bins.max() < (0.1 if fp16 else 1e-3)


def test_exporter_parity_numbers_are_small_for_fp32(checkpoint, frame_dir, tmp_path_factory):
    _, result = exported(checkpoint, frame_dir, tmp_path_factory, "320x416", (320, 416), fp16=False)
    for parity in result.parity:
        assert parity.probs_diff < 2e-5 and parity.box_logits_diff < 5e-4


@pytest.mark.parametrize("fmt", ["onnx", "ncnn"])
def test_int8_of_the_asked_format_through_the_runtime(fmt, checkpoint, frame_dir, tmp_path, capsys):
    import cv2

    from nanogfl.runtime.backends import open_model

    calib = tmp_path / "calib"
    calib.mkdir()
    for i, frame in enumerate(frames(3)):
        cv2.imwrite(str(calib / f"{i}.png"), frame)
    out = tmp_path / "out"
    assert main(["export", "--weights", str(checkpoint), "--format", fmt, "--size", "256", "--out", str(out),
                 "--int8", "--calib", str(calib), "--calib-method", "minmax", "--max-float-layers", "0",
                 "--threads", "1", "--verify-images", str(frame_dir)]) == 0
    printed = capsys.readouterr().out
    assert "calibrated on 3 images" in printed and "latency" in printed and f"{fmt} int8" in printed
    suffix, other = (".onnx", ".param") if fmt == "onnx" else (".param", ".onnx")
    int8_path = out / f"nanodet-plus-m_256x256.int8{suffix}"
    assert not int8_path.with_suffix(other).exists()  # int8 of the asked formats only
    extra = ModelMeta.load(out / "nanodet-plus-m_256x256.int8.json").extra
    if fmt == "onnx":
        assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in onnx.load(str(int8_path)).graph.node}
        assert extra["onnx_weights"] == "int8 (QDQ)" and extra["onnx_int8"]["calibration"] == "minmax"
    else:
        assert "8=2" in int8_path.read_text() and extra["ncnn_weights"] == "int8"
    blob = real_blob((256, 256))
    fp32 = open_model(out / f"nanodet-plus-m_256x256{suffix}", threads=1).forward(blob)
    int8 = open_model(int8_path, threads=1).forward(blob)
    assert 0 < np.abs(fp32 - int8)[:, :NUM_CLASSES].max() < 0.2  # quantised, but the same model


def test_bad_size_is_one_line_and_writes_nothing(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--weights", str(checkpoint), "--size", "320", "330", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "multiples of 32" in err and "--size 320 320" in err
    assert not out.exists()


def test_bad_checkpoints_are_one_line_errors(checkpoint, tmp_path, capsys):
    not_a_checkpoint = tmp_path / "junk.pt"
    not_a_checkpoint.write_text("hello")
    mismatch = tmp_path / "mismatch.pt"
    payload = read_checkpoint(checkpoint)
    payload.class_names = CLASS_NAMES[:3]  # the weights predict 5 classes
    save_checkpoint(mismatch, payload)
    for path, words in ((not_a_checkpoint, "cannot read checkpoint"), (mismatch, "do not fit"),
                        (tmp_path / "missing.pt", "not found")):
        assert main(["export", "--weights", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and words in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_missing_converter_names_the_pip_extra(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pnnx", None)  # import pnnx now raises ImportError
    with pytest.raises(UserError, match=r"'pnnx'.*pip install 'nanogfl\[export\]'"):
        export_checkpoint(checkpoint, tmp_path / "out", ExportOptions(formats=("ncnn",)))
    assert not (tmp_path / "out").exists()


def test_failed_verification_leaves_nothing_behind(checkpoint, frame_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "older.onnx").write_bytes(b"an earlier export")
    monkeypatch.setattr(pipeline, "FP32_TOLERANCE", Tolerance(probs=0.0, box_logits=0.0))
    with pytest.raises(UserError, match="verification failed: onnxruntime.*nothing was written"):
        export_checkpoint(checkpoint, out, ExportOptions(formats=("onnx",), input_hw=(128, 128), threads=1,
                                                         verify_images=str(frame_dir)))
    assert [p.name for p in out.iterdir()] == ["older.onnx"]
    assert (out / "older.onnx").read_bytes() == b"an earlier export"


def test_failed_conversion_leaves_nothing_behind(checkpoint, tmp_path, monkeypatch):
    import nanogfl.exporter.ncnn_export as ncnn_export

    def broken_pnnx(*args, **kwargs):
        raise ncnn_export.ExportError("pnnx failed to convert the model to ncnn: simulated")

    monkeypatch.setattr(ncnn_export, "export_ncnn", broken_pnnx)
    out = tmp_path / "new" / "out"
    with pytest.raises(UserError, match="simulated"):
        export_checkpoint(checkpoint, out, ExportOptions(input_hw=(128, 128), threads=1))  # onnx done first
    assert not out.exists()
