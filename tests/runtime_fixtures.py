"""Fixtures shared by the runtime, demo and benchmark tests. Import the ones a module needs:
``from runtime_fixtures import official_model, ...``. Expensive results are cached per session, so importing a
fixture into several modules does not redo the work."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from nanogfl.runtime.coco_names import COCO_CLASSES
from nanogfl.runtime.metadata import ModelMeta

TINY_INPUT_HW = (128, 160)  # small and non-square, so a height/width mix-up shows
_cache: dict[str, object] = {}


def _session_dir(tmp_path_factory, name: str) -> Path:
    path = tmp_path_factory.getbasetemp() / f"runtime_{name}"
    path.mkdir(exist_ok=True)
    return path


def official_meta(input_hw=(416, 416)) -> ModelMeta:
    return ModelMeta(class_names=list(COCO_CLASSES), input_hw=tuple(input_hw), class_activation="none")


@pytest.fixture
def official_model(official_ncnn, tmp_path_factory) -> Path:
    """The official NanoDet-Plus-m 416 ncnn model, linked into a temp folder with a metadata json beside it."""
    if "official_model" not in _cache:
        folder = _session_dir(tmp_path_factory, "official")
        for source in (official_ncnn, official_ncnn.with_suffix(".bin")):
            link = folder / source.name
            if not link.exists():
                link.symlink_to(source)
        official_meta().save(folder / official_ncnn.with_suffix(".json").name)
        _cache["official_model"] = folder / official_ncnn.name
    return _cache["official_model"]


@pytest.fixture
def coco_images(coco_val) -> list[Path]:
    """A few real COCO val images that contain objects (the same ones every time)."""
    ann_file, image_dir = coco_val
    return sorted(image_dir.glob("*.jpg"))[:4]


@pytest.fixture
def official_outputs(official_model, coco_images) -> list[tuple[np.ndarray, np.ndarray]]:
    """(output with class probabilities [3598, 112], numpy-decoded boxes [3598, 4]) on real COCO images."""
    if "official_outputs" not in _cache:
        import cv2

        from nanogfl.runtime.backends import open_model
        from nanogfl.runtime.decode import decode_output, make_priors
        from nanogfl.runtime.preprocess import preprocess

        backend = open_model(official_model, threads=1)
        priors = make_priors(backend.meta.input_hw, backend.meta.strides)
        results = []
        for path in coco_images[:3]:
            blob, _ = preprocess(cv2.imread(str(path)), backend.meta.input_hw)
            output = backend.forward(blob)
            boxes, _ = decode_output(output, 80, 7, priors, backend.meta.input_hw)
            results.append((output, boxes))
        _cache["official_outputs"] = results
    return _cache["official_outputs"]


def export_tiny_onnx(folder: Path, input_hw=TINY_INPUT_HW, num_classes: int = 3) -> Path:
    """A randomly initialised NanoDet-Plus-m exported like the real exporter would (test fixture only), plus
    its metadata json and a matching checkpoint ``tiny.pt``."""
    import torch

    from nanogfl.checkpoint import Checkpoint, save_checkpoint
    from nanogfl.config import Config
    from nanogfl.model import deploy_model, nanodet_plus_m

    torch.manual_seed(0)
    model = nanodet_plus_m(num_classes, with_aux=False).eval()
    with torch.no_grad():  # random but non-trivial BN statistics, so folding BN is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    cfg = Config()
    cfg.model.input_size = list(input_hw)
    save_checkpoint(folder / "tiny.pt", Checkpoint(model=model.state_dict(), config=cfg.to_dict(),
                                                   class_names=[f"class{i}" for i in range(num_classes)],
                                                   aux_trained=True))
    onnx_path = folder / "tiny.onnx"
    deploy = deploy_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter announces its deprecation
        torch.onnx.export(deploy, torch.zeros(1, 3, *input_hw), str(onnx_path), dynamo=False, opset_version=11,
                          input_names=["data"], output_names=["output"])
    ModelMeta(class_names=[f"class{i}" for i in range(num_classes)], input_hw=tuple(input_hw)).save(
        onnx_path.with_suffix(".json"))
    return onnx_path


@pytest.fixture
def tiny_onnx(tmp_path_factory) -> Path:
    pytest.importorskip("torch", reason="the tiny ONNX test model is exported with torch")
    pytest.importorskip("onnxruntime")
    if "tiny_onnx" not in _cache:
        _cache["tiny_onnx"] = export_tiny_onnx(_session_dir(tmp_path_factory, "tiny"))
    return _cache["tiny_onnx"]


def read_json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
