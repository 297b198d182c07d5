"""Training / validation transforms (numpy + OpenCV): the NanoDet-Plus recipe, one warp matrix per image.

The training transform is called as ``t(image, boxes, labels, rng) -> (chw float32, boxes, labels, matrix)``
where ``matrix`` (3x3) maps original pixel coordinates to network-input coordinates. Evaluation uses the
runtime's own ``preprocess`` (stretch resize + normalise), so trained and deployed models see the same input
(``augment.keep_ratio`` changes the training warp only: its models are still evaluated on stretched images).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..config import AugmentConfig, Config
from ..contract import BGR_MEAN, BGR_STD
from ..runtime.postprocess import warp_boxes
from ..runtime.preprocess import keep_ratio_size, normalize, resize

MIN_BOX_SIDE = 1.0  # boxes thinner than this (pixels, after the warp and clipping) are dropped


def boxes_into_input(boxes: np.ndarray, labels: np.ndarray, matrix: np.ndarray,
                     input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Map boxes to the input (clipped to it) and drop those under MIN_BOX_SIDE or not finite."""
    height, width = input_hw
    with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf boxes are dropped below
        mapped = warp_boxes(np.asarray(boxes, np.float64).reshape(-1, 4), matrix, width, height)
        keep = ((mapped[:, 2] - mapped[:, 0]) >= MIN_BOX_SIDE) & ((mapped[:, 3] - mapped[:, 1]) >= MIN_BOX_SIDE)
    return mapped[keep], np.asarray(labels, np.int64).reshape(-1)[keep]


def pixel_centre_matrix(matrix: np.ndarray) -> np.ndarray:
    """The same warp for OpenCV, which puts pixel centres on integers (boxes and cv2.resize use pixel edges)."""
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], np.float64)
    return np.linalg.inv(half) @ matrix @ half


def random_warp_matrix(src_hw: tuple[int, int], input_hw: tuple[int, int], augment: AugmentConfig,
                       rng: np.random.Generator) -> np.ndarray:
    """Centre -> scale -> per-axis stretch -> flip -> random translate -> resize to the input.

    The resize stretches the image to the input (NanoDet-Plus) or, with ``augment.keep_ratio``, fits it inside
    with one factor and centres it (NanoDet's ``get_resize_matrix(keep_ratio=True)``, applied after the random
    part as in its ``warp_and_resize``: the translate is then a fraction of the fitted image, not of the input).
    """
    src_h, src_w = src_hw
    dst_h, dst_w = input_hw
    to_origin = np.array([[1, 0, -src_w / 2], [0, 1, -src_h / 2], [0, 0, 1]], np.float64)
    scale = rng.uniform(*augment.scale)
    zoom_x = scale * rng.uniform(*augment.stretch)
    zoom_y = scale * rng.uniform(*augment.stretch)
    if rng.random() < augment.flip:
        zoom_x = -zoom_x
    centre_x = rng.uniform(0.5 - augment.translate, 0.5 + augment.translate)  # where the centre lands, as a
    centre_y = rng.uniform(0.5 - augment.translate, 0.5 + augment.translate)  # fraction of the (fitted) image
    if augment.keep_ratio:
        # NanoDet: Resize(T(dst / 2) @ S(ratio) @ T(-src / 2)) @ T(centre * src) @ flip/stretch/scale @ centring
        ratio = min(dst_w / src_w, dst_h / src_h)
        return np.array([[zoom_x * ratio, 0, dst_w / 2 + (centre_x - 0.5) * src_w * ratio],
                         [0, zoom_y * ratio, dst_h / 2 + (centre_y - 0.5) * src_h * ratio],
                         [0, 0, 1]], np.float64) @ to_origin
    return np.array([[zoom_x * dst_w / src_w, 0, centre_x * dst_w],
                     [0, zoom_y * dst_h / src_h, centre_y * dst_h], [0, 0, 1]], np.float64) @ to_origin


def color_jitter(image: np.ndarray, augment: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """BGR uint8 -> float32 on the 0..1 scale with brightness, contrast, saturation each applied with p=0.5."""
    image = image.astype(np.float32) / 255.0
    if augment.brightness == 0 and list(augment.contrast) == [1, 1] and list(augment.saturation) == [1, 1]:
        return image  # no jitter configured (the server-size GFL recipes)
    if rng.random() < 0.5:
        image += rng.uniform(-augment.brightness, augment.brightness)
    if rng.random() < 0.5:
        image *= rng.uniform(*augment.contrast)
    if rng.random() < 0.5:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        hsv[..., 1] *= rng.uniform(*augment.saturation)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return image


class TrainTransform:
    """Training augmentation: random warp (scale, stretch, flip, translate, resize), colour jitter, normalise."""

    def __init__(self, input_hw: tuple[int, int], augment: AugmentConfig,
                 mean: Sequence[float] = BGR_MEAN, std: Sequence[float] = BGR_STD) -> None:
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.augment = augment
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        matrix = random_warp_matrix(image.shape[:2], self.input_hw, self.augment, rng)
        warped = cv2.warpAffine(image, pixel_centre_matrix(matrix)[:2], (self.input_hw[1], self.input_hw[0]),
                                flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        jittered = color_jitter(warped, self.augment, rng)
        boxes, labels = boxes_into_input(boxes, labels, matrix, self.input_hw)
        return normalize(jittered * 255.0, self.mean, self.std), boxes, labels, matrix


class KeepRatioTrainTransform:
    """The server-size GFL recipe (``model.keep_ratio_scale``): resize with one factor so that the short side is
    at most ``augment.scale`` (a uniform draw) times ``scale[0]`` and the long side at most ``scale[1]``
    (mmdetection's ``RandomResize(keep_ratio=True)``; 1x: ``augment.scale`` [1, 1]), flip, normalise. Each image
    keeps its own size; ``collate`` pads a batch to its largest image."""

    def __init__(self, scale: Sequence[int], augment: AugmentConfig, mean: Sequence[float] = BGR_MEAN,
                 std: Sequence[float] = BGR_STD) -> None:
        self.short, self.long = min(scale), max(scale)
        self.augment = augment
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        short = rng.uniform(*self.augment.scale) * self.short
        height, width = keep_ratio_size(image.shape[:2], (short, self.long))
        resized, matrix = resize(image, (height, width))
        if rng.random() < self.augment.flip:
            resized = np.ascontiguousarray(resized[:, ::-1])
            matrix = np.array([[-1, 0, width], [0, 1, 0], [0, 0, 1]], np.float64) @ matrix
        jittered = color_jitter(resized, self.augment, rng)
        boxes, labels = boxes_into_input(boxes, labels, matrix, (height, width))
        return normalize(jittered * 255.0, self.mean, self.std), boxes, labels, matrix


def train_transform(cfg: Config) -> TrainTransform | KeepRatioTrainTransform:
    """The training transform ``cfg`` asks for: keep-ratio per image (``model.keep_ratio_scale``) or the warp to
    the fixed input size."""
    if cfg.model.keep_ratio_scale:
        return KeepRatioTrainTransform(cfg.model.keep_ratio_scale, cfg.augment, cfg.data.mean, cfg.data.std)
    return TrainTransform(cfg.input_hw, cfg.augment, cfg.data.mean, cfg.data.std)
