"""``nanogfl data-check``: the summary table, class_histogram.png and --json; a training set without boxes is a
one-line error there and in ``nanogfl train`` (which then writes nothing)."""
import json

import cv2
import numpy as np
import pytest
import yaml

from nanogfl.cli import main


@pytest.fixture()
def config(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(images / f"{name}.jpg"), np.full((48, 64, 3), 127, np.uint8))
    (labels / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n1 0.2 0.2 0.05 0.05\n")
    (labels / "orphan.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    dataset = {"format": "yolo", "ann": str(labels), "images": str(images)}
    cfg = {"model": {"input_size": [64, 64]}, "data": {"train": dataset, "val": dataset, "class_names": ["cat", "dog"],
                                                       "workers": 0},
           "train": {"batch_size": 2, "epochs": 1}, "output_dir": str(tmp_path / "run")}
    path = tmp_path / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_data_check_prints_the_summary_and_writes_the_histogram(config, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["data-check", str(config), "--out", str(tmp_path / "check"), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    header, train_row, val_row = out.splitlines()[:3]
    assert "images without boxes" in header and "labels without image" in header and "boxes < 8x8px at 64x64" in header
    assert train_row.split() == ["train", "2", "2", "1", "0", "1", "1"] and val_row.startswith("val")
    assert "orphan.txt" in out
    png = tmp_path / "check" / "class_histogram.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and cv2.imread(str(png)).shape[0] > 100
    train, val = json.loads((tmp_path / "s.json").read_text())
    assert train["boxes_per_class"] == {"cat": 1, "dog": 1} and train["small_boxes"] == 1 and val["split"] == "val"


def test_no_boxes_is_one_line_in_data_check_and_train(config, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    empty = f"data.train.ann={tmp_path / 'empty'}"
    assert main(["data-check", str(config), "--set", empty, "--out", str(tmp_path / "check")]) == 2
    assert main(["train", str(config), "--set", empty, "--device", "cpu"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert [line.split(": error: ")[0] for line in errors if ": error: " in line] == ["nanogfl data-check",
                                                                                         "nanogfl train"]
    assert all("no boxes in the train set (2 images" in line for line in errors if ": error: " in line)
    assert not (tmp_path / "run").exists()
