"""A keep-ratio model (the server-size GFL) exports to ONNX with a free input size, verified against PyTorch on
real images of different sizes, and runs through the runtime at each image's own size."""
from __future__ import annotations

import pytest
import torch

from nanogfl.checkpoint import Checkpoint, save_checkpoint
from nanogfl.config import load_config
from nanogfl.errors import UserError
from nanogfl.exporter.pipeline import ExportOptions, export_checkpoint
from nanogfl.image_io import load_image
from nanogfl.model.build import build_detector
from nanogfl.runtime.backends import open_model
from nanogfl.runtime.detector import Detector
from nanogfl.runtime.preprocess import prepare_input


@pytest.fixture(scope="module")
def keep_ratio_checkpoint(tmp_path_factory):
    cfg = load_config("configs/gflv2_r50_fpn_1x.yml", ["model.keep_ratio_scale=[64, 96]", "model.input_size=[64, 96]"])
    torch.manual_seed(0)
    model = build_detector(cfg.model, 3)
    path = tmp_path_factory.mktemp("dynamic") / "gfl.pt"
    save_checkpoint(path, Checkpoint(model=model.state_dict(), config=cfg.to_dict(), class_names=["a", "b", "c"],
                                     aux_trained=False))
    return path


def test_dynamic_onnx_is_verified_and_runs_at_each_images_size(keep_ratio_checkpoint, coco_val, tmp_path):
    _, images = coco_val
    shapes = {}
    for path in sorted(images.iterdir()):
        shapes.setdefault(load_image(path).shape[:2], path)
        if len(shapes) == 2:
            break
    chosen = tmp_path / "verify"
    chosen.mkdir()
    for path in shapes.values():
        (chosen / path.name).symlink_to(path)
    result = export_checkpoint(keep_ratio_checkpoint, tmp_path / "out",
                               ExportOptions(formats=("onnx",), dynamic=True, verify_images=str(chosen)),
                               log=lambda _: None)
    assert [p.ok for p in result.parity] == [True]
    onnx_path = next(p for p in result.files if p.suffix == ".onnx")
    assert onnx_path.name == "gfl-r50-gflv2_dynamic.onnx"
    backend = open_model(onnx_path)
    assert backend.meta.keep_ratio_scale == [64, 96]
    frames = [load_image(p) for p in shapes.values()]
    sizes = {prepare_input(frame, backend.meta)[0].shape for frame in frames}
    assert len(sizes) == 2  # two different input sizes through one file
    for frame in frames:
        Detector(backend, score_threshold=0.0)(frame)


def test_dynamic_is_onnx_only(keep_ratio_checkpoint, tmp_path):
    with pytest.raises(UserError, match="ONNX only"):
        export_checkpoint(keep_ratio_checkpoint, tmp_path, ExportOptions(formats=("onnx", "ncnn"), dynamic=True))
