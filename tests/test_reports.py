"""Pictures and tables of an evaluation: the confusion matrix, precision-recall curves, training curves, and
`nanogfl val --out` / `--config` on a YOLO-format dataset."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml
from helpers import export_tiny_onnx

from nanogfl.cli import main
from nanogfl.confusion import ConfusionMatrix
from nanogfl.evaluation import evaluate_detections

pytest.importorskip("matplotlib", reason="plots need matplotlib (the train extra)")
from nanogfl.plots import save_confusion_matrix, save_pr_curves, save_training_curves  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_counts_hits_confusions_misses_and_false_detections():
    cm = ConfusionMatrix(num_classes=2)
    gt_boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32)
    gt_labels = np.array([0, 1, 1])
    boxes = np.array([[0, 0, 10, 11],      # hits GT 0 as class 0
                      [20, 20, 30, 30],    # hits GT 1 but says class 0
                      [0, 0, 10, 10],      # GT 0 is taken: a false detection of class 1
                      [80, 80, 90, 90],    # nothing there: false detection of class 0
                      [50, 50, 60, 60]], np.float32)  # below the score threshold: ignored, GT 2 is missed
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    labels = np.array([0, 0, 1, 0, 1])
    cm.update(gt_boxes, gt_labels, boxes, scores, labels)
    expected = np.array([[1, 0, 0],
                         [1, 0, 1],
                         [1, 1, 0]])
    np.testing.assert_array_equal(cm.matrix, expected)
    cm.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)), np.zeros(0), np.zeros(0))  # empty image
    assert cm.matrix.sum() == expected.sum()


def test_pr_curves_of_perfect_detections_are_flat_at_one():
    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 30, 30], "area": 900,
                           "iscrowd": 0}],
          "categories": [{"id": 3, "name": "cat"}, {"id": 5, "name": "dog"}]}
    metrics = evaluate_detections(gt, [{"image_id": 1, "category_id": 3, "bbox": [10, 10, 30, 30], "score": 0.9}],
                                  verbose=False, with_curves=True)
    assert metrics["pr_curves"]["cat"] == [1.0] * 101
    assert set(metrics["pr_curves"]["dog"]) == {-1.0}  # no ground truth of that class


def test_plots_write_pngs_atomically(tmp_path):
    metrics = tmp_path / "metrics.csv"
    with open(metrics, "w", newline="") as f:
        writer = csv.DictWriter(f, ["epoch", "loss", "qfl", "AP", "AP50"])
        writer.writeheader()
        writer.writerows([{"epoch": 1, "loss": 3.0, "qfl": 1.0, "AP": "", "AP50": ""},
                          {"epoch": 2, "loss": 2.5, "qfl": 0.8, "AP": 0.1, "AP50": 0.2}])
    written = [save_training_curves(metrics, tmp_path / "curves.png"),
               save_pr_curves({"a": [1.0] * 50 + [0.0] * 51, "b": [-1.0] * 101}, tmp_path / "pr.png"),
               save_confusion_matrix(np.eye(3, dtype=int), ["a", "b"], tmp_path / "cm.png")]
    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png", "curves.png", "metrics.csv", "pr.png"]


def test_val_takes_a_yolo_set_from_a_config_and_writes_plots(coco_val, tmp_path):
    model = export_tiny_onnx(tmp_path)
    labels, images = tmp_path / "labels", tmp_path / "images"
    labels.mkdir()
    images.mkdir()
    for i, image in enumerate(sorted(coco_val[1].glob("*.jpg"))[:3]):
        (images / image.name).symlink_to(image)
        (labels / f"{image.stem}.txt").write_text(f"{i % 3} 0.5 0.5 0.4 0.3\n")
    (labels / "data.yaml").write_text(yaml.safe_dump({"names": ["class0", "class1", "class2"]}))
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"data": {"val": {"format": "yolo", "ann": str(labels), "images": str(images)}}}))
    out = tmp_path / "report"
    assert main(["val", "--model", str(model), "--config", str(config), "--out", str(out), "--json",
                 str(tmp_path / "m.json")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["confusion_matrix.png", "pr_curves.png"]
    assert (out / "pr_curves.png").read_bytes()[:8] == PNG_MAGIC
