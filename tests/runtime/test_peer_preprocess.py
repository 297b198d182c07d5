"""Letterbox and channel order of peer models (YOLOX: top-left letterbox padded with 114, raw 0-255)."""
import dataclasses

import numpy as np

from nanogfl.runtime.peers.templates import picodet_meta, yolox_meta
from nanogfl.runtime.preprocess import prepare_input


def test_letterbox_pastes_top_left_and_pads_with_114():
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 0] = 10  # blue
    image[..., 2] = 200  # red
    meta = dataclasses.replace(yolox_meta(), input_hw=(64, 64))
    blob, matrix = prepare_input(image, meta)
    assert blob.shape == (1, 3, 64, 64)
    np.testing.assert_array_equal(blob[0, :, :32, :], np.broadcast_to(np.array([10, 0, 200.0])[:, None, None],
                                                                      (3, 32, 64)))  # BGR kept, raw pixels
    assert (blob[0, :, 32:, :] == 114).all()
    np.testing.assert_allclose(matrix, np.diag([0.32, 0.32, 1.0]))


def test_rgb_models_get_swapped_channels():
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0] = 255  # blue in OpenCV order
    meta = dataclasses.replace(picodet_meta(), input_hw=(32, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    blob, _ = prepare_input(image, meta)
    assert (blob[0, 2] == 255).all() and (blob[0, :2] == 0).all()
