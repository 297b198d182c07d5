"""The numpy GFL decode against the torch decode (nanogfl.model.box_ops) on real model outputs."""
import numpy as np
import pytest

from nanogfl.runtime.decode import decode_output, distribution_to_distance, make_priors, softmax

STRIDES = (8, 16, 32, 64)


def test_priors_layout():
    priors = make_priors((416, 416), STRIDES)
    assert priors.shape == (2704 + 676 + 169 + 49, 3) and priors.dtype == np.float32
    np.testing.assert_array_equal(priors[:3], [[0, 0, 8], [8, 0, 8], [16, 0, 8]])  # row-major, no 0.5 offset
    np.testing.assert_array_equal(priors[52], [0, 8, 8])  # second row of the 52x52 stride-8 grid
    np.testing.assert_array_equal(priors[2704], [0, 0, 16])
    assert not priors.flags.writeable  # cached and shared
    # feature size is ceil(input / stride): 100x130 -> 13x17, 7x9, 4x5, 2x3
    assert len(make_priors((100, 130), STRIDES)) == 13 * 17 + 7 * 9 + 4 * 5 + 2 * 3
    assert make_priors((100, 130), STRIDES)[-1].tolist() == [128, 64, 64]


def test_priors_match_torch():
    torch = pytest.importorskip("torch")
    from nanogfl.model import box_ops

    for input_hw in ((416, 416), (320, 192), (100, 130)):
        expected = box_ops.make_priors(input_hw, STRIDES).numpy()
        np.testing.assert_array_equal(make_priors(input_hw, STRIDES), expected)
    assert torch  # keep the import used


def test_softmax_is_stable_for_huge_logits():
    logits = np.float32([[1e30, -1e30, 0.0], [88.0, 89.0, 90.0], [-1e4, -1e4, -1e4]])
    probs = softmax(logits.copy())
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs[0], [1, 0, 0])
    np.testing.assert_allclose(probs[2], [1 / 3] * 3, rtol=1e-6)


def test_decode_matches_torch_on_real_outputs(official_outputs):
    torch = pytest.importorskip("torch")
    from nanogfl.model.box_ops import decode_boxes
    from nanogfl.model.box_ops import distribution_to_distance as torch_distance

    priors = make_priors((416, 416), STRIDES)
    for output, _ in official_outputs:
        boxes, scores = decode_output(output, 80, 7, priors, (416, 416))
        box_logits = torch.from_numpy(output[:, 80:].copy())
        expected_boxes = decode_boxes(box_logits, torch.from_numpy(priors.copy()), 7, max_hw=(416, 416)).numpy()
        expected_bins = torch_distance(box_logits, 7).numpy()
        np.testing.assert_allclose(distribution_to_distance(output[:, 80:], 7), expected_bins, rtol=0, atol=1e-5)
        # coordinates reach 416, where one float32 step is 3e-5: compare relative to the size
        np.testing.assert_allclose(boxes, expected_boxes, rtol=1e-5, atol=1e-4)
        assert boxes.dtype == np.float32 and scores.shape == (3598, 80)
        assert boxes.min() >= 0 and boxes[:, 0::2].max() <= 416 and boxes[:, 1::2].max() <= 416
        # these are real, non-trivial distributions, not a degenerate test input
        assert expected_bins.std() > 0.5


def test_decode_rows_are_independent(official_outputs):
    output, boxes = official_outputs[0]
    priors = make_priors((416, 416), STRIDES)
    rows = np.array([5, 100, 3000, 3597])
    subset_boxes, _ = decode_output(output[rows], 80, 7, priors[rows], (416, 416))
    np.testing.assert_array_equal(subset_boxes, boxes[rows])


def test_decode_rejects_mismatched_shapes():
    priors = make_priors((64, 64), STRIDES)
    with pytest.raises(ValueError, match="112"):
        decode_output(np.zeros((len(priors), 100), np.float32), 80, 7, priors, (64, 64))
    with pytest.raises(ValueError, match="priors"):
        decode_output(np.zeros((len(priors) + 1, 112), np.float32), 80, 7, priors, (64, 64))
