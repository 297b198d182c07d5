"""`nanogfl demo` headless: every frame of a real video saved, MJPEG frames served over HTTP, camera failures."""
import http.client
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import interrupt

from nanogfl.apps import demo, sources
from nanogfl.apps.mjpeg import BOUNDARY, MjpegServer
from nanogfl.cli import main

REPO = Path(__file__).resolve().parents[2]


def count_frames(path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    return count


def read_mjpeg_frames(port: int, count: int, timeout: float = 10.0) -> list[np.ndarray]:
    """Read ``count`` JPEG parts from http://127.0.0.1:port/stream and decode them."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    response = None
    try:
        connection.request("GET", "/stream")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        frames = []
        while len(frames) < count:
            assert response.readline().strip() == f"--{BOUNDARY}".encode()
            headers = {}
            while (line := response.readline().strip()):
                key, value = line.decode().split(":", 1)
                headers[key.lower()] = value.strip()
            assert headers["content-type"] == "image/jpeg"
            payload = response.read(int(headers["content-length"]))
            assert response.readline() == b"\r\n"
            frames.append(cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR))
        return frames
    finally:
        if response is not None:
            response.close()  # it owns the socket (HTTP/1.0): the server sees the viewer leave
        connection.close()


def test_video_every_frame_saved(official_model, shared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = shared_data / "video" / "carphone_pristine.mp4"
    saved = tmp_path / "annotated.mp4"
    status = main(["demo", "--model", str(official_model), "--source", str(video), "--save", str(saved),
                   "--threads", "1", "--size", "160"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "no window: no display" in err and "120 frames" in err
    assert count_frames(saved) == count_frames(video) == 120
    first = cv2.VideoCapture(str(saved)).read()[1]
    assert first.shape == (144, 176, 3)


def test_mjpeg_server_unit():
    server = MjpegServer("127.0.0.1", 0).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/snapshot.jpg")
        assert connection.getresponse().status == 503  # nothing published yet
        connection.close()
        image = np.zeros((48, 64, 3), np.uint8)
        image[:, 32:] = (0, 0, 255)
        publisher_stop = threading.Event()

        def publish():
            while not publisher_stop.is_set():
                server.publish(image)
                time.sleep(0.02)

        threading.Thread(target=publish, daemon=True).start()
        frames = read_mjpeg_frames(server.port, 3)
        publisher_stop.set()
        for frame in frames:
            assert frame.shape == image.shape
            assert np.abs(frame.astype(int) - image).mean() < 5  # a JPEG of the published picture
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/")
        page = connection.getresponse()
        assert page.status == 200 and b'src="/stream"' in page.read()
        connection.close()
    finally:
        server.close()


def test_demo_serves_mjpeg_headless(official_model, shared_data):
    video = shared_data / "video" / "carphone_pristine.mp4"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen(
        [sys.executable, "-m", "nanogfl", "demo", "--model", str(official_model), "--source", str(video),
         "--serve", "0", "--host", "127.0.0.1", "--threads", "1", "--size", "160"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    try:
        port, deadline, seen = None, time.monotonic() + 60, []
        while port is None and time.monotonic() < deadline and process.poll() is None:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", seen[-1])
            port = int(match.group(1)) if match else None
        assert port, f"the demo did not announce its server: {seen}"
        frames = read_mjpeg_frames(port, 3)
        assert all(frame is not None and frame.shape == (144, 176, 3) for frame in frames)
    finally:
        interrupt(process)
    rest = "".join(seen) + "".join(lines.get() for _ in range(lines.qsize()))
    assert process.returncode == 0, rest
    assert "Traceback" not in rest


def test_unopenable_camera_exits_cleanly(official_model, capsys):
    status = main(["demo", "--model", str(official_model), "--source", "97", "--no-window", "--threads", "1"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("nanogfl demo: error: cannot open camera 97") and len(err.splitlines()) == 1


class FlakyCamera:
    """Stands in for cv2.VideoCapture(index): three frames, then nothing."""

    def __init__(self, index):
        self.frames = 3

    def isOpened(self):
        return True

    def get(self, prop):
        return 30.0

    def read(self):
        if self.frames == 0:
            return False, None
        self.frames -= 1
        return True, np.full((120, 160, 3), 90, np.uint8)

    def release(self):
        pass


@pytest.mark.parametrize("serial", [True, False])
def test_camera_that_stops_delivering(official_model, monkeypatch, tmp_path, capsys, serial):
    monkeypatch.setattr(sources.cv2, "VideoCapture", FlakyCamera)
    saved = tmp_path / "camera.avi"
    status = main(["demo", "--model", str(official_model), "--source", "0", "--no-window", "--save", str(saved),
                   "--threads", "1", "--size", "160"] + (["--serial"] if serial else []))
    err = capsys.readouterr().err
    assert status == 1
    assert "nanogfl demo: camera 0 stopped delivering frames after 3 frames" in err
    assert "Traceback" not in err
    shown, dropped = map(int, re.search(r"(\d+) frames \((\d+) dropped\)", err).groups())
    # the stand-in delivers instantly: pipelined, a frame that comes while the previous one waits replaces it
    # (counted as dropped); the last one is always shown
    assert shown + dropped == 3 and (dropped == 0 if serial else shown >= 1)
    monkeypatch.undo()  # count_frames needs the real cv2.VideoCapture
    assert count_frames(saved) == shown  # what was recorded before the failure is kept, properly closed


def test_window_detection_never_aborts(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        assert "no display" in demo.open_window()
    monkeypatch.setenv("DISPLAY", ":99")
    if re.search(r"GUI:\s*NONE", cv2.getBuildInformation()):
        assert "no GUI support" in demo.open_window()  # the pip headless build: reported, not raised
    else:
        pytest.skip("this OpenCV has GUI support; opening a window on a fake display is not tested")


@pytest.mark.parametrize("script,command", [("webcam.py", "demo"), ("benchmark.py", "benchmark")])
def test_entry_point_scripts_wrap_the_cli(script, command):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the script must find the checkout itself
    completed = subprocess.run([sys.executable, str(REPO / "demo" / script), "--help"], capture_output=True,
                               text=True, timeout=60, env=env, cwd="/")
    assert completed.returncode == 0 and f"usage: nanogfl {command}" in completed.stdout
