"""Backends: ONNX Runtime and PyTorch agree with the torch model; ncnn applies the class activation; errors."""
import json
import sys

import numpy as np
import pytest
from helpers import TINY_INPUT_HW, official_meta

from nanogfl.errors import UserError
from nanogfl.runtime.backends import ModelInputError, open_model, resolve_model_path
from nanogfl.runtime.metadata import ModelMeta


def random_blob(input_hw, seed=0):
    return np.random.default_rng(seed).normal(size=(1, 3, *input_hw)).astype(np.float32)


def test_onnxruntime_and_torch_backends_match_the_torch_model(tiny_onnx):
    torch = pytest.importorskip("torch")
    from nanogfl.checkpoint import load_model
    from nanogfl.cli.common import open_model_file
    from nanogfl.model import DeployModel

    blob = random_blob(TINY_INPUT_HW)
    model, _, _ = load_model(tiny_onnx.with_suffix(".pt"))
    with torch.no_grad():
        expected = DeployModel(model)(torch.from_numpy(blob))[0].numpy()  # BN not folded: an independent path
    onnx_backend = open_model(tiny_onnx, threads=1)
    torch_backend = open_model_file(tiny_onnx.with_suffix(".pt"), threads=1)
    rows = 16 * 20 + 8 * 10 + 4 * 5 + 2 * 3
    for backend in (onnx_backend, torch_backend):
        output = backend.forward(blob)
        assert output.shape == (rows, 3 + 32) and output.dtype == np.float32
        np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)
    assert onnx_backend.name == "onnxruntime" and torch_backend.name == "torch"
    # a checkpoint describes itself: the torch backend's metadata equals the exported json
    assert torch_backend.meta == onnx_backend.meta
    assert expected[:, :3].min() >= 0 and expected[:, :3].max() <= 1


def test_ncnn_official_model_gets_sigmoid(official_model):
    backend = open_model(official_model, threads=1)
    blob = random_blob((416, 416))
    raw = backend.run(blob)
    output = backend.forward(blob)
    assert output.shape == (3598, 112)
    assert raw[:, :80].min() < 0  # the official fp16 file really ends with logits
    np.testing.assert_allclose(output[:, :80], 1 / (1 + np.exp(-raw[:, :80])), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(output[:, 80:], raw[:, 80:])
    assert backend.size_mb == pytest.approx((21206 + 2397184) / 1e6)


def test_ncnn_other_input_size_and_explicit_meta(official_model, official_ncnn):
    backend = open_model(official_ncnn, threads=1, meta=official_meta(), input_hw=(320, 256))
    assert backend.meta.input_hw == (320, 256)
    assert backend.forward(random_blob((320, 256))).shape == (40 * 32 + 20 * 16 + 10 * 8 + 5 * 4, 112)


def test_wrong_blob_shape_is_a_clear_error(official_model):
    backend = open_model(official_model, threads=1)
    with pytest.raises(ModelInputError, match=r"\(1, 3, 416, 416\)"):
        backend.forward(random_blob((320, 320)))


def test_input_size_must_be_a_multiple_of_32(official_model):
    with pytest.raises(UserError, match="multiples of 32"):
        open_model(official_model, input_hw=(416, 400))


def test_onnx_fixed_size_mismatch(tiny_onnx):
    with pytest.raises(UserError, match="fixed input size"):
        open_model(tiny_onnx, input_hw=(320, 320))


def test_file_errors(tmp_path, official_model, official_ncnn):
    with pytest.raises(UserError, match="unknown model type"):
        open_model(tmp_path / "model.tflite")
    with pytest.raises(UserError, match="not found"):
        open_model(tmp_path / "missing.onnx")
    unnamed = tmp_path / "unnamed.param"  # the official structure, but no input size in the name, and no json
    unnamed.symlink_to(official_ncnn)
    with pytest.raises(UserError, match="metadata"):
        open_model(unnamed)
    lonely = tmp_path / "lonely.param"
    lonely.symlink_to(official_ncnn)
    with pytest.raises(UserError, match=r"lonely\.bin"):
        open_model(lonely, meta=official_meta())
    with pytest.raises(UserError, match="does not exist"):
        open_model(official_model, backend="onnxruntime")  # no .onnx beside the .param


def test_bad_metadata(tmp_path, official_ncnn):
    for name in ("model.param", "model.bin"):
        (tmp_path / name).symlink_to(official_ncnn.with_suffix(f".{name.split('.')[1]}"))
    meta_file = tmp_path / "model.json"
    meta_file.write_text(json.dumps({"class_names": ["a"], "input_hw": [416, 416], "colour": 1}))
    with pytest.raises(UserError, match="colour"):
        open_model(tmp_path / "model.param")
    meta_file.write_text("{not json")
    with pytest.raises(UserError, match="model.json"):
        open_model(tmp_path / "model.param")
    ModelMeta(class_names=["a"], input_hw=(416, 416), class_activation="softmax").save(meta_file)
    with pytest.raises(UserError, match="class_activation"):
        open_model(tmp_path / "model.param")
    ModelMeta(class_names=["a"], input_hw=(416, 416), input_name="images").save(meta_file)
    with pytest.raises(UserError, match="images"):
        open_model(tmp_path / "model.param")


@pytest.mark.parametrize("package,suffix", [("onnxruntime", ".onnx"), ("ncnn", ".param")])
def test_missing_package_names_the_extra(monkeypatch, tmp_path, package, suffix):
    model = tmp_path / f"model{suffix}"
    model.write_text("")
    ModelMeta(class_names=["a"], input_hw=(64, 64)).save(tmp_path / "model.json")
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` raise ImportError
    with pytest.raises(UserError, match=r"nanogfl\[deploy\]"):
        open_model(model)


def test_backend_choice_finds_the_sibling_file(tmp_path):
    for name in ("m.onnx", "m.param", "m.pt"):
        (tmp_path / name).write_text("")
    assert resolve_model_path(tmp_path / "m.onnx") == (tmp_path / "m.onnx", "onnxruntime")
    assert resolve_model_path(tmp_path / "m.onnx", "ncnn") == (tmp_path / "m.param", "ncnn")
    assert resolve_model_path(tmp_path / "m.param", "torch") == (tmp_path / "m.pt", "torch")
    with pytest.raises(UserError, match="unknown backend"):
        resolve_model_path(tmp_path / "m.onnx", "tensorrt")
