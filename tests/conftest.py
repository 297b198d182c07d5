"""Fixtures over the real reference data in ../shared/data (skipped with a reason when it is absent). Expensive
results are cached per session."""
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import export_tiny_onnx, official_meta

os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
_cache: dict[str, object] = {}


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (the ../shared/data folder beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def coco_val(shared_data) -> tuple[Path, Path]:
    root = _require(shared_data / "coco_val2017_subset206")
    return root / "instances_val2017_subset.json", root / "images"


@pytest.fixture(scope="session")
def coco_train(shared_data) -> tuple[Path, Path]:
    root = _require(shared_data / "coco_train2017_subset209")
    return root / "instances_train2017_subset.json", root / "images"


@pytest.fixture(scope="session")
def official_ncnn(shared_data) -> Path:
    """NanoDet-Plus-m 416 official fp16 ncnn .param (class columns are logits)."""
    return _require(shared_data / "nanodet_plus_m_416_ncnn" / "nanodet-plus-m_416.param")


@pytest.fixture(autouse=True, scope="session")
def _limit_threads():
    try:
        import torch
    except ImportError:
        yield
        return
    torch.set_num_threads(2)
    yield


def _session_dir(tmp_path_factory, name: str) -> Path:
    path = tmp_path_factory.getbasetemp() / f"runtime_{name}"
    path.mkdir(exist_ok=True)
    return path


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


@pytest.fixture
def tiny_onnx(tmp_path_factory) -> Path:
    pytest.importorskip("torch", reason="the tiny ONNX test model is exported with torch")
    pytest.importorskip("onnxruntime")
    if "tiny_onnx" not in _cache:
        _cache["tiny_onnx"] = export_tiny_onnx(_session_dir(tmp_path_factory, "tiny"))
    return _cache["tiny_onnx"]
