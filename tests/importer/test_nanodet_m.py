"""The legacy NanoDet-m: its three published files import exactly, score their reference AP, and export again
as one-tensor models whose metadata carries the cell-centre prior offset."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nanogfl.checkpoint import load_model
from nanogfl.cli import main
from nanogfl.contract import BGR_MEAN, BGR_STD
from nanogfl.engine.torch_backend import TorchBackend
from nanogfl.evaluation import evaluate_coco
from nanogfl.exporter.pipeline import ExportOptions, export_checkpoint
from nanogfl.importer.convert import read_source
from nanogfl.importer.pipeline import image_batches
from nanogfl.importer.verify import open_source
from nanogfl.model.deploy import DeployModel
from nanogfl.runtime.backends import open_model
from nanogfl.runtime.coco_names import COCO_CLASSES

# file under ../shared/data, input size, AP / AP50 of the reference decode on coco_val2017_subset206 (SOURCE.txt)
FILES = {
    "ncnn-320": ("nanodet_m_ncnn/nanodet_m.param", 320, 0.233, 0.380),
    "ncnn-416": ("nanodet_m_ncnn/nanodet-m-416.param", 416, 0.249, 0.404),
    "onnx-320": ("nanodet_m_onnx/nanodet-m_320.onnx", 320, 0.227, 0.376),
}
AP_TOLERANCE = 0.003
STRIDES = (8, 16, 32)


@pytest.fixture(scope="module")
def imported(shared_data, tmp_path_factory):
    """name -> (source file, checkpoint) for the three published files, imported with the CLI."""
    out_dir = tmp_path_factory.mktemp("nanodet_m")
    result = {}
    for name, (relative, size, _, _) in FILES.items():
        out = out_dir / f"{name}.pt"
        assert main(["import", "--model", str(shared_data / relative), "--arch", "nanodet-m", "--size", str(size),
                     "--out", str(out)]) == 0
        result[name] = (shared_data / relative, out)
    return result


@pytest.mark.parametrize("name", list(FILES))
def test_published_file_imports_and_matches_the_file_on_a_real_image(name, imported, coco_val):
    source, weights = imported[name]
    size = FILES[name][1]
    model, cfg, class_names = load_model(weights)
    assert cfg.model.arch == "nanodet-m" and cfg.model.head.prior_offset == 0.5 and model.aux_head is None
    assert class_names == list(COCO_CLASSES)
    image = sorted(coco_val[1].glob("*.jpg"))[:1]
    blob = next(image_batches(image, (size, size), BGR_MEAN, BGR_STD)).numpy()
    theirs = open_source(read_source(source), class_names, (size, size), STRIDES, 7).forward(blob)
    with torch.no_grad():
        ours = DeployModel(model)(torch.from_numpy(blob))[0].numpy()
    assert ours.shape == theirs.shape == (sum((size // s) ** 2 for s in STRIDES), 80 + 32)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_imported_model_scores_the_reference_ap(imported, coco_val):
    """One of the three here (minutes on 2 cores); ``make e2e`` scores all three."""
    name = "ncnn-320"
    _, weights = imported[name]
    _, _, ap, ap50 = FILES[name]
    metrics = evaluate_coco(TorchBackend(weights), *coco_val)
    assert metrics["AP"] == pytest.approx(ap, abs=AP_TOLERANCE)
    assert metrics["AP50"] == pytest.approx(ap50, abs=AP_TOLERANCE)


def test_export_is_one_tensor_with_the_prior_offset_and_decodes_like_the_checkpoint(imported, coco_val, tmp_path):
    _, weights = imported["ncnn-320"]
    result = export_checkpoint(weights, tmp_path, ExportOptions(verify_images=str(coco_val[1])), log=lambda _: None)
    assert all(p.ok for p in result.parity)
    meta = json.loads((tmp_path / "nanodet-m_320x320.json").read_text())
    assert meta["prior_offset"] == 0.5 and meta["strides"] == [8, 16, 32] and meta["split_outputs"] == []
    torch_ap = evaluate_coco(TorchBackend(weights), *coco_val, max_images=30)["AP"]
    backend = open_model(tmp_path / "nanodet-m_320x320.param", threads=1)
    assert evaluate_coco(backend, *coco_val, max_images=30)["AP"] == pytest.approx(torch_ap, abs=0.002)
