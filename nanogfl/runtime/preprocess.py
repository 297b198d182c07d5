"""Image -> network input. The same code serves evaluation during training and every runtime backend."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..contract import BGR_MEAN, BGR_STD


def resize_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """3x3 matrix mapping original pixel coordinates to network-input coordinates (stretch resize)."""
    return np.array([[dst_hw[1] / src_hw[1], 0, 0], [0, dst_hw[0] / src_hw[0], 0], [0, 0, 1]], dtype=np.float64)


def normalize(image: np.ndarray, mean: Sequence[float] = BGR_MEAN, std: Sequence[float] = BGR_STD) -> np.ndarray:
    """HWC BGR (any dtype, 0..255 scale) -> CHW float32 normalised."""
    # Cast straight into a CHW buffer and normalise in place: same numbers, ~6x faster than HWC temporaries.
    chw = np.empty((image.shape[2], *image.shape[:2]), np.float32)
    chw[:] = image.transpose(2, 0, 1)
    chw -= np.asarray(mean, np.float32)[:, None, None]
    chw /= np.asarray(std, np.float32)[:, None, None]
    return chw


def resize(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Stretch-resize a BGR image to ``input_hw``; returns the resized image and its warp matrix."""
    h, w = image.shape[:2]
    if (h, w) == tuple(input_hw):
        resized = image
    else:
        resized = cv2.resize(image, (input_hw[1], input_hw[0]), interpolation=cv2.INTER_LINEAR)
    return resized, resize_matrix((h, w), input_hw)


def preprocess(image: np.ndarray, input_hw: tuple[int, int], mean: Sequence[float] = BGR_MEAN,
               std: Sequence[float] = BGR_STD) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 HxWx3 -> (blob [1, 3, H, W] float32, warp matrix original -> input)."""
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR image HxWx3, got shape {getattr(image, 'shape', None)}")
    resized, matrix = resize(image, input_hw)
    return normalize(resized, mean, std)[None], matrix
