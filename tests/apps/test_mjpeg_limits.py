"""The demo's HTTP server: a viewer that never reads does not hold up publishing, viewers and connections are
bounded with a one-line 503, /stats.json carries the numbers, the log/page say who can open it."""
import http.client
import json
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from helpers import http_get
from test_demo import read_mjpeg_frames

from nanogfl.apps import mjpeg
from nanogfl.apps.mjpeg import SHORT_REQUEST_SLOTS, MjpegServer, sharing_note


def big_jpeg() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), np.uint8)  # noise hardly compresses
    jpeg = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    assert len(jpeg) > 500_000
    return jpeg


def open_stalled_viewer(port: int) -> socket.socket:
    """A viewer that asks for the stream and then never reads a byte."""
    stalled = socket.create_connection(("127.0.0.1", port), timeout=5)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    return stalled


def wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_stalled_viewer_never_blocks_publishing(monkeypatch):
    monkeypatch.setattr(mjpeg, "CLIENT_TIMEOUT_S", 1)
    server = MjpegServer("127.0.0.1", 0, max_clients=3, stats=lambda: {"frames": 7}).start()
    stalled = open_stalled_viewer(server.port)
    stop = threading.Event()
    slowest_publish = [0.0]
    published = [0]

    def publish():  # ~1 MB 50 times a second at a viewer that reads nothing: its buffers fill within a second
        jpeg = big_jpeg()
        while not stop.is_set():
            start = time.perf_counter()
            server.publish_jpeg(jpeg)
            slowest_publish[0] = max(slowest_publish[0], time.perf_counter() - start)
            published[0] += 1
            time.sleep(0.02)

    try:
        assert wait_until(lambda: server.viewers == 1)
        threading.Thread(target=publish, daemon=True).start()
        time.sleep(2)
        frames = read_mjpeg_frames(server.port, 3)  # another viewer is served meanwhile
        assert frames[-1].shape == (720, 1280, 3)
        status, body = http_get(server.port, "/stats.json", timeout=5)
        stats = json.loads(body)
        assert status == 200 and stats["frames"] == 7 and stats["server"]["max_clients"] == 3
        assert wait_until(lambda: server.viewers == 0, 10)  # the stalled viewer is let go after its timeout
        assert published[0] > 20 and slowest_publish[0] < 0.8  # went on, never waiting for a viewer (timeout: 1 s)
    finally:
        stop.set()
        stalled.close()
        server.close()


def test_viewers_past_the_limit_get_a_one_line_503():
    server = MjpegServer("127.0.0.1", 0, max_clients=1).start()
    stop = threading.Event()

    def publish():
        while not stop.is_set():
            server.publish(np.zeros((16, 16, 3), np.uint8))
            time.sleep(0.01)

    threading.Thread(target=publish, daemon=True).start()
    first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        first.request("GET", "/stream")
        assert first.getresponse().status == 200
        status, body = http_get(server.port, "/stream", timeout=5)
        assert status == 503
        assert body.decode().count("\n") == 1 and "at most 1 viewers at once (--max-clients)" in body.decode()
        still_answered = [http_get(server.port, path, timeout=5)[0] for path in ("/stats.json", "/")]
        assert still_answered == [200, 200]
        first.close()
        assert wait_until(lambda: server.viewers == 0)  # the server notices on its next write
        assert len(read_mjpeg_frames(server.port, 2)) == 2
    finally:
        stop.set()
        first.close()
        server.close()


def test_connections_past_the_limit_are_refused():
    server = MjpegServer("127.0.0.1", 0, max_clients=1).start()
    idle = []
    try:  # connections that never send a request each hold a server thread until they time out
        for _ in range(1 + SHORT_REQUEST_SLOTS):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        assert wait_until(lambda: server._httpd.connections == 1 + SHORT_REQUEST_SLOTS)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            answer = extra.recv(4096).decode()
        assert answer.startswith("HTTP/1.0 503") and answer.endswith("too many connections at once; try again later\n")
    finally:
        for connection in idle:
            connection.close()
        server.close()


@pytest.mark.parametrize("host,expected", [("127.0.0.1", "local only: http://127.0.0.1:8080/"),
                                           ("0.0.0.0", "shared on the LAN"), ("192.168.1.5", "bound to 192.168.1.5")])
def test_sharing_note(host, expected):
    assert expected in sharing_note(host, 8080)
