"""The NanoDet-scale family members beside NanoDet-Plus: NanoDet-m (PAN, ATSS, cell-centre priors) and the
GFLV2 quality predictor on a GFL head (joint score in training and deploy). Each trains: its loss falls."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nanogfl.config import load_config
from nanogfl.data.coco import CocoSource
from nanogfl.model.build import build_criterion, build_detector
from nanogfl.model.deploy import deploy_model
from nanogfl.model.heads.quality import joint_score_logits
from nanogfl.model.losses import quality_focal_loss
from nanogfl.model.necks import PAN
from nanogfl.runtime.preprocess import preprocess

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_pan_is_laterals_plus_bilinear_sums():
    torch.manual_seed(0)
    neck = PAN((4, 6, 8), 5)
    features = [torch.randn(1, 4, 16, 16), torch.randn(1, 6, 8, 8), torch.randn(1, 8, 4, 4)]
    lat = [conv(f) for conv, f in zip(neck.laterals, features)]
    top2 = lat[2]
    top1 = lat[1] + F.interpolate(top2, size=(8, 8), mode="bilinear")
    top0 = lat[0] + F.interpolate(top1, size=(16, 16), mode="bilinear")
    out1 = top1 + F.avg_pool2d(top0, 2)  # bilinear x0.5 of an even map is the 2x2 mean
    out2 = top2 + F.avg_pool2d(out1, 2)
    for got, expected in zip(neck(features), (top0, out1, out2)):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_dgqp_joint_score_in_training_and_deploy():
    cfg = load_config(CONFIGS / "nanodet-plus-m-gflv2_320.yml")
    torch.manual_seed(0)
    model = build_detector(cfg.model, 80, with_aux=False).eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        raw = model.head(model.neck(model.backbone(images)))  # what training sees: joint-score logits
        plain = model.head.predictors  # class logits without the quality factor
        features = model.neck(model.backbone(images))
        cls = torch.cat([p(t(f)).flatten(2) for f, t, p in zip(features, model.head.towers, plain)], 2)
        cls = cls.permute(0, 2, 1)[..., :80]
        quality = model.head.quality(raw[..., 80:]).sigmoid()
        deployed = deploy_model(model)(images)
    joint = cls.sigmoid() * quality
    torch.testing.assert_close(raw[..., :80].sigmoid(), joint, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(deployed[..., :80], joint, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(deployed[..., 80:], raw[..., 80:])


def test_qfl_on_joint_logits_is_gflv2s_qfl_on_the_joint_probability():
    torch.manual_seed(0)
    cls, quality = torch.randn(50, 6) * 4, torch.randn(50, 1) * 3
    labels = torch.randint(-1, 6, (50,))
    soft = torch.rand(50)
    ours = quality_focal_loss(joint_score_logits(cls, quality), labels, soft)
    p = cls.sigmoid() * quality.sigmoid()  # GFLV2: QFL with probabilities (activated scores)
    target = torch.zeros_like(p)
    positive = labels >= 0
    target[positive, labels[positive]] = soft[positive]
    expected = (F.binary_cross_entropy(p, target, reduction="none") * (target - p).abs().pow(2)).sum(dim=1)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("config", ["nanodet-m_320", "nanodet-plus-m-gflv2_320"])
def test_loss_falls_over_a_short_run(config, coco_train):
    cfg = load_config(CONFIGS / f"{config}.yml")
    input_hw = (128, 128)
    dataset = CocoSource(*coco_train)
    torch.manual_seed(0)
    model = build_detector(cfg.model, len(dataset.class_names), with_aux=False).train()
    criterion = build_criterion(cfg.model, len(dataset.class_names))
    images, boxes, labels = [], [], []
    for index in range(4):
        record = dataset.load(index)
        blob, matrix = preprocess(record.image, input_hw)
        images.append(torch.from_numpy(blob))
        scaled = torch.from_numpy(record.boxes).float() * torch.tensor([matrix[0, 0], matrix[1, 1]] * 2).float()
        boxes.append(scaled)
        labels.append(torch.from_numpy(record.labels))
    batch = torch.cat(images)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        main, aux = model.forward_train(batch, epoch=0)
        loss, _ = criterion(main, aux, boxes, labels, input_hw, assign_with_aux=aux is not None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses
