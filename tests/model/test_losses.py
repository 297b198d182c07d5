import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nanogfl.model import nanodet_plus_m
from nanogfl.model.assigners import DynamicSoftLabelAssigner
from nanogfl.model.criterion import GFLCriterion
from nanogfl.model.losses import distribution_focal_loss, giou_loss, quality_focal_loss, reduce_mean


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def bce_logits(x: float, t: float) -> float:
    return math.log(1 + math.exp(x)) - t * x


def test_quality_focal_loss_matches_hand_value():
    # prior 0: class 0 positive with soft label 0.6, class 1 negative; prior 1: background (label -1);
    # prior 2: class 1 positive with soft label 0.9 and a confident logit
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5], [-3.0, 4.0]])
    expected = [bce_logits(0.0, 0.6) * (0.6 - 0.5) ** 2 + bce_logits(2.0, 0.0) * sigmoid(2.0) ** 2,
                bce_logits(-1.0, 0.0) * sigmoid(-1.0) ** 2 + bce_logits(0.5, 0.0) * sigmoid(0.5) ** 2,
                bce_logits(-3.0, 0.0) * sigmoid(-3.0) ** 2 + bce_logits(4.0, 0.9) * (0.9 - sigmoid(4.0)) ** 2]
    loss = quality_focal_loss(logits, torch.tensor([0, -1, 1]), torch.tensor([0.6, 0.0, 0.9]))
    assert loss.tolist() == pytest.approx(expected, rel=1e-5)


def test_quality_focal_loss_gradient_matches_the_dense_formula():
    # the sparse positive correction must give the same values and gradients as the dense one-hot target
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(50, 4, generator=generator) * 3).requires_grad_(True)
    labels = torch.randint(-1, 4, (50,), generator=generator)
    soft = torch.rand(50, generator=generator) * (labels >= 0)
    dense_target = torch.zeros(50, 4)
    dense_target[(labels >= 0).nonzero().squeeze(1), labels[labels >= 0]] = soft[labels >= 0]
    dense = (torch.nn.functional.binary_cross_entropy_with_logits(logits, dense_target, reduction="none")
             * (dense_target - logits.sigmoid()).abs().pow(2)).sum(-1)
    dense_grad, = torch.autograd.grad(dense.sum(), logits)
    sparse = quality_focal_loss(logits, labels, soft)
    sparse_grad, = torch.autograd.grad(sparse.sum(), logits)
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sparse_grad, dense_grad, rtol=1e-5, atol=1e-6)


def test_distribution_focal_loss_matches_hand_value():
    # reg_max 3 (4 bins), logits (1, 0, 0, 0): log-softmax = (1, 0, 0, 0) - log(e + 3)
    logits = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    log_z = math.log(math.e + 3)
    expected = [0.75 * (log_z - 1) + 0.25 * log_z,  # target 0.25: 3/4 on bin 0, 1/4 on bin 1
                0.4 * log_z + 0.6 * log_z]  # target 2.6: 0.4 on bin 2, 0.6 on bin 3
    assert distribution_focal_loss(logits, torch.tensor([0.25, 2.6])).tolist() == pytest.approx(expected, rel=1e-5)


def test_giou_loss_matches_hand_value():
    # [0,0,2,2] vs [1,1,3,3]: inter 1, union 7, enclosing 3x3 -> GIoU = 1/7 - 2/9; identical boxes -> 0
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 5.0, 4.0]])
    target = torch.tensor([[1.0, 1.0, 3.0, 3.0], [1.0, 1.0, 5.0, 4.0]])
    assert giou_loss(pred, target).tolist() == pytest.approx([1 - (1 / 7 - 2 / 9), 0.0], abs=1e-6)


def test_reduce_mean_is_identity_without_distributed():
    assert reduce_mean(torch.tensor(3.0)).item() == 3.0


NUM_CLASSES, REG_MAX = 2, 3
BINS = REG_MAX + 1


def tiny_predictions(class_logits: list[list[float]], bin_logit: float = 0.0) -> torch.Tensor:
    """Four priors of a 16x16 input at stride 8: (0,0), (8,0), (0,8), (8,8); every box bin logit equal, so
    each side decodes to the mean bin (1.5) * 8 = 12 px."""
    box = torch.full((4, 4 * BINS), bin_logit)
    return torch.cat([torch.tensor(class_logits), box], dim=1)[None]


def test_criterion_matches_hand_computation_on_a_tiny_case():
    # GT [4, 4, 20, 20] of class 1 contains only prior (8, 8). Every prediction decodes to a 24x24 box centred
    # on its prior, so prior 3 predicts [-4, -4, 20, 20]: IoU with the GT = 256 / 576 = 4/9. k = 1 -> prior 3
    # is the only positive with soft label 4/9.
    logits = [[-2.0, -3.0], [0.5, -1.0], [-1.0, 1.0], [0.0, 0.3]]
    preds = tiny_predictions(logits)
    criterion = GFLCriterion(DynamicSoftLabelAssigner(), NUM_CLASSES, reg_max=REG_MAX, strides=(8,))
    total, terms = criterion(preds, None, [torch.tensor([[4.0, 4.0, 20.0, 20.0]])], [torch.tensor([1])], (16, 16))
    assert terms["num_pos"].item() == 1
    soft = 4 / 9
    qfl = sum(bce_logits(x, 0.0) * sigmoid(x) ** 2 for row in logits[:3] for x in row)
    qfl += bce_logits(0.0, 0.0) * 0.5 ** 2 + bce_logits(0.3, soft) * (soft - sigmoid(0.3)) ** 2
    assert terms["qfl"].item() == pytest.approx(qfl, rel=1e-5)  # one positive: normaliser 1
    # weight w = max sigmoid score of prior 3 = sigmoid(0.3) < 1, so the normaliser is max(w, 1) = 1
    weight = sigmoid(0.3)
    giou = 256 / 576  # pred contains the GT: enclosing box = union = pred, so GIoU = IoU
    assert terms["giou"].item() == pytest.approx(2.0 * weight * (1 - giou), rel=1e-5)
    # DFL targets: prior (8, 8) to GT sides (4, 4, 12, 12) px / 8 = (0.5, 0.5, 1.5, 1.5); uniform bins: the
    # cross-entropy of every bin is log(4), so each side costs log(4); sum 4 * w * log 4 / (4 * 1)
    assert terms["dfl"].item() == pytest.approx(0.25 * weight * math.log(4), rel=1e-5)
    assert total.item() == pytest.approx(float(terms["qfl"] + terms["giou"] + terms["dfl"]), rel=1e-6)


def test_criterion_without_gt_keeps_negatives_and_a_connected_graph():
    logits = [[-2.0, -3.0], [0.5, -1.0], [-1.0, 1.0], [0.0, 0.3]]
    preds = tiny_predictions(logits).requires_grad_(True)
    criterion = GFLCriterion(DynamicSoftLabelAssigner(), NUM_CLASSES, reg_max=REG_MAX, strides=(8,))
    total, terms = criterion(preds, preds, [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)], (16, 16))
    qfl = sum(bce_logits(x, 0.0) * sigmoid(x) ** 2 for row in logits for x in row)  # normaliser max(0, 1)
    assert terms["qfl"].item() == pytest.approx(qfl, rel=1e-5)
    assert terms["aux_qfl"].item() == pytest.approx(qfl, rel=1e-5)
    for name in ("giou", "dfl", "aux_giou", "aux_dfl", "num_pos"):
        assert terms[name].item() == 0.0
    total.backward()
    assert preds.grad is not None and preds.grad[..., :NUM_CLASSES].abs().sum() > 0


def test_dfl_targets_are_clamped_below_reg_max():
    # GT [-100, -100, 100, 100] contains all four priors; every prior predicts the same (class logits (-5, 0),
    # bins peaked on the last one), so all costs tie and k = int(4 * IoU) = 1: one positive, weight
    # sigmoid(0) = 0.5 (normaliser max(0.5, 1) = 1). Each side is >= 92 px / 8 = 11.5 bins from the prior, clamped
    # to reg_max - 0.1 = 2.9: 0.1 of the CE on bin 2 plus 0.9 of the CE on bin 3.
    preds = tiny_predictions([[-5.0, 0.0]] * 4)
    preds[0, :, NUM_CLASSES:] = torch.tensor([0.0, 0.0, 0.0, 10.0] * 4)
    criterion = GFLCriterion(DynamicSoftLabelAssigner(), NUM_CLASSES, reg_max=REG_MAX, strides=(8,))
    _, terms = criterion(preds, None, [torch.tensor([[-100.0, -100.0, 100.0, 100.0]])], [torch.tensor([1])],
                         (16, 16))
    assert terms["num_pos"].item() == 1
    log_z = math.log(3 + math.exp(10.0))
    per_side = 0.1 * log_z + 0.9 * (log_z - 10.0)
    assert terms["dfl"].item() == pytest.approx(0.25 * 0.5 * per_side, rel=1e-4)


def test_criterion_rejects_wrong_shapes_and_labels():
    criterion = GFLCriterion(DynamicSoftLabelAssigner(), NUM_CLASSES, reg_max=REG_MAX, strides=(8,))
    preds = tiny_predictions([[0.0, 0.0]] * 4)
    with pytest.raises(ValueError, match="expected"):
        criterion(preds, None, [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)], (32, 32))
    with pytest.raises(ValueError, match="labels"):
        criterion(preds, None, [torch.tensor([[0.0, 0.0, 9.0, 9.0]])], [torch.tensor([2])], (16, 16))


def test_criterion_gradient_on_the_real_model_is_finite_and_nonzero():
    torch.manual_seed(0)
    model = nanodet_plus_m(num_classes=3)
    preds, aux_preds = model.forward_train(torch.randn(2, 3, 64, 64), epoch=0)
    criterion = GFLCriterion(DynamicSoftLabelAssigner(), 3, reg_max=7, strides=(8, 16, 32, 64))
    gt_boxes = [torch.tensor([[4.0, 6.0, 40.0, 50.0], [30.0, 20.0, 62.0, 60.0]]),
                torch.tensor([[-20.0, -20.0, -5.0, -5.0]])]  # second image: a GT outside the input
    total, terms = criterion(preds, aux_preds, gt_boxes, [torch.tensor([0, 2]), torch.tensor([1])], (64, 64))
    assert set(terms) == {"qfl", "giou", "dfl", "aux_qfl", "aux_giou", "aux_dfl", "num_pos"}
    assert terms["num_pos"].item() > 0 and torch.isfinite(total)
    total.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    for part in ("head.predictors", "aux_head.cls_out", "aux_head.reg_out", "backbone"):
        assert sum(g.abs().sum() for n, g in grads.items() if n.startswith(part) and g is not None) > 0


def test_criterion_runs_in_float32_under_autocast():
    preds = tiny_predictions([[0.0, 0.3]] * 4).to(torch.bfloat16)
    criterion = GFLCriterion(DynamicSoftLabelAssigner(), NUM_CLASSES, reg_max=REG_MAX, strides=(8,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, terms = criterion(preds, preds, [torch.tensor([[4.0, 4.0, 20.0, 20.0]])], [torch.tensor([1])],
                                 (16, 16))
    assert total.dtype == torch.float32 and all(v.dtype == torch.float32 for v in terms.values())


@settings(max_examples=40, deadline=None)
@given(gt=st.lists(st.lists(st.floats(-50, 100, allow_nan=False), min_size=4, max_size=4), max_size=5),
       seed=st.integers(0, 2 ** 16))
def test_criterion_is_finite_for_any_boxes_in_a_sane_range(gt, seed):
    # degenerate (x2 < x1, zero area), outside and overlapping GTs: loss and gradient stay finite
    generator = torch.Generator().manual_seed(seed)
    preds = (torch.randn(2, 4, NUM_CLASSES + 4 * BINS, generator=generator) * 3).requires_grad_(True)
    boxes = torch.tensor(gt, dtype=torch.float32).reshape(-1, 4)
    labels = torch.randint(0, NUM_CLASSES, (len(boxes),), generator=generator)
    criterion = GFLCriterion(DynamicSoftLabelAssigner(), NUM_CLASSES, reg_max=REG_MAX, strides=(8,))
    total, terms = criterion(preds, preds * 0.5, [boxes, boxes[:1]], [labels, labels[:1]], (16, 16))
    assert all(torch.isfinite(v) for v in terms.values())
    total.backward()
    assert torch.isfinite(preds.grad).all()
