"""Issue 3.4: an imported official model (BN folded in the file, rebuilt on import) still fine-tunes: a short
low-learning-rate run on the COCO train subset keeps val AP within 0.02 of the imported AP."""
import csv

import pytest
import torch
import yaml
from helpers import tiny_coco

from nanogfl.cli import main as cli
from nanogfl.config import load_config
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.torch_backend import TorchBackend
from nanogfl.engine.train import Trainer
from nanogfl.evaluation import evaluate_coco


def _ap(checkpoint, ann, images):
    return evaluate_coco(TorchBackend(checkpoint, threads=2), ann, images)["AP"]


def test_imported_model_fine_tunes_without_losing_accuracy(tmp_path, official_ncnn, coco_train, coco_val):
    train_ann, train_images = coco_train
    val_ann, val_images = coco_val
    bn_dir = tmp_path / "bn"
    bn_dir.mkdir()
    for path in sorted(train_images.iterdir())[:32]:
        (bn_dir / path.name).symlink_to(path)
    imported = tmp_path / "imported.pt"
    assert cli(["import", str(official_ncnn), "--size", "320", "--out", str(imported),
                "--bn-images", str(bn_dir)]) == 0
    val_subset = tiny_coco(val_ann, tmp_path / "val", num_images=100)
    before = _ap(imported, val_subset, val_images)
    assert before > 0.25  # the official model at 320 on these images

    config = {
        "model": {"arch": "nanodet-plus-m", "input_size": [320, 320]},
        "data": {"train": {"format": "coco", "ann": str(tiny_coco(train_ann, tmp_path / "train", 64)),
                           "images": str(train_images)},
                 "val": {"format": "coco", "ann": str(val_subset), "images": str(val_images)}, "workers": 0},
        "train": {"epochs": 1, "batch_size": 8, "lr": 2e-5, "min_lr": 1e-6, "warmup_steps": 0,
                  "val_interval": 1, "pretrained": str(imported)},
        "output_dir": str(tmp_path / "run"),
    }
    (tmp_path / "ft.yml").write_text(yaml.safe_dump(config))
    trainer = Trainer(load_config(tmp_path / "ft.yml"), torch.device("cpu"), DistInfo())
    assert not trainer.assign_with_aux  # the imported aux head is untrained: the main head guides assignment
    trainer.fit()
    start, after = (float(row["AP"]) for row in csv.DictReader(open(tmp_path / "run/metrics.csv")))
    assert start == pytest.approx(before, abs=1e-3)  # epoch 0: the imported weights, scored in training
    assert after == pytest.approx(before, abs=0.02), (before, after)
