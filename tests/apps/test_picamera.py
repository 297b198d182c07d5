"""``--source picamera`` through a stand-in with Picamera2's interface: frames arrive in BGR unchanged, the camera
is configured and closed, failures are one line (not installed, cannot open, stops delivering)."""
import sys
import types

import cv2
import numpy as np
import pytest

from nanogfl.apps.picamera import PICAMERA_FORMAT, PiCamera, PicameraMissingError, import_picamera2, to_bgr
from nanogfl.apps.sources import FrameStream
from nanogfl.cli import main
from nanogfl.errors import UserError


class StandInPicamera2:
    """Picamera2's calls that the adapter makes: create_video_configuration, configure, start, capture_array,
    stop, close. Its "RGB888" arrays hold [B, G, R] per pixel, like the real library's."""

    def __init__(self, images: list[np.ndarray] | None = None, fail_on_open: Exception | None = None) -> None:
        if fail_on_open:
            raise fail_on_open
        self.images = list(images or [])
        self.calls: list[str] = []
        self.config: dict = {}

    def create_video_configuration(self, main: dict, controls: dict) -> dict:
        self.calls.append("create_video_configuration")
        return {"main": main, "controls": controls}

    def configure(self, config: dict) -> None:
        self.calls.append("configure")
        self.config = config

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert name == "main" and "start" in self.calls
        if not self.images:
            raise RuntimeError("Camera frontend has timed out!\nmore detail")
        return self.images.pop(0)

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def coco_bgr(coco_images) -> np.ndarray:
    return cv2.resize(cv2.imread(str(coco_images[0])), (320, 240))


def test_frames_keep_their_bgr_order(coco_bgr):
    bgra = np.dstack([coco_bgr, np.full(coco_bgr.shape[:2], 255, np.uint8)])  # an XRGB8888 frame: [B, G, R, 255]
    stand_in = StandInPicamera2([coco_bgr.copy(), bgra])
    camera = PiCamera((320, 240), fps=25, factory=lambda: stand_in)
    assert stand_in.config["main"] == {"size": (320, 240), "format": PICAMERA_FORMAT}
    assert stand_in.config["controls"] == {"FrameDurationLimits": (40000, 40000)}
    assert camera.fps == 25
    frames = list(camera)
    assert [f.index for f in frames] == [0, 1] and all(f.source == "picamera" and not f.is_still for f in frames)
    for frame in frames:
        assert frame.image.shape == (240, 320, 3) and frame.image.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(frame.image, coco_bgr)  # no channel swap: RGB888 is already B, G, R
    assert camera.stopped_message == ("Pi camera stopped delivering frames after 2 frames "
                                      "(Camera frontend has timed out!)")
    camera.close()
    camera.close()  # twice is harmless
    assert stand_in.calls == ["create_video_configuration", "configure", "start", "stop", "close"]


def test_unexpected_array_or_size_is_a_clear_error():
    with pytest.raises(UserError, match="--camera-size 0 480: width and height must be positive"):
        PiCamera((0, 480), factory=StandInPicamera2)
    with pytest.raises(UserError, match=r"expected RGB888 frames .*got shape \(4, 4\)"):
        to_bgr(np.zeros((4, 4), np.uint8))


def test_camera_that_cannot_open():
    with pytest.raises(UserError) as error:
        PiCamera(factory=lambda: StandInPicamera2(fail_on_open=RuntimeError("Camera __init__ sequence did not "
                                                                             "complete.")))
    message = str(error.value)
    assert message.startswith("cannot open the Pi camera: Camera __init__ sequence did not complete.")
    assert "rpicam-hello --list-cameras" in message and "\n" not in message


def test_not_installed_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # `import picamera2` raises ImportError
    with pytest.raises(PicameraMissingError) as error:
        import_picamera2()
    message = str(error.value)
    assert "sudo apt install python3-picamera2" in message and "--system-site-packages" in message
    assert "\n" not in message
    status = main(["demo", "--model", "never_opened.param", "--source", "picamera", "--no-window"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1  # one line, before any model is opened
    assert err.startswith("nanogfl demo: error: --source picamera: cannot import picamera2")


def test_demo_on_the_pi_camera(official_model, coco_bgr, monkeypatch, capsys, tmp_path):
    stand_in = StandInPicamera2([coco_bgr.copy() for _ in range(3)])
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=lambda: stand_in))
    probe = FrameStream("picamera")
    assert probe.is_live
    probe.close()
    saved = tmp_path / "picamera.avi"
    status = main(["demo", "--model", str(official_model), "--source", "picamera", "--camera-size", "320", "240",
                   "--no-window", "--serial", "--save", str(saved), "--threads", "1", "--size", "160"])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "nanogfl demo: Pi camera stopped delivering frames after 3 frames" in err
    assert "3 frames (0 dropped), serial" in err and "Traceback" not in err
    assert stand_in.calls[-2:] == ["stop", "close"]
