"""Where frames come from: a camera index, the Pi camera ("picamera"), a video file, an image, a folder or a glob
pattern."""
from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import Iterator

import cv2

from ..contract import PICAMERA_SIZE
from ..errors import UserError
from ..image_io import IMAGE_EXTENSIONS, load_image
from .frame import Frame
from .picamera import PICAMERA_SOURCE, PiCamera

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
DEFAULT_FPS = 30.0


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def is_camera(spec: str) -> bool:
    return spec.isdigit()


def is_live_source(spec: str) -> bool:
    """A camera index or the Pi camera (not files)."""
    return is_camera(spec) or spec == PICAMERA_SOURCE


def expand_source(spec: str) -> list[Path]:
    """An image or video file, a folder (its images and videos, sorted) or a glob pattern -> media files."""
    path = Path(spec)
    if path.is_file():
        if not (is_image(path) or is_video(path)):
            known = ", ".join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
            raise UserError(f"{path}: not an image or video file (known: {known})")
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and (is_image(p) or is_video(p)))
        if not files:
            raise UserError(f"{path}: folder has no images or videos")
        return files
    if glob.has_magic(spec):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True))
        files = [p for p in files if p.is_file() and (is_image(p) or is_video(p))]
        if not files:
            raise UserError(f"{spec}: the pattern matches no images or videos")
        return files
    raise UserError(f"source not found: {spec} (give an image, video, folder, glob pattern, camera index or "
                    f"{PICAMERA_SOURCE})")


class VideoFile:
    """Frames of a video file; a file OpenCV cannot open is a UserError naming it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise UserError(f"{path}: cannot open video (unsupported codec or corrupt file)")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            ok, image = self.capture.read()
            if not ok:
                return
            yield Frame(image, str(self.path), index, is_still=False)
            index += 1

    def close(self) -> None:
        self.capture.release()


class Camera:
    """Frames from a camera. Opening failure is a UserError; if the camera stops delivering frames the
    iteration ends and ``stopped_message`` says so."""

    def __init__(self, index: int) -> None:
        self.index = index
        logging = cv2.utils.logging
        previous = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)  # OpenCV's own multi-line warnings would bury our message
        try:
            self.capture = cv2.VideoCapture(index)
            opened = self.capture.isOpened()
        finally:
            logging.setLogLevel(previous)
        if not opened:
            raise UserError(f"cannot open camera {index}: no such device, no permission, or it is in use "
                            f"(check `ls /dev/video*`; or pass a video file or image folder as --source)")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS
        self.frames_read = 0
        self.stopped_message: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        while True:
            ok, image = self.capture.read()
            if not ok or image is None:
                self.stopped_message = f"camera {self.index} stopped delivering frames after {self.frames_read} frames"
                return
            yield Frame(image, f"camera {self.index}", self.frames_read, is_still=False)
            self.frames_read += 1

    def close(self) -> None:
        self.capture.release()


class FrameStream:
    """All frames of a --source, one after another: a camera, the Pi camera, or the files of ``expand_source``.
    Unreadable images and videos inside a folder or pattern are skipped with a warning. ``camera_size``
    (width, height) is the Pi camera's capture size."""

    def __init__(self, spec: str, camera_size: tuple[int, int] = PICAMERA_SIZE) -> None:
        self.spec = spec
        self.camera: Camera | PiCamera | None = None
        if spec == PICAMERA_SOURCE:
            self.camera = PiCamera(camera_size)
        elif is_camera(spec):
            self.camera = Camera(int(spec))
        self.paths = [] if self.camera else expand_source(spec)
        self.fps = self.camera.fps if self.camera else self._first_video_fps()

    @property
    def is_live(self) -> bool:
        """A camera: frames keep coming whether or not they are read (so a busy reader may drop some)."""
        return self.camera is not None

    @property
    def stopped_message(self) -> str | None:
        return self.camera.stopped_message if self.camera else None

    def _first_video_fps(self) -> float:
        for path in self.paths:
            if is_video(path):
                try:
                    video = VideoFile(path)
                except UserError:
                    continue  # reported when the stream reaches it
                video.close()
                return video.fps
        return DEFAULT_FPS

    def __iter__(self) -> Iterator[Frame]:
        if self.camera:
            yield from self.camera
            return
        for path in self.paths:
            if is_video(path):
                try:
                    video = VideoFile(path)
                except UserError as e:
                    if len(self.paths) == 1:
                        raise
                    print(f"warning: {e}; skipped", file=sys.stderr)
                    continue
                try:
                    yield from video
                finally:
                    video.close()
            else:
                image = load_image(path)
                if image is not None:
                    yield Frame(image, str(path), 0, is_still=True)

    def close(self) -> None:
        if self.camera:
            self.camera.close()
