"""Image -> network input. The same code serves evaluation during training and every runtime backend."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from ..contract import BGR_MEAN, BGR_STD, SIZE_MULTIPLE

if TYPE_CHECKING:
    from .metadata import ModelMeta

# Scale factors handed to cv2.resize miss the wanted size by this much (in output pixels); see resize_image.
_SCALE_OFFSET = 2e-7


def check_bgr_image(image: np.ndarray) -> None:
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR image HxWx3, got shape {getattr(image, 'shape', None)}")


def resize_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """3x3 matrix mapping original pixel coordinates to network-input coordinates (stretch resize)."""
    return np.array([[dst_hw[1] / src_hw[1], 0, 0], [0, dst_hw[0] / src_hw[0], 0], [0, 0, 1]], dtype=np.float64)


def normalize(image: np.ndarray, mean: Sequence[float] = BGR_MEAN, std: Sequence[float] = BGR_STD) -> np.ndarray:
    """HWC BGR (any dtype, 0..255 scale) -> CHW float32 ``(pixel - mean) / std``, the same bits on every CPU
    (numpy's elementwise float32 arithmetic is correctly rounded, with no fused multiply-add)."""
    chw = np.empty((image.shape[2], *image.shape[:2]), np.float32)
    if image.dtype == np.uint8:  # OpenCV deinterleaves bytes ~4x faster than numpy's strided copy does
        for channel, plane in enumerate(cv2.split(np.ascontiguousarray(image))):
            chw[channel] = plane
    else:
        chw[:] = image.transpose(2, 0, 1)
    chw -= np.asarray(mean, np.float32)[:, None, None]
    chw /= np.asarray(std, np.float32)[:, None, None]
    return chw


def resize_factors(src_hw: tuple[int, int], size_hw: tuple[int, int]) -> tuple[float, float]:
    """The (x, y) scale factors ``resize_image`` hands to OpenCV: ``_SCALE_OFFSET`` of a pixel over the size."""
    return (size_hw[1] + _SCALE_OFFSET) / src_hw[1], (size_hw[0] + _SCALE_OFFSET) / src_hw[0]


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a BGR uint8 image to ``size_hw``, with the same pixels on every CPU. It is the one
    resize of training (keep-ratio), evaluation, export checks and every runtime backend.

    The values are those of ``cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)`` on x86: bit-identical
    on the COCO val images at 320 and 416. Over a sweep of 1,152 size pairs, 21 differ in one column (1e-5 of the
    values, by one level), because each factor moves by 2e-7 / size.

    Why the detour: from OpenCV 4.14 on, the aarch64 wheels hand an 8-bit downscale of 1-3 channels to the KleidiCV
    HAL, which rounds otherwise (22% of the values of a COCO image at 416x416, 38% at 320x320, by up to 2 levels).
    KleidiCV takes the call only when the scale factors match the sizes to within FLT_EPSILON. The factors given
    here overshoot the wanted size by ``_SCALE_OFFSET`` of a pixel, so OpenCV rounds the size back and runs its
    own bilinear code, bit-identical on x86, Cortex-A72 and Cortex-A76 (``tests/runtime/test_preprocess.py``
    checks a stored result)."""
    if image.shape[:2] == tuple(size_hw):
        return image
    fx, fy = resize_factors(image.shape[:2], size_hw)
    resized = cv2.resize(image, None, fx=fx, fy=fy, interpolation=cv2.INTER_LINEAR)
    if resized.shape[:2] != tuple(size_hw):  # OpenCV rounds src * factor to the size; a guard, never hit
        raise RuntimeError(f"resize to {size_hw} gave {resized.shape[:2]}")
    return resized


def resize(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Stretch-resize a BGR image to ``input_hw``; returns the resized image and its warp matrix."""
    return resize_image(image, input_hw), resize_matrix(image.shape[:2], input_hw)


def preprocess(image: np.ndarray, input_hw: tuple[int, int], mean: Sequence[float] = BGR_MEAN,
               std: Sequence[float] = BGR_STD) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 HxWx3 -> (blob [1, 3, H, W] float32, warp matrix original -> input)."""
    check_bgr_image(image)
    resized, matrix = resize(image, input_hw)
    return normalize(resized, mean, std)[None], matrix


def keep_ratio_size(src_hw: tuple[int, int], scale: Sequence[int]) -> tuple[int, int]:
    """(height, width) of an image of ``src_hw`` scaled by one factor so that its short side is at most
    ``scale[0]`` and its long side at most ``scale[1]`` (mmdetection's ``Resize(keep_ratio=True)``; rounded half
    up, as it rounds)."""
    short, long = min(scale), max(scale)
    factor = min(long / max(src_hw), short / min(src_hw))
    return int(src_hw[0] * factor + 0.5), int(src_hw[1] * factor + 0.5)


def padded_size(hw: tuple[int, int], multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    return -(-hw[0] // multiple) * multiple, -(-hw[1] // multiple) * multiple


def pad_bottom_right(chw: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """CHW -> C x ``hw``, zeros below and right of the image (zero is the mean pixel after normalisation)."""
    if chw.shape[1:] == tuple(hw):
        return chw
    padded = np.zeros((chw.shape[0], *hw), np.float32)
    padded[:, :chw.shape[1], :chw.shape[2]] = chw
    return padded


def preprocess_keep_ratio(image: np.ndarray, scale: Sequence[int], mean: Sequence[float] = BGR_MEAN,
                          std: Sequence[float] = BGR_STD) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 HxWx3 -> (blob [1, 3, H', W'] keep-ratio resized within ``scale`` = [short, long] and padded to
    a multiple of 32, warp matrix original -> input)."""
    check_bgr_image(image)
    target = keep_ratio_size(image.shape[:2], scale)
    resized, matrix = resize(image, target)
    return pad_bottom_right(normalize(resized, mean, std), padded_size(target))[None], matrix


def letterbox(image: np.ndarray, input_hw: tuple[int, int], pad_value: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale by r = min(H / h, W / w) to (int(h * r), int(w * r)) (YOLOX's rounding), paste at the top-left of an
    ``input_hw`` canvas filled with ``pad_value``; returns the canvas and the warp matrix (a plain scale by r)."""
    h, w = image.shape[:2]
    ratio = min(input_hw[0] / h, input_hw[1] / w)
    size_hw = (int(h * ratio), int(w * ratio))
    resized = resize_image(image, size_hw)
    canvas = np.full((*input_hw, image.shape[2]), pad_value, image.dtype)
    canvas[:size_hw[0], :size_hw[1]] = resized
    return canvas, np.array([[ratio, 0, 0], [0, ratio, 0], [0, 0, 1]], dtype=np.float64)


def prepare_input(image: np.ndarray, meta: "ModelMeta") -> tuple[np.ndarray, np.ndarray]:
    """The blob and warp matrix ``meta``'s model takes for ``image``: keep-ratio + padding when the model was
    trained so (``keep_ratio_scale``), else the stretch to ``input_hw``, or the letterbox and the channel order of
    another family's model (``resize_mode``, ``color_order``)."""
    if meta.keep_ratio_scale:
        return preprocess_keep_ratio(image, meta.keep_ratio_scale, meta.mean, meta.std)
    if meta.resize_mode == "stretch" and meta.color_order == "bgr":
        return preprocess(image, meta.input_hw, meta.mean, meta.std)
    check_bgr_image(image)
    if meta.resize_mode == "letterbox":
        resized, matrix = letterbox(image, meta.input_hw, meta.pad_value)
    else:
        resized, matrix = resize(image, meta.input_hw)
    if meta.color_order == "rgb":
        resized = resized[..., ::-1]
    return normalize(resized, meta.mean, meta.std)[None], matrix
