"""Reading images robustly: BGR uint8 HxWx3 out, or None with a one-line warning naming the file.

Also reads the stored size and EXIF orientation from the file header without decoding pixels, so datasets
with no size in their labels (YOLO) can be indexed quickly.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

import cv2
import numpy as np

from .errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_EXIF_ORIENTATION_TAG = 0x0112
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# One note per decision ("rotated" / "ignored") per process, so a large dataset does not flood the log.
_exif_notes_shown: set[str] = set()


class DataWarning(UserWarning):
    """A data problem that was repaired or skipped (unreadable image, bad box, ...)."""


def warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


@dataclass(frozen=True)
class ImageHeader:
    stored_hw: tuple[int, int]  # pixel grid as stored in the file
    orientation: int = 1  # EXIF orientation 1..8 (1: none)

    @property
    def displayed_hw(self) -> tuple[int, int]:
        """Size after applying the EXIF orientation (what a photo viewer shows)."""
        h, w = self.stored_hw
        return (w, h) if self.orientation in (5, 6, 7, 8) else (h, w)


def _exif_orientation(payload: bytes) -> int:
    """Orientation from an APP1 payload (``Exif\\0\\0`` + TIFF); 1 when absent or malformed."""
    if not payload.startswith(b"Exif\x00\x00") or len(payload) < 14:
        return 1
    tiff = payload[6:]
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return 1
    for k in range(int.from_bytes(tiff[ifd:ifd + 2], order)):
        entry = tiff[ifd + 2 + 12 * k: ifd + 14 + 12 * k]
        if len(entry) < 12:
            break
        if int.from_bytes(entry[:2], order) == _EXIF_ORIENTATION_TAG:
            value = int.from_bytes(entry[8:10], order)
            return value if 1 <= value <= 8 else 1
    return 1


def _walk_jpeg(f: BinaryIO) -> tuple[Optional[tuple[int, int]], int, Optional[int]]:
    """(stored size, orientation, offset where the scan data starts) by walking the JPEG marker segments."""
    size, orientation = None, 1
    f.seek(2)
    while True:
        head = f.read(2)
        if len(head) < 2 or head[0] != 0xFF:
            return size, orientation, None
        marker = head[1]
        if marker == 0xFF:  # fill byte
            f.seek(-1, io.SEEK_CUR)
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2 or marker == 0xD9:
            return size, orientation, None
        length = int.from_bytes(length_bytes, "big")
        if marker == 0xDA:
            return size, orientation, f.tell()
        if marker == 0xE1 or marker in _SOF_MARKERS:
            payload = f.read(length - 2)
            if marker == 0xE1 and orientation == 1:
                orientation = _exif_orientation(payload)
            elif marker in _SOF_MARKERS and len(payload) >= 5:
                size = (int.from_bytes(payload[1:3], "big"), int.from_bytes(payload[3:5], "big"))
        else:
            f.seek(length - 2, io.SEEK_CUR)


def read_image_header(path: str | Path) -> Optional[ImageHeader]:
    """Stored size and EXIF orientation, reading only the header for JPEG/PNG (full decode otherwise)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            start = f.read(24)
            if start[:2] == b"\xff\xd8":
                size, orientation, _ = _walk_jpeg(f)
                if size and size[0] > 0 and size[1] > 0:
                    return ImageHeader(size, orientation)
            elif start[:8] == b"\x89PNG\r\n\x1a\n" and start[12:16] == b"IHDR":
                width, height = int.from_bytes(start[16:20], "big"), int.from_bytes(start[20:24], "big")
                return ImageHeader((height, width))
    except OSError:
        return None
    image = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    return None if image is None else ImageHeader(image.shape[:2])


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels -> displayed pixels for EXIF orientation 1..8."""
    flips = {1: image, 2: image[:, ::-1], 3: image[::-1, ::-1], 4: image[::-1]}
    if orientation in flips:
        return np.ascontiguousarray(flips[orientation])
    swapped = image.swapaxes(0, 1)
    turned = {5: swapped, 6: swapped[:, ::-1], 7: swapped[::-1, ::-1], 8: swapped[::-1]}[orientation]
    return np.ascontiguousarray(turned)


def _to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        scale = 255.0 if image.dtype.kind == "f" else 255.0 / max(float(np.iinfo(image.dtype).max), 1.0)
        image = np.clip(image.astype(np.float32) * scale, 0, 255).round().astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1 or channels == 2:  # gray (+ alpha)
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image[:, :, :3])  # alpha dropped


def _note_exif_once(kind: str, message: str) -> None:
    if kind not in _exif_notes_shown:
        _exif_notes_shown.add(kind)
        warn(message)


def load_image(path: str | Path, expected_hw: Optional[tuple[int, int]] = None) -> Optional[np.ndarray]:
    """Decode an image as BGR uint8 HxWx3; None (after a warning naming the file) when it cannot be read.

    EXIF orientation: with ``expected_hw`` (the size the annotations were made on) the stored grid is kept when
    it matches, and the rotation applied only when the rotated size matches; without it the rotation is applied
    (what a viewer shows).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        warn(f"{path}: cannot read image ({e.strerror or e}); skipped")
        return None
    orientation = 1
    if data[:2] == b"\xff\xd8":
        _, orientation, scan_start = _walk_jpeg(io.BytesIO(data))
        # OpenCV builds differ on truncated JPEGs (some return a half-grey image): require the end marker.
        if scan_start is None or data.find(b"\xff\xd9", scan_start) < 0:
            warn(f"{path}: truncated or corrupt JPEG (no end-of-image marker); skipped")
            return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.size == 0:
        warn(f"{path}: cannot decode image (corrupt or unsupported format); skipped")
        return None
    image = _to_bgr_uint8(image)
    if orientation == 1:
        return image
    stored_hw = image.shape[:2]
    displayed_hw = ImageHeader(stored_hw, orientation).displayed_hw
    if expected_hw is not None and tuple(expected_hw) == stored_hw:
        _note_exif_once("ignored", f"{path}: EXIF orientation {orientation} ignored because the annotation size "
                                   f"matches the stored pixel grid (shown once for this dataset)")
        return image
    if expected_hw is None or tuple(expected_hw) == displayed_hw:
        reason = "the labels refer to the displayed image" if expected_hw is None else \
            "the annotation size matches the rotated image"
        _note_exif_once("applied", f"{path}: EXIF orientation {orientation} applied because {reason} "
                                   f"(shown once for this dataset)")
    return apply_orientation(image, orientation)


def list_images(folder: str | Path, what: str = "image folder") -> list[Path]:
    """The image files directly inside ``folder``, sorted; a one-line UserError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{what} not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise UserError(f"{what} {folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files
