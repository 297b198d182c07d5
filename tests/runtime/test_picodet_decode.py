"""PicoDet decode on synthetic split outputs, against a per-point loop written from PaddleDetection's ncnn demo
(no published PicoDet file is scored here)."""
import math

import numpy as np
import pytest

from nanogfl.runtime.metadata import ModelMeta
from nanogfl.runtime.peers import decode_peer
from nanogfl.runtime.peers.templates import picodet_meta


def reference_boxes(outputs, strides, input_hw, reg_max):
    boxes = []
    for level, stride in enumerate(strides):
        rows, cols = math.ceil(input_hw[0] / stride), math.ceil(input_hw[1] / stride)
        box = outputs[2 * level + 1].reshape(rows * cols, 4 * (reg_max + 1))
        for index in range(rows * cols):
            y, x = divmod(index, cols)
            centre_x, centre_y = (x + 0.5) * stride, (y + 0.5) * stride
            sides = []
            for side in range(4):
                logits = box[index, side * (reg_max + 1):(side + 1) * (reg_max + 1)].astype(np.float64)
                weights = np.exp(logits - logits.max())
                sides.append(float((weights / weights.sum()) @ np.arange(reg_max + 1)) * stride)
            boxes.append((centre_x - sides[0], centre_y - sides[1], centre_x + sides[2], centre_y + sides[3]))
    return np.array(boxes)


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_picodet_matches_reference(activation):
    meta = ModelMeta(**{**picodet_meta().__dict__, "class_names": ["a", "b", "c"], "input_hw": (64, 96),
                        "class_activation": activation})
    rng = np.random.default_rng(0)
    outputs = []
    for stride in meta.strides:
        cells = math.ceil(64 / stride) * math.ceil(96 / stride)
        outputs += [rng.uniform(-3, 3, (cells, 3)).astype(np.float32),
                    rng.normal(0, 3, (1, cells, 32)).astype(np.float32)]  # a leading batch axis is accepted
    boxes, scores = decode_peer(outputs, meta, meta.input_hw)
    np.testing.assert_allclose(boxes, reference_boxes(outputs, meta.strides, meta.input_hw, 7), atol=1e-3)
    classes = np.concatenate(outputs[0::2])
    expected = classes if activation == "sigmoid" else 1 / (1 + np.exp(-classes.astype(np.float64)))
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def test_picodet_wrong_blob_size_is_one_clear_error():
    meta = ModelMeta(**{**picodet_meta().__dict__, "input_hw": (64, 64)})
    outputs = [np.zeros((63, 80), np.float32), np.zeros((64, 32), np.float32)] * 4
    with pytest.raises(ValueError, match="class output of stride 8"):
        decode_peer(outputs, meta, meta.input_hw)


def test_layout_fields_are_checked():
    data = {"class_names": ["a"], "input_hw": [32, 32], "layout": "yolo_fastestv2", "strides": [16, 32],
            "split_outputs": ["a", "b"]}
    with pytest.raises(ValueError, match="needs anchors"):
        ModelMeta.from_dict(data)
    with pytest.raises(ValueError, match="layout must be one of"):
        ModelMeta.from_dict({"class_names": ["a"], "input_hw": [32, 32], "layout": "ssd"})
