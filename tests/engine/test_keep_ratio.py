"""Keep-ratio training and evaluation (the server-size GFL recipe): per-image resize within [short, long],
batches padded to a multiple of 32, padding never a positive nor a negative, the same resize at evaluation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from helpers import tiny_coco

from nanogfl.checkpoint import load_model
from nanogfl.config import load_config
from nanogfl.config.schema import AugmentConfig
from nanogfl.data.loader import collate
from nanogfl.data.transforms import KeepRatioTrainTransform
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.torch_backend import TorchBackend
from nanogfl.engine.train import Trainer
from nanogfl.model.assigners import ATSSAssigner, pad_targets
from nanogfl.model.box_ops import make_priors
from nanogfl.model.criterion import valid_priors
from nanogfl.runtime.detector import Detector
from nanogfl.runtime.preprocess import keep_ratio_size, preprocess_keep_ratio


def test_keep_ratio_size_is_mmdetections():
    assert keep_ratio_size((480, 640), (800, 1333)) == (800, 1067)  # short side limits
    assert keep_ratio_size((640, 480), (800, 1333)) == (1067, 800)  # orientation does not matter
    assert keep_ratio_size((300, 1500), (800, 1333)) == (267, 1333)  # long side limits
    blob, matrix = preprocess_keep_ratio(np.zeros((480, 640, 3), np.uint8), (800, 1333))
    assert blob.shape == (1, 3, 800, 1088) and matrix[0, 0] == pytest.approx(1067 / 640)


def test_transform_resizes_flips_and_maps_boxes():
    augment = AugmentConfig(scale=[1.0, 1.0], flip=1.0, brightness=0.0, contrast=[1, 1], saturation=[1, 1])
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, :10] = 255  # a white stripe on the left
    out, boxes, labels, _ = KeepRatioTrainTransform((800, 1333), augment)(
        image, np.array([[0.0, 0.0, 64.0, 48.0]]), np.array([3]), np.random.default_rng(0))
    assert out.shape == (3, 800, 1067) and out[:, :, -5].mean() > out[:, :, 5].mean()  # flipped to the right
    np.testing.assert_allclose(boxes, [[1067 - 1067 / 10, 0, 1067, 80]], atol=0.01)
    assert labels.tolist() == [3]


def test_collate_pads_to_a_multiple_of_32_and_records_each_valid_size():
    items = [{"image": torch.ones(3, 70, 100), "boxes": torch.zeros(0, 4), "labels": torch.zeros(0), "image_id": 1},
             {"image": torch.ones(3, 40, 130), "boxes": torch.zeros(0, 4), "labels": torch.zeros(0), "image_id": 2}]
    batch = collate(items)
    assert batch["images"].shape == (2, 3, 96, 160) and batch["image_hw"] == [(96, 128), (64, 160)]
    assert batch["images"][0, :, 70:].abs().sum() == 0 and batch["images"][1, :, :40, :130].min() == 1


def test_padding_is_never_a_positive():
    input_hw, strides = (128, 128), (8, 16, 32, 64, 128)
    priors = make_priors(input_hw, strides)
    valid = valid_priors(priors, [(128, 128), (64, 64)], input_hw)
    assert valid[0].all() and valid[1].sum() == 8 * 8 + 4 * 4 + 2 * 2 + 1 + 1
    box = torch.tensor([[30.0, 30.0, 90.0, 90.0]])  # straddles the second image's edge
    boxes, labels, gt_valid = pad_targets([box, box], [torch.tensor([0]), torch.tensor([0])], "cpu")
    pred = torch.zeros(2, len(priors), 4)
    assignment = ATSSAssigner(9, 8.0).assign_batch(None, priors, pred, boxes, labels, gt_valid, valid)
    assert assignment.labels[1][~valid[1]].eq(-1).all() and (assignment.labels[1] == 0).any()
    assert valid_priors(priors, [(128, 128)] * 2, input_hw) is None  # nothing padded: no mask at all


def test_trains_and_evaluates_keep_ratio(tmp_path, coco_train):
    ann, images = coco_train
    data = yaml.safe_load(open("configs/gflv2_r50_fpn_1x.yml"))
    data["model"].update(keep_ratio_scale=[64, 96], input_size=[64, 96])
    tiny = str(tiny_coco(ann, tmp_path / "d", 4))
    data["data"] = {"train": {"format": "coco", "ann": tiny, "images": str(images)},
                    "val": {"format": "coco", "ann": tiny, "images": str(images)}, "workers": 0}
    data["train"].update(epochs=1, batch_size=2, warmup_steps=1, val_interval=1)
    data["output_dir"] = str(tmp_path / "run")
    (tmp_path / "gfl.yml").write_text(yaml.safe_dump(data))
    torch.manual_seed(0)
    metrics = Trainer(load_config(tmp_path / "gfl.yml"), torch.device("cpu"), DistInfo()).fit()
    assert "AP" in metrics
    _, loaded, _ = load_model(tmp_path / "run/last.pt")
    backend = TorchBackend(tmp_path / "run/last.pt")
    assert loaded.model.keep_ratio_scale == [64, 96] and backend.meta.keep_ratio_scale == [64, 96]
    detector = Detector(backend, score_threshold=0.0)
    detections = detector(np.zeros((120, 200, 3), np.uint8))  # 58x96 -> a 64x96 input, decoded at that size
    assert len(detections) > 0 and detections.boxes[:, 2].max() <= 200


def test_top_k_per_level_keeps_each_levels_best_pairs():
    from nanogfl.runtime.postprocess import top_k_per_level

    scores = np.array([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6], [0.5, 0.1]])  # rows 0-2: level 0, row 3: level 1
    kept = top_k_per_level(scores, np.array([0, 1, 2, 5]), np.array([0, 4]), k=2, score_threshold=0.25)
    assert kept.tolist() == [[0.9, 0.0], [0.8, 0.0], [0.0, 0.0], [0.5, 0.1]]  # below the threshold: NMS drops it
