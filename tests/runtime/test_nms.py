"""multiclass_nms against a pure-Python greedy reference, on random and real inputs, plus edge cases."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nanogfl.runtime import nms
from nanogfl.runtime.nms import multiclass_nms


def reference_iou(a, b):
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes, scores, score_threshold, iou_threshold, max_detections):
    """Textbook greedy NMS, one class at a time, in plain Python; returns (row, class, score) tuples."""
    kept = []
    for cls in range(scores.shape[1]):
        candidates = [(float(scores[i, cls]), i) for i in range(len(boxes)) if scores[i, cls] > score_threshold]
        candidates.sort(key=lambda c: (-c[0], c[1]))
        chosen = []
        for score, i in candidates:
            if all(reference_iou(boxes[i].tolist(), boxes[j].tolist()) <= iou_threshold for _, j in chosen):
                chosen.append((score, i))
        kept += [(i, cls, score) for score, i in chosen]
    kept.sort(key=lambda k: (-k[2], k[0] * scores.shape[1] + k[1]))
    return kept[:max_detections]


def random_boxes(rng, count, extent=100.0):
    xy = rng.uniform(0, extent, (count, 2))
    wh = rng.uniform(1, extent / 3, (count, 2))
    return np.concatenate((xy, xy + wh), axis=1).astype(np.float32)


def assert_matches_reference(boxes, scores, score_threshold=0.05, iou_threshold=0.6, max_detections=100):
    out_boxes, out_scores, out_labels = multiclass_nms(boxes, scores, score_threshold, iou_threshold, max_detections)
    expected = reference_nms(boxes, scores, score_threshold, iou_threshold, max_detections)
    assert len(out_scores) == len(expected)
    np.testing.assert_array_equal(out_labels, [cls for _, cls, _ in expected])
    np.testing.assert_array_equal(out_scores, np.float32([s for _, _, s in expected]))
    np.testing.assert_array_equal(out_boxes, boxes[[i for i, _, _ in expected]])
    assert out_boxes.dtype == np.float32 and out_scores.dtype == np.float32 and out_labels.dtype == np.int64


@pytest.mark.parametrize("count,classes,seed", [(40, 3, 0), (200, 5, 1), (300, 2, 2), (400, 1, 3)])
def test_random_inputs_match_reference(count, classes, seed):
    # up to 256 candidates take the overlap-matrix path, more the per-class loop (MATRIX_NMS_LIMIT)
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, count)
    scores = rng.uniform(0, 1, (count, classes)).astype(np.float32)
    assert_matches_reference(boxes, scores, 0.3, 0.5, 100)
    assert_matches_reference(boxes, scores, 0.05, 0.6, 1000)


def test_real_outputs_match_reference(official_outputs):
    for output, boxes in official_outputs:
        assert_matches_reference(boxes, output[:, :80], 0.35, 0.6, 100)
        rows = np.flatnonzero(output[:, :80].max(1) > 0.05)[:600]  # keep the pure-Python reference quick
        assert_matches_reference(boxes[rows], output[rows, :80], 0.05, 0.6, 100)


def test_classes_do_not_suppress_each_other():
    boxes = np.float32([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = np.float32([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]])
    _, out_scores, labels = multiclass_nms(boxes, scores, 0.05, 0.6)
    np.testing.assert_array_equal(labels, [0, 1])
    np.testing.assert_allclose(out_scores, [0.9, 0.7])


def test_one_box_can_carry_several_labels():
    boxes = np.float32([[0, 0, 10, 10]])
    scores = np.float32([[0.2, 0.9, 0.01]])
    _, out_scores, labels = multiclass_nms(boxes, scores, 0.05, 0.6)
    np.testing.assert_array_equal(labels, [1, 0])


def test_max_detections_and_empty():
    rng = np.random.default_rng(5)
    boxes = random_boxes(rng, 300, extent=10000)
    scores = rng.uniform(0.5, 1, (300, 2)).astype(np.float32)
    assert len(multiclass_nms(boxes, scores, max_detections=7)[1]) == 7
    for out in multiclass_nms(np.zeros((0, 4), np.float32), np.zeros((0, 80), np.float32)):
        assert len(out) == 0
    assert len(multiclass_nms(boxes, scores, score_threshold=1.0)[0]) == 0
    with pytest.raises(ValueError):
        multiclass_nms(boxes, scores[:10])


def test_matrix_and_loop_paths_agree(monkeypatch):
    rng = np.random.default_rng(7)
    boxes = random_boxes(rng, 200)
    scores = rng.uniform(0, 1, (200, 3)).astype(np.float32)
    matrix_result = multiclass_nms(boxes, scores, 0.1, 0.5)
    monkeypatch.setattr(nms, "MATRIX_NMS_LIMIT", 0)
    loop_result = multiclass_nms(boxes, scores, 0.1, 0.5)
    for a, b in zip(matrix_result, loop_result):
        np.testing.assert_array_equal(a, b)


finite_or_wild = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=60, deadline=None)
@given(boxes=hnp.arrays(np.float32, st.tuples(st.integers(0, 30), st.just(4)), elements=finite_or_wild),
       data=st.data())
def test_never_raises_or_returns_nan(boxes, data):
    scores = data.draw(hnp.arrays(np.float32, (len(boxes), 3), elements=finite_or_wild))
    out_boxes, out_scores, out_labels = multiclass_nms(boxes, scores, 0.05, 0.6, 10)
    assert len(out_boxes) == len(out_scores) == len(out_labels) <= 10
    assert np.isfinite(out_boxes).all() and not np.isnan(out_scores).any()
    assert ((out_labels >= 0) & (out_labels < 3)).all()


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(1e3, 1e30), seed=st.integers(0, 1000))
def test_huge_coordinates_still_match_reference(scale, seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 20) * np.float32(scale)
    scores = rng.uniform(0, 1, (20, 2)).astype(np.float32)
    assert_matches_reference(boxes, scores, 0.2, 0.5, 100)
