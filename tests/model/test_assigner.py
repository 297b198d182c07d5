import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nanogfl.model.assigners.dsla import DynamicSoftLabelAssigner, pad_targets, soft_label_cost
from nanogfl.model.box_ops import pairwise_iou


def bce(p: float, t: float) -> float:
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def assign(scores, priors, pred_boxes, gt_boxes, gt_labels):
    """The assigner takes logits; the hand-made cases are easier to read as probabilities."""
    as_tensor = lambda v, dtype=torch.float32: torch.tensor(v, dtype=dtype)  # noqa: E731
    return DynamicSoftLabelAssigner().assign(
        torch.logit(as_tensor(scores)), as_tensor(priors), as_tensor(pred_boxes),
        as_tensor(gt_boxes).reshape(-1, 4), as_tensor(gt_labels, torch.long))


def test_soft_label_cost_matches_hand_value():
    # two classes, scores (0.3, 0.6), GT of class 1 at IoU 0.4: class 0 is a negative (target 0)
    cost = soft_label_cost(torch.logit(torch.tensor([[[0.3, 0.6]]])), torch.tensor([[[0.4]]]), torch.tensor([[1]]))
    expected = bce(0.3, 0.0) * 0.3 ** 2 + bce(0.6, 0.4) * 0.2 ** 2
    assert cost.item() == pytest.approx(expected, rel=1e-5)


def test_soft_label_cost_stays_exact_for_large_logits():
    """NanoDet computes the class cost with BCE-with-logits. Through probabilities it saturates: at logit 20,
    1 - sigmoid(x) rounds to 0 in float32 and log(0) is clamped, so the cost of a confident wrong class is lost."""
    logits = torch.tensor([[[20.0, -30.0]]])  # class 0 confidently on, class 1 (the GT's) confidently off
    cost = soft_label_cost(logits, torch.tensor([[[0.5]]]), torch.tensor([[1]]))
    expected = (F.binary_cross_entropy_with_logits(logits[0, 0], torch.tensor([0.0, 0.5]), reduction="none")
                * (torch.tensor([0.0, 0.5]) - logits[0, 0].sigmoid()) ** 2).sum()
    assert cost.item() == pytest.approx(expected.item(), rel=1e-6)
    assert cost.item() == pytest.approx(20.0 + 15.0 * 0.25, rel=1e-4)  # softplus(20) ~ 20, BCE(-30, 0.5) ~ 15


def test_no_gt_gives_all_background():
    result = assign([[0.5]] * 3, [[0, 0, 8], [8, 0, 8], [16, 0, 8]], [[0, 0, 4, 4]] * 3, [], [])
    assert result.gt_index.tolist() == [-1, -1, -1]
    assert result.labels.tolist() == [-1, -1, -1]
    assert result.ious.tolist() == [0.0, 0.0, 0.0]


def test_no_prior_strictly_inside_any_gt_gives_all_background():
    # the GT's edge passes through prior (8, 0): "strictly inside" excludes it
    result = assign([[0.5]] * 3, [[0, 0, 8], [8, 0, 8], [16, 0, 8]], [[0, -4, 8, 4]] * 3, [[8, -4, 14, 4]], [0])
    assert result.gt_index.tolist() == [-1, -1, -1]


def test_one_gt_takes_the_lowest_cost_candidate():
    # candidates: priors 1 and 2 (inside [4, -4, 20, 4]); prior 1 predicts the GT exactly (IoU 1), prior 2
    # half of it (IoU 0.5). k = max(1, int(1 + 0.5)) = 1.
    # cost(1) = BCE(0.5, 1) * 0.5^2 + 3 * -log(1) = 0.173; cost(2) = BCE(0.5, 0.5) * 0 + 3 * -log(0.5) = 2.08
    priors = [[0, 0, 8], [8, 0, 8], [16, 0, 8], [24, 0, 8]]
    boxes = [[4, -4, 20, 4], [4, -4, 20, 4], [12, -4, 20, 4], [4, -4, 20, 4]]
    result = assign([[0.5]] * 4, priors, boxes, [[4, -4, 20, 4]], [0])
    assert result.gt_index.tolist() == [-1, 0, -1, -1]
    assert result.labels.tolist() == [-1, 0, -1, -1]
    assert result.ious.tolist() == pytest.approx([0, 1, 0, 0], abs=1e-6)


def test_dynamic_k_from_the_sum_of_ious_and_selection_by_cost():
    # four candidates inside GT [0, 0, 10, 10]; predicted boxes inside it with IoU 1.0, 0.8, 0.5, 0.3
    # (area / 100) -> k = int(2.6) = 2. Hand costs (one class):
    #   IoU 1.0, p 0.5:   BCE(0.5, 1.0) * 0.5^2   + 3 * -log(1.0) = 0.173
    #   IoU 0.8, p 0.001: BCE(0.001, 0.8) * 0.799^2 + 3 * -log(0.8) = 3.53 + 0.67 = 4.20
    #   IoU 0.5, p 0.5:   BCE(0.5, 0.5) * 0       + 3 * -log(0.5) = 2.08
    #   IoU 0.3, p 0.3:   BCE(0.3, 0.3) * 0       + 3 * -log(0.3) = 3.61
    # The two lowest costs are priors 0 and 2, although prior 1 has the second best IoU.
    costs = [bce(0.5, 1.0) * 0.25, bce(0.001, 0.8) * 0.799 ** 2 - 3 * math.log(0.8),
             -3 * math.log(0.5), -3 * math.log(0.3)]
    assert sorted(range(4), key=costs.__getitem__)[:2] == [0, 2]
    priors = [[2, 5, 1], [4, 5, 1], [6, 5, 1], [8, 5, 1]]
    boxes = [[0, 0, 10, 10], [0, 0, 10, 8], [0, 0, 10, 5], [0, 0, 10, 3]]
    result = assign([[0.5], [0.001], [0.5], [0.3]], priors, boxes, [[0, 0, 10, 10]], [0])
    assert result.gt_index.tolist() == [0, -1, 0, -1]
    assert result.ious.tolist() == pytest.approx([1.0, 0, 0.5, 0], abs=1e-6)


@pytest.mark.parametrize("scores, winner", [([0.5, 0.5], 0), ([0.01, 0.99], 1)])
def test_prior_claimed_by_two_gts_keeps_the_min_cost_one(scores, winner):
    # prior (5, 5) is the only candidate, inside A = [0, 0, 10, 10] (class 0) and B = [2, 2, 12, 12] (class 1);
    # its box equals A: IoU(A) = 1, IoU(B) = 64 / 136. Both GTs (k = 1) take it; the cheaper GT keeps it.
    iou_b = 64 / 136
    p0, p1 = scores
    cost_a = bce(p0, 1.0) * (1 - p0) ** 2 + bce(p1, 0.0) * p1 ** 2
    cost_b = bce(p0, 0.0) * p0 ** 2 + bce(p1, iou_b) * (iou_b - p1) ** 2 - 3 * math.log(iou_b)
    assert (cost_b < cost_a) == (winner == 1)
    priors = [[5, 5, 1], [20, 20, 1], [30, 30, 1]]
    result = assign([scores] * 3, priors, [[0, 0, 10, 10]] * 3, [[0, 0, 10, 10], [2, 2, 12, 12]], [0, 1])
    assert result.gt_index.tolist() == [winner, -1, -1]
    assert result.labels.tolist() == [winner, -1, -1]
    assert result.ious[0].item() == pytest.approx([1.0, iou_b][winner], rel=1e-5)


def test_gt_without_own_candidate_competes_for_others_candidates():
    # B = [40, 40, 41, 41] contains no prior point. As in NanoDet-Plus, B still picks its lowest-cost candidate
    # among all candidates (k = max(1, 0) = 1), with IoU 0 (cost 3 * -log(1e-7) = 48.4, equal for both), so the
    # class cost decides: prior 1 has the lower class-1 score. A (IoU 1 and 0.5, k = int(1.5) = 1) takes prior 0.
    priors = [[5, 5, 1], [6, 5, 1], [30, 30, 1]]
    boxes = [[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 10]]
    scores = [[0.5, 0.5], [0.5, 0.1], [0.5, 0.5]]
    result = assign(scores, priors, boxes, [[0, 0, 10, 10], [40, 40, 41, 41]], [0, 1])
    assert result.gt_index.tolist() == [0, 1, -1]
    assert result.ious.tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)


def reference_assign(logits, priors, pred_boxes, gt_boxes, gt_labels, topk=13, iou_factor=3.0):
    """The rule written out literally, as NanoDet's DynamicSoftLabelAssigner computes it: a loop over GTs on
    the candidate rows, a one-hot [V, G, C] cost from BCE-with-logits."""
    num_priors, num_gt = len(priors), len(gt_boxes)
    gt_index = torch.full((num_priors,), -1, dtype=torch.long)
    ious_out = torch.zeros(num_priors)
    inside = torch.stack([(priors[:, None, 0] > gt_boxes[None, :, 0]), (priors[:, None, 1] > gt_boxes[None, :, 1]),
                          (priors[:, None, 0] < gt_boxes[None, :, 2]), (priors[:, None, 1] < gt_boxes[None, :, 3])],
                         dim=-1).all(dim=-1)
    valid = inside.any(dim=1) if num_gt else torch.zeros(num_priors, dtype=torch.bool)
    if num_gt == 0 or not valid.any():
        return gt_index, ious_out
    ious = pairwise_iou(pred_boxes[valid], gt_boxes)
    soft = F.one_hot(gt_labels, logits.shape[1]).float()[None] * ious[..., None]
    x = logits[valid][:, None, :].expand_as(soft)
    cost = (F.binary_cross_entropy_with_logits(x, soft, reduction="none")
            * (soft - x.sigmoid()).abs().pow(2)).sum(-1)
    cost = cost + iou_factor * -torch.log(ious + 1e-7)
    matching = torch.zeros_like(cost)
    ks = ious.topk(min(topk, len(ious)), dim=0).values.sum(0).int().clamp(min=1)
    for g in range(num_gt):
        matching[cost[:, g].topk(int(ks[g]), largest=False).indices, g] = 1
    multi = matching.sum(1) > 1
    matching[multi] = F.one_hot(cost[multi].argmin(1), num_gt).float()
    matched = matching.sum(1) > 0
    valid_index = valid.nonzero().squeeze(1)
    gt_index[valid_index[matched]] = matching[matched].argmax(1)
    ious_out[valid_index[matched]] = (matching * ious).sum(1)[matched]
    return gt_index, ious_out


def random_case(generator: torch.Generator, num_priors: int, num_gt: int, num_classes: int, size: float = 64.0):
    priors = torch.rand(num_priors, 2, generator=generator) * size
    priors = torch.cat([priors, torch.full((num_priors, 1), 8.0)], dim=1)
    extent = torch.rand(num_priors, 4, generator=generator) * size / 3
    pred = torch.cat([priors[:, :2] - extent[:, :2], priors[:, :2] + extent[:, 2:]], dim=1)
    corner = torch.rand(num_gt, 2, generator=generator) * size
    gt = torch.cat([corner, corner + 4 + torch.rand(num_gt, 2, generator=generator) * size / 2], dim=1)
    logits = torch.randn(num_priors, num_classes, generator=generator) * 4
    labels = torch.randint(0, num_classes, (num_gt,), generator=generator)
    return logits, priors, pred, gt, labels


def test_vectorised_batch_matches_the_literal_rule():
    generator = torch.Generator().manual_seed(0)
    assigner = DynamicSoftLabelAssigner()
    cases = [random_case(generator, 300, g, 5) for g in (0, 1, 3, 8, 20, 5)]
    boxes, labels, valid = pad_targets([c[3] for c in cases], [c[4] for c in cases])
    batch = assigner.assign_batch(torch.stack([c[0] for c in cases]), cases[0][1],
                                  torch.stack([c[2] for c in cases]), boxes, labels, valid)
    total_positive = 0
    for i, (scores, _, pred, gt, gt_labels) in enumerate(cases):
        expected_index, expected_ious = reference_assign(scores, cases[0][1], pred, gt, gt_labels)
        assert batch.gt_index[i].tolist() == expected_index.tolist()
        torch.testing.assert_close(batch.ious[i], expected_ious, rtol=1e-5, atol=1e-6)
        positive = expected_index >= 0
        assert batch.labels[i][positive].tolist() == gt_labels[expected_index[positive]].tolist()
        total_positive += int(positive.sum())
    assert total_positive > 20  # the comparison exercised real assignments, conflicts included


finite_or_huge = st.one_of(st.floats(-100, 200, allow_nan=False),
                           st.sampled_from([-1e30, 1e30, 3e38, -3e38, math.inf, math.nan]))
box_strategy = st.lists(finite_or_huge, min_size=4, max_size=4)


@settings(max_examples=60, deadline=None)
@given(gt=st.lists(box_strategy, max_size=6), seed=st.integers(0, 2 ** 16),
       score_extreme=st.sampled_from([None, -math.inf, math.inf, math.nan, 1e4]),
       pred_scale=st.sampled_from([1.0, 1e20, 1e38]))
def test_assigner_never_fails_nor_produces_nan(gt, seed, score_extreme, pred_scale):
    generator = torch.Generator().manual_seed(seed)
    num_gt = len(gt)
    scores, priors, pred, _, labels = random_case(generator, 40, num_gt, 3)
    if score_extreme is not None:
        scores[::2] = score_extreme
    pred = pred * pred_scale
    gt_boxes = torch.tensor(gt, dtype=torch.float32).reshape(-1, 4)
    result = DynamicSoftLabelAssigner().assign(scores, priors, pred, gt_boxes, labels)
    assert not result.ious.isnan().any()
    assert ((result.ious >= 0) & (result.ious <= 1)).all()
    assert ((result.gt_index >= -1) & (result.gt_index < num_gt)).all()
    assert (result.labels[result.gt_index < 0] == -1).all()
    if num_gt:
        positive = result.gt_index >= 0
        assert (result.labels[positive] == labels[result.gt_index[positive]]).all()
        assert gt_boxes[result.gt_index[positive]].isfinite().all()
