"""The parity check's images: the user's folder, else the checkpoint's val images, else a synthetic frame; the
library never looks for the development workspace."""
from pathlib import Path

import pytest

pytest.importorskip("torch")
from nanogfl.exporter import verify  # noqa: E402


def test_the_users_folder_comes_first(coco_val, tmp_path):
    _, images = coco_val
    found, where = verify.load_verify_images(images, val_images=tmp_path, count=2)
    assert len(found) == 2 and where == f"2 images from {images}"


def test_then_the_checkpoints_val_images(coco_val):
    _, images = coco_val
    found, where = verify.load_verify_images(None, val_images=str(images))
    assert len(found) == 4 and "the checkpoint's val set" in where and str(images) in where


def test_else_one_synthetic_frame_and_it_says_so(tmp_path):
    found, where = verify.load_verify_images(None, val_images=str(tmp_path / "not_here"))
    assert len(found) == 1 and "synthetic" in where and "not here" in where
    assert verify.load_verify_images(None, val_images="")[1] == where


def test_no_path_to_the_workspace_in_the_library():
    source = Path(verify.__file__).read_text()
    assert "shared" not in source and "parents[" not in source
