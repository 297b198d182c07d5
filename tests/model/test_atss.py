import math

import pytest
import torch

from nanogfl.model.assigners import ATSSAssigner, pad_targets
from nanogfl.model.assigners.atss import level_sizes, nearest_candidates
from nanogfl.model.box_ops import make_priors

STRIDES = (8, 16, 32)


def offset_priors(input_hw: tuple[int, int], strides: tuple[int, ...] = STRIDES) -> torch.Tensor:
    """Priors at the cell centres (x + 0.5) * s, as the GFL head places them."""
    priors = make_priors(input_hw, strides)
    priors[:, :2] += 0.5 * priors[:, 2:]
    return priors


def prior_index(priors: torch.Tensor, x: float, y: float, stride: int) -> int:
    hit = ((priors[:, 0] == x) & (priors[:, 1] == y) & (priors[:, 2] == stride)).nonzero().flatten()
    assert len(hit) == 1
    return int(hit[0])


def iou32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of two [4] float32 boxes, one pair at a time."""
    w = (torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])).clamp(min=0)
    h = (torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])).clamp(min=0)
    inter = w * h
    area_a = (a[2] - a[0]).clamp(min=0) * (a[3] - a[1]).clamp(min=0)
    area_b = (b[2] - b[0]).clamp(min=0) * (b[3] - b[1]).clamp(min=0)
    return inter / (area_a + area_b - inter).clamp(min=1e-6)


def reference_assign(priors, pred_boxes, gt_boxes, gt_labels, topk=9, scale=5.0):
    """The official NanoDet ATSSAssigner step by step, one image and one GT at a time; nearest-candidate ties
    go to the lower prior index. Returns plain lists (gt_index, labels, ious)."""
    n = len(priors)
    half = 0.5 * (priors[:, 2] * scale)
    cells = torch.stack([priors[:, 0] - half, priors[:, 1] - half, priors[:, 0] + half, priors[:, 1] + half], 1)
    cx, cy = (cells[:, 0] + cells[:, 2]) / 2.0, (cells[:, 1] + cells[:, 3]) / 2.0
    levels, start = [], 0
    for j in range(1, n + 1):
        if j == n or priors[j, 2] != priors[start, 2]:
            levels.append(range(start, j))
            start = j
    best = [(-math.inf, -1)] * n  # (cell IoU, GT) of the claim kept so far
    for g, gt in enumerate(gt_boxes):
        if not bool(gt.isfinite().all()):
            continue
        distance = ((cx - (gt[0] + gt[2]) / 2.0).square() + (cy - (gt[1] + gt[3]) / 2.0).square()).sqrt()
        candidates = []
        for level in levels:
            candidates += sorted(level, key=lambda j: (distance[j].item(), j))[:topk]
        overlaps = torch.stack([iou32(cells[j], gt) for j in candidates])
        threshold = overlaps.mean() + overlaps.std() if len(candidates) > 1 else math.nan  # torch.std: NaN
        for j, overlap in zip(candidates, overlaps):
            margin = torch.stack([cx[j] - gt[0], cy[j] - gt[1], gt[2] - cx[j], gt[3] - cy[j]]).min()
            if overlap >= threshold and margin > 0.01 and overlap.item() > best[j][0]:
                best[j] = (overlap.item(), g)
    gt_index = [g for _, g in best]
    labels = [int(gt_labels[g]) if g >= 0 else -1 for g in gt_index]
    ious = [iou32(pred_boxes[j], gt_boxes[g]).item() if g >= 0 else 0.0 for j, g in enumerate(gt_index)]
    return gt_index, labels, ious


def random_batch(seed: int, input_hw: tuple[int, int], counts: list[int], integer: bool):
    gen = torch.Generator().manual_seed(seed)
    priors = offset_priors(input_hw)
    size = torch.tensor([input_hw[1], input_hw[0]], dtype=torch.float32)
    boxes, labels = [], []
    for count in counts:
        centre = torch.rand(count, 2, generator=gen) * size
        wh = torch.rand(count, 2, generator=gen) * size * 0.7 + 0.5  # from tiny to most of the image
        box = torch.cat([centre - wh / 2, centre + wh / 2], 1)
        boxes.append(box.round() if integer else box)  # integer boxes give many equal distances
        labels.append(torch.randint(0, 5, (count,), generator=gen))
    reach = torch.rand(len(counts), len(priors), 4, generator=gen) * 40
    pred = torch.cat([priors[:, :2] - reach[..., :2], priors[:, :2] + reach[..., 2:]], -1)
    return priors, pred, boxes, labels


@pytest.mark.parametrize("input_hw", [(64, 96), (32, 48)])  # (32, 48): the stride-32 level has only 2 priors
@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_matches_the_per_gt_loop_reference(seed, integer, input_hw):
    counts = [[0, 3, 7, 1], [5, 0, 2, 6], [4, 4, 1, 0]][seed]
    priors, pred, boxes, labels = random_batch(seed, input_hw, counts, integer)
    gt_boxes, gt_labels, gt_valid = pad_targets(boxes, labels)
    gt_boxes = torch.where(gt_valid[..., None], gt_boxes, torch.tensor([5.0, 5.0, 30.0, 30.0]))  # padding junk
    cls_logits = torch.randn(len(counts), len(priors), 5)
    result = ATSSAssigner().assign_batch(cls_logits, priors, pred, gt_boxes, gt_labels, gt_valid)
    for i in range(len(counts)):
        gt_index, labels_i, ious = reference_assign(priors, pred[i], boxes[i], labels[i])
        assert result.gt_index[i].tolist() == gt_index
        assert result.labels[i].tolist() == labels_i
        assert result.ious[i].tolist() == ious
    assert (result.gt_index >= 0).sum() >= 4  # not a vacuous comparison


def single_level_assign(gt_boxes, gt_labels=None, pred_boxes=None):
    """Stride 8 on a 48x48 input: a 6x6 grid of priors at 4, 12, ..., 44; cells are 40x40."""
    priors = offset_priors((48, 48), (8,))
    gt = torch.tensor(gt_boxes, dtype=torch.float32)
    labels = torch.tensor(gt_labels if gt_labels is not None else [0] * len(gt))
    pred = priors[:, :2].repeat(1, 2) if pred_boxes is None else pred_boxes
    return priors, ATSSAssigner().assign(torch.zeros(len(priors), 1), priors, pred, gt, labels)


def positives(priors, result):
    return sorted((int(x), int(y)) for x, y, _ in priors[result.gt_index >= 0].tolist())


def test_gt_centred_between_cells_takes_the_four_cells_around_it():
    # GT [0, 0, 32, 32], centre (16, 16). Nearest: the 4 cells at 12/20 (IoU 32*32 / 40*40 = 0.64), then 5 of the 8
    # cells at distance sqrt(160) (each IoU 24*32 / (1600 + 1024 - 768) = 0.4138). Threshold: mean 0.5143 + unbiased
    # std 0.1192 = 0.6335, so exactly the 4 nearest (all with centres inside) are positive.
    priors, result = single_level_assign([[0, 0, 32, 32]], [3])
    assert positives(priors, result) == [(12, 12), (12, 20), (20, 12), (20, 20)]
    assert set(result.labels.tolist()) == {-1, 3}


def test_a_prior_claimed_by_two_gts_goes_to_the_higher_iou():
    # A = [0, 0, 32, 32] takes the cells around (16, 16); B = [6, 6, 42, 42] (centre 24) those around (24, 24),
    # by the same reasoning (its threshold is 0.658). Both claim the cell at (20, 20), i.e. [0, 0, 40, 40]:
    # IoU with A 1024 / 1600 = 0.640, with B 34*34 / (1600 + 1296 - 1156) = 0.664, so B keeps it, whatever the order.
    a, b = [0, 0, 32, 32], [6, 6, 42, 42]
    for boxes, index_of_b in (([a, b], 1), ([b, a], 0)):
        priors, result = single_level_assign(boxes, [0, 1] if index_of_b == 1 else [1, 0])
        index = result.gt_index
        assert index[prior_index(priors, 20, 20, 8)] == index_of_b
        assert result.labels[prior_index(priors, 20, 20, 8)] == 1
        owned_by_a = sorted((int(x), int(y)) for x, y, _ in priors[index == 1 - index_of_b].tolist())
        assert owned_by_a == [(12, 12), (12, 20), (20, 12)]
        assert sorted((int(x), int(y)) for x, y, _ in priors[index == index_of_b].tolist()) == [
            (20, 20), (20, 28), (28, 20), (28, 28)]


def test_an_iou_equal_to_the_threshold_is_positive():
    # GT [2, 2, 22, 22] (400 px^2) lies inside each of its 9 nearest cells (at 4, 12, 20 in x and y): every IoU is
    # 400 / 1600 = 0.25 exactly, the std 0, the threshold 0.25, and "IoU >= threshold" holds for all nine.
    priors, result = single_level_assign([[2, 2, 22, 22]])
    assert positives(priors, result) == [(x, y) for x in (4, 12, 20) for y in (4, 12, 20)]


def test_equal_ious_go_to_the_lower_gt_index():
    priors, result = single_level_assign([[0, 0, 32, 32], [0, 0, 32, 32]], [0, 1])
    assert positives(priors, result) == [(12, 12), (12, 20), (20, 12), (20, 20)]
    assert set(result.gt_index.tolist()) == {-1, 0}


def test_soft_label_is_the_iou_of_the_predicted_box():
    priors = offset_priors((48, 48), (8,))
    pred = priors[:, :2].repeat(1, 2) + torch.tensor([-8.0, -8.0, 8.0, 8.0])  # 16x16 boxes at the points
    priors, result = single_level_assign([[0, 0, 32, 32]], pred_boxes=pred)
    # the box around (12, 12) is [4, 4, 20, 20]: inside the GT, IoU 256 / 1024; a background prior has 0
    assert result.ious[prior_index(priors, 12, 12, 8)].item() == pytest.approx(0.25)
    assert result.ious[result.gt_index < 0].eq(0).all()


@pytest.mark.parametrize("x1, expected", [(10.0, [(12, 12)]), (11.98, [(12, 12)]), (11.995, []), (12.005, [])])
def test_tiny_gt_needs_a_candidate_centre_strictly_inside(x1, expected):
    # A GT of about 5x5 pixels, smaller than every stride: every candidate cell contains it, so the stride-8
    # candidates all share the top IoU (~25 / 1600) and pass the threshold; only a centre more than 0.01 inside
    # the GT makes one positive. With x1 = 11.995 the centre at x = 12 is 0.005 inside: too close.
    priors = offset_priors((96, 96))
    gt = torch.tensor([[x1, 10.0, 15.0, 15.0]])
    result = ATSSAssigner().assign(torch.zeros(len(priors), 1), priors, priors[:, :2].repeat(1, 2), gt,
                                   torch.tensor([0]))
    assert sorted((int(x), int(y)) for x, y, s in priors[result.gt_index >= 0].tolist() if s == 8) == expected
    assert (priors[result.gt_index >= 0, 2] == 8).all()


def test_levels_with_fewer_than_topk_priors_give_all_of_them():
    priors = offset_priors((32, 48))  # 24, 6 and 2 priors
    assert level_sizes(priors[:, 2]) == [24, 6, 2]
    distances = torch.rand(2, len(priors), 3)
    chosen = nearest_candidates(distances, [24, 6, 2], 9)
    assert chosen[:, :24].sum(dim=1).eq(9).all()
    assert chosen[:, 24:].all()
    assert torch.equal(chosen[:, :24], distances[:, :24] <= distances[:, :24].topk(9, dim=1, largest=False)
                       .values[:, -1:])


def test_equal_distances_at_the_kth_go_to_the_lower_prior_index():
    distances = torch.tensor([3.0, 1.0, 2.0, 2.0, 0.5, 2.0, 2.0])[None, :, None]
    chosen = nearest_candidates(distances, [7], 4)
    assert chosen.flatten().tolist() == [False, True, True, True, True, False, False]


def test_a_single_prior_gives_no_positive():
    # one candidate in all: its unbiased std is NaN, so the official threshold accepts nothing
    prior, pred, gt = torch.tensor([[8.0, 8, 16]]), torch.tensor([[0.0, 0, 16, 16]]), torch.tensor([[2.0, 2, 14, 14]])
    result = ATSSAssigner().assign(torch.zeros(1, 1), prior, pred, gt, torch.tensor([0]))
    assert result.gt_index.tolist() == [-1]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_gt_claims_nothing_and_changes_nothing(bad):
    priors = offset_priors((48, 48), (8,))
    pred = priors[:, :2].repeat(1, 2)
    good = torch.tensor([[0.0, 0, 32, 32]])
    alone = ATSSAssigner().assign(torch.zeros(len(priors), 1), priors, pred, good, torch.tensor([0]))
    broken = torch.tensor([[bad, 0.0, 48, 48], [0.0, 0, 32, 32], [0.0, 0, bad, 40]])
    result = ATSSAssigner().assign(torch.zeros(len(priors), 1), priors, pred, broken, torch.tensor([1, 0, 1]))
    assert torch.equal(result.gt_index, torch.where(alone.gt_index >= 0, 1, -1))
    assert torch.equal(result.labels, alone.labels)
    assert torch.equal(result.ious, alone.ious)


def test_no_gts_and_no_priors_give_background():
    priors = offset_priors((32, 32))
    assigner = ATSSAssigner()
    boxes, labels, valid = pad_targets([torch.zeros(0, 4)] * 2, [torch.zeros(0, dtype=torch.long)] * 2)
    empty = assigner.assign_batch(torch.zeros(2, len(priors), 1), priors, torch.zeros(2, len(priors), 4),
                                  boxes, labels, valid)
    assert empty.gt_index.shape == (2, len(priors)) and (empty.gt_index == -1).all()
    assert (empty.labels == -1).all() and (empty.ious == 0).all()
    boxes, labels, valid = pad_targets([torch.tensor([[0.0, 0, 20, 20]])], [torch.tensor([0])])
    no_priors = assigner.assign_batch(torch.zeros(1, 0, 1), torch.zeros(0, 3), torch.zeros(1, 0, 4),
                                      boxes, labels, valid)
    assert no_priors.gt_index.shape == (1, 0) and no_priors.ious.shape == (1, 0)


def test_assign_is_assign_batch_on_one_image_and_ignores_the_logits():
    priors, pred, boxes, labels = random_batch(7, (64, 96), [4, 2], integer=False)
    padded = pad_targets(boxes, labels)
    batch = ATSSAssigner().assign_batch(torch.randn(2, len(priors), 5), priors, pred, *padded)
    for i in range(2):
        single = ATSSAssigner().assign(torch.randn(len(priors), 5) * 100, priors, pred[i], boxes[i], labels[i])
        assert torch.equal(single.gt_index, batch.gt_index[i]) and torch.equal(single.ious, batch.ious[i])
        assert torch.equal(single.labels, batch.labels[i])
