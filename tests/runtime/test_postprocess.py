"""Box mapping back to the original image, the whole Detector on real photos against COCO ground truth."""
import json

import numpy as np
import pytest
from helpers import official_meta

from nanogfl.runtime.backends import open_model
from nanogfl.runtime.detector import Detector
from nanogfl.runtime.postprocess import Detections, postprocess, warp_boxes
from nanogfl.runtime.preprocess import resize_matrix


def test_warp_boxes_undoes_the_resize():
    matrix = resize_matrix((480, 640), (416, 416))  # original (h, w) -> input
    original = np.float32([[10, 20, 300, 400], [0, 0, 640, 480]])
    in_input = warp_boxes(original, matrix, 416, 416)
    np.testing.assert_allclose(in_input, [[6.5, 17.333, 195, 346.667], [0, 0, 416, 416]], atol=1e-3)
    np.testing.assert_allclose(warp_boxes(in_input, np.linalg.inv(matrix), 640, 480), original, atol=1e-3)


def test_warp_boxes_rotation_and_clipping():
    rotate_90 = np.array([[0, -1, 100], [1, 0, 0], [0, 0, 1]], np.float64)  # (x, y) -> (100 - y, x)
    boxes = np.float32([[10, 20, 30, 60]])
    np.testing.assert_allclose(warp_boxes(boxes, rotate_90, 1000, 1000), [[40, 10, 80, 30]])
    np.testing.assert_allclose(warp_boxes(np.float32([[-5, -5, 50, 70]]), np.eye(3), 40, 60), [[0, 0, 40, 60]])
    assert warp_boxes(np.zeros((0, 4), np.float32), np.eye(3), 10, 10).shape == (0, 4)


def test_postprocess_rejects_wrong_output_rows():
    meta = official_meta((416, 416))
    with pytest.raises(ValueError, match="priors"):
        postprocess(np.zeros((2125, 112), np.float32), meta, np.eye(3), (416, 416))


def test_postprocess_empty_and_batched_output():
    meta = official_meta((64, 64))
    rows = 8 * 8 + 4 * 4 + 2 * 2 + 1
    nothing = postprocess(np.zeros((1, rows, 112), np.float32), meta, np.eye(3), (64, 64))
    assert len(nothing) == 0 and nothing.boxes.shape == (0, 4) and nothing.labels.dtype == np.int64
    output = np.zeros((1, rows, 112), np.float32)
    output[0, 9, 3] = 0.9  # prior 9 of the 8x8 level is at (8, 8); zero logits -> distance 3.5 bins per side
    detections = postprocess(output, meta, resize_matrix((128, 256), (64, 64)), (128, 256))
    np.testing.assert_allclose(detections.boxes, [[0, 0, 4 * 36, 2 * 36]])  # 8 +- 28, clipped; x4 / x2 back
    assert detections.to_list(["a", "b", "c", "d"]) == [
        {"label": "d", "class_id": 3, "score": 0.9, "box": [0.0, 0.0, 144.0, 72.0]}]


def load_ground_truth(coco_val):
    ann_file, _ = coco_val
    data = json.loads(ann_file.read_text())
    label_of = {cat: i for i, cat in enumerate(sorted(c["id"] for c in data["categories"]))}
    image_ids = {image["file_name"]: image["id"] for image in data["images"]}
    truth: dict[int, list] = {}
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        truth.setdefault(ann["image_id"], []).append(([x, y, x + w, y + h], label_of[ann["category_id"]]))
    return image_ids, truth


def iou(a, b):
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_detector_finds_the_annotated_objects(official_model, coco_val):
    import cv2

    image_ids, truth = load_ground_truth(coco_val)
    detector = Detector(open_model(official_model, threads=1), score_threshold=0.5)
    found = matched = 0
    for path in sorted(coco_val[1].glob("*.jpg"))[:12]:
        image = cv2.imread(str(path))
        detections = detector(image)
        assert isinstance(detections, Detections) and detections.boxes.dtype == np.float32
        assert (detections.boxes[:, 2] <= image.shape[1]).all() and (detections.boxes[:, 3] <= image.shape[0]).all()
        assert np.all(np.diff(detections.scores) <= 0)
        gt = truth.get(image_ids[path.name], [])
        for box, label in zip(detections.boxes.tolist(), detections.labels.tolist()):
            found += 1
            matched += any(gl == label and iou(box, gb) > 0.5 for gb, gl in gt)
        timing = detector.last_timing
        assert timing.preprocess_ms > 0 and timing.inference_ms > 0 and timing.postprocess_ms > 0
        assert timing.total_ms == pytest.approx(timing.preprocess_ms + timing.inference_ms + timing.postprocess_ms)
    # confident detections of the official weights land on annotated objects of the right class, in the
    # original image's pixels (a wrong resize inverse or x/y mix-up would drop this to near 0)
    assert found >= 25 and matched / found >= 0.7, (matched, found)  # measured: 27 of 33
