"""The NanoDet-scale family members beside NanoDet-Plus: NanoDet-m (PAN, ATSS, cell-centre priors) and the
GFLV2 quality predictor on a GFL head (joint score in training and deploy). Each trains: its loss falls."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nanogfl.config import load_config
from nanogfl.data.coco import CocoSource
from nanogfl.model.assigners import pad_targets
from nanogfl.model.box_ops import (
    aligned_giou,
    box_to_distance,
    decode_boxes,
    distribution_to_distance,
    make_priors,
    pairwise_iou,
)
from nanogfl.model.build import build_criterion, build_detector
from nanogfl.model.deploy import deploy_model
from nanogfl.model.heads.quality import joint_score_logits
from nanogfl.model.losses import distribution_focal_loss, quality_focal_loss
from nanogfl.model.necks import PAN
from nanogfl.model.variants import variant_config
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


def official_legacy_loss(preds, assignment, gt_boxes, priors, strides, num_classes, reg_max):
    """NanoDet-m's GFLHead.loss as the official code computes it, level by level in stride units: QFL over
    sum_i max(pos_i, 1), GIoU and DFL over the bare sum of the positives' max class probability."""
    batch, num_priors = preds.shape[:2]
    num_total = max(float(sum(max(int(p.sum()), 1) for p in assignment.positive)), 1.0)
    qfl_sum, giou_sum, dfl_sum, weight_sum = 0.0, 0.0, 0.0, 0.0
    level_of = priors[:, 2]
    for stride in strides:
        in_level = level_of == stride
        cls = preds[:, in_level, :num_classes].reshape(-1, num_classes)
        box = preds[:, in_level, num_classes:].reshape(-1, 4 * (reg_max + 1))
        labels = assignment.labels[:, in_level].reshape(-1)
        gt_index = assignment.gt_index[:, in_level].reshape(-1)
        image = torch.arange(batch)[:, None].expand(-1, int(in_level.sum())).reshape(-1)
        centres = priors[in_level, :2].repeat(batch, 1) / stride
        pos = (labels >= 0).nonzero().squeeze(1)
        score = torch.zeros(len(labels))
        if len(pos):
            targets = torch.stack([gt_boxes[int(image[i])][int(gt_index[i])] for i in pos]) / stride
            weights = cls.detach().sigmoid().max(dim=1).values[pos]
            d = distribution_to_distance(box[pos], reg_max)
            pred_box = torch.cat((centres[pos] - d[:, :2], centres[pos] + d[:, 2:]), dim=1)
            score[pos] = torch.stack([pairwise_iou(pred_box[j:j + 1].detach(), targets[j:j + 1])[0, 0]
                                      for j in range(len(pos))])
            giou_sum = giou_sum + (weights * (1 - aligned_giou(pred_box, targets))).sum()
            corners = box_to_distance(centres[pos], targets).clamp(0, reg_max - 0.1).reshape(-1)
            dfl = distribution_focal_loss(box[pos].reshape(-1, reg_max + 1), corners)
            dfl_sum = dfl_sum + (dfl * weights[:, None].expand(-1, 4).reshape(-1)).sum() / 4.0
            weight_sum += float(weights.sum())
        qfl_sum = qfl_sum + quality_focal_loss(cls, labels, score).sum() / num_total
    return qfl_sum, 2.0 * giou_sum / weight_sum, 0.25 * dfl_sum / weight_sum


def test_nanodet_m_loss_is_the_official_gfl_head_loss_term_by_term():
    input_hw = (64, 96)
    torch.manual_seed(0)
    criterion = build_criterion(variant_config("nanodet-m"), 5)
    priors = make_priors(input_hw, (8, 16, 32), 0.5)
    preds = torch.randn(3, len(priors), 5 + 32) * 2
    preds[..., :5] -= 6.0  # early training: the positives' weights sum to less than 1 (no clamp in NanoDet-m)
    gt_boxes = [torch.tensor([[4.0, 6.0, 40.0, 50.0], [30.0, 10.0, 90.0, 60.0]]),
                torch.tensor([[50.0, 20.0, 70.0, 30.0]]), torch.zeros(0, 4)]  # the last image counts 1 positive
    gt_labels = [torch.tensor([1, 4]), torch.tensor([0]), torch.zeros(0, dtype=torch.long)]
    _, terms = criterion(preds, None, gt_boxes, gt_labels, input_hw)
    boxes, labels, valid = pad_targets(gt_boxes, gt_labels)
    assignment = criterion.assigner.assign_batch(preds[..., :5], priors, decode_boxes(preds[..., 5:], priors, 7),
                                                 boxes, labels, valid)
    assert int(assignment.positive.sum()) > 3
    qfl, giou, dfl = official_legacy_loss(preds, assignment, gt_boxes, priors, (8, 16, 32), 5, 7)
    torch.testing.assert_close(terms["qfl"], torch.as_tensor(qfl, dtype=torch.float32), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(terms["giou"], torch.as_tensor(giou, dtype=torch.float32), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(terms["dfl"], torch.as_tensor(dfl, dtype=torch.float32), rtol=1e-4, atol=1e-6)
