"""Writing annotated frames to a video file with OpenCV, opened lazily on the first frame."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


class VideoWriter:
    """``write(frame)`` as often as needed, then ``close()``. Every frame takes the first frame's size."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC_BY_SUFFIX:
            raise UserError(f"{self.path}: cannot write this video type; use one of {', '.join(FOURCC_BY_SUFFIX)}")
        self.fps = fps
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None  # (width, height)

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self._open(frame)
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.frames_written += 1

    def _open(self, frame: np.ndarray) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = (frame.shape[1], frame.shape[0])
        fourcc = cv2.VideoWriter_fourcc(*FOURCC_BY_SUFFIX[self.path.suffix.lower()])
        self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
        if not self._writer.isOpened():
            raise UserError(f"{self.path}: OpenCV cannot write a {self.path.suffix} video here "
                            f"(folder not writable, or codec missing: try .avi)")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
