"""``--source picamera``: frames from a Raspberry Pi camera module through Picamera2 (libcamera), which
OpenCV's V4L2 reader does not handle on current Raspberry Pi OS.

Picamera2 comes from apt (``python3-picamera2``), not from pip, so it is imported only when this source is
opened. Its format names follow the DRM/libcamera convention, backwards from OpenCV's: "RGB888" arrays hold each
pixel as [B, G, R] (and "XRGB8888" as [B, G, R, 255]) — already the BGR order OpenCV and the runtime expect, so
no channel swap is made. Untested on camera hardware: the tests drive it with a stand-in of Picamera2's
interface.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterator

import numpy as np

from ..contract import PICAMERA_SIZE
from ..errors import UserError
from .frame import Frame

PICAMERA_SOURCE = "picamera"
PICAMERA_FORMAT = "RGB888"  # 24-bit [B, G, R] per pixel (Picamera2's naming)
DEFAULT_CAMERA_FPS = 30.0
INSTALL_HINT = ("Picamera2 comes from apt, not pip: sudo apt install python3-picamera2, and make the venv with "
                "--system-site-packages (python3 -m venv --system-site-packages ~/nanogfl-env) so it can see it")


class PicameraMissingError(UserError):
    """``--source picamera`` on a system where ``import picamera2`` fails."""


def import_picamera2() -> Callable[[], Any]:
    """The Picamera2 class, or a one-line PicameraMissingError that says how to install it."""
    try:
        from picamera2 import Picamera2
    except ImportError as e:
        raise PicameraMissingError(f"--source picamera: cannot import picamera2 ({e}); {INSTALL_HINT}") from None
    return Picamera2


def to_bgr(array: np.ndarray) -> np.ndarray:
    """A Picamera2 RGB888 (H, W, 3) or XRGB8888 (H, W, 4) array -> a contiguous BGR uint8 (H, W, 3) image."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise UserError(f"--source picamera: expected {PICAMERA_FORMAT} frames (H x W x 3 uint8), "
                        f"got shape {array.shape} {array.dtype}")
    return np.ascontiguousarray(array[:, :, :3])


class PiCamera:
    """Frames from a Pi camera, the same interface as ``sources.Camera``: iterate for ``Frame``s, ``fps``,
    ``stopped_message`` once it stops delivering, ``close()``. ``factory`` makes the Picamera2 object (default:
    ``picamera2.Picamera2``; the tests pass a stand-in)."""

    def __init__(self, size: tuple[int, int] = PICAMERA_SIZE, fps: float = DEFAULT_CAMERA_FPS,
                 factory: Callable[[], Any] | None = None) -> None:
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) <= 0:
            raise UserError(f"--camera-size {self.size[0]} {self.size[1]}: width and height must be positive")
        make_camera = factory or import_picamera2()
        self.fps = fps
        self.frames_read = 0
        self.stopped_message: str | None = None
        self.camera: Any = None
        frame_us = int(round(1e6 / fps))
        try:
            self.camera = make_camera()
            config = self.camera.create_video_configuration(
                main={"size": self.size, "format": PICAMERA_FORMAT},
                controls={"FrameDurationLimits": (frame_us, frame_us)})
            self.camera.configure(config)
            self.camera.start()
        except UserError:
            raise
        except Exception as e:  # libcamera reports "no camera", "in use", a bad size ... as various exceptions
            self.close()
            raise UserError(f"cannot open the Pi camera: {first_line(e)} (is the camera connected and enabled? "
                            f"`rpicam-hello --list-cameras` lists what libcamera sees)") from None

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                array = self.camera.capture_array("main")
            except Exception as e:  # the camera went away mid-stream
                self.stopped_message = (f"Pi camera stopped delivering frames after {self.frames_read} frames "
                                        f"({first_line(e)})")
                return
            if array is None:
                self.stopped_message = f"Pi camera stopped delivering frames after {self.frames_read} frames"
                return
            yield Frame(to_bgr(array), PICAMERA_SOURCE, self.frames_read, is_still=False)
            self.frames_read += 1

    def close(self) -> None:
        camera, self.camera = self.camera, None
        if camera is None:
            return
        for method in ("stop", "close"):
            try:
                getattr(camera, method)()
            except Exception as e:  # closing must not hide the run's own outcome
                print(f"warning: Pi camera {method}() failed: {first_line(e)}", file=sys.stderr)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
