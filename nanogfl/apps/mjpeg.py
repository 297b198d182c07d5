"""Serve the annotated stream as MJPEG over HTTP (stdlib only), so a headless device can be watched in a browser.

``/`` is a page with the stream and the live numbers (``demo_page``), ``/stream`` the
``multipart/x-mixed-replace`` MJPEG stream, ``/snapshot.jpg`` the latest frame and ``/stats.json`` the numbers.

``publish`` only swaps the latest JPEG under a lock and wakes the viewers: each viewer's thread sends it at that
viewer's own pace (a slow viewer skips frames), so no viewer — slow, stalled or gone — ever holds up the
detector. At most ``max_clients`` viewers watch the stream at once; short requests (page, numbers, snapshot) are
bounded too; past a limit the answer is a one-line 503.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import cv2
import numpy as np

from ..contract import DEMO_MAX_CLIENTS
from ..errors import UserError
from .demo_page import render_page

BOUNDARY = "nanogflframe"
RESEND_SECONDS = 1.0  # with no new frame (paused or finished source) the last one is sent again this often
SHORT_REQUEST_SLOTS = 16  # connections beyond the viewers (page, /stats.json polls, snapshots)
CLIENT_TIMEOUT_S = 10  # a viewer that stops reading is dropped after this long instead of holding its thread
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ALL_INTERFACES = ("0.0.0.0", "", "::")


def encode_jpeg(image_bgr: np.ndarray, quality: int = 80) -> bytes | None:
    ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return encoded.tobytes() if ok else None


def sharing_note(host: str, port: int) -> str:
    """Who can open the page, in words (printed in the log and shown on the page)."""
    if host in LOOPBACK_HOSTS:
        return f"local only: http://{host}:{port}/ works on this machine alone (--host 0.0.0.0 shares it on the LAN)"
    if host in ALL_INTERFACES:
        return (f"shared on the LAN: any machine that reaches this one can open http://{lan_address()}:{port}/ "
                f"(--host 127.0.0.1 keeps it local)")
    return f"bound to {host}: http://{host}:{port}/"


def lan_address() -> str:
    """This machine's address on its default route (no packet is sent), or a placeholder."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects the outgoing interface
            return probe.getsockname()[0]
    except OSError:
        return "<this machine's address>"


def refusal(message: str) -> bytes:
    body = (message + "\n").encode()
    return (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that refuses connections past ``max_connections`` with a one-line 503."""
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int,
                 refusal_message: str) -> None:
        self.max_connections = max_connections
        self.refusal_message = refusal_message
        self.connections = 0
        self._count_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        with self._count_lock:
            full = self.connections >= self.max_connections
            if not full:
                self.connections += 1
        if not full:
            super().process_request(request, client_address)
            return
        try:  # a few bytes into a fresh socket's empty buffer: does not block the accepting thread
            request.settimeout(0.5)
            request.sendall(refusal(self.refusal_message))
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self.connections -= 1


class MjpegServer:
    """The demo's HTTP server: ``start()``, ``publish`` frames (or ``publish_jpeg``), ``close()``.
    ``stats`` (called in the server's threads) gives the numbers of /stats.json; ``title`` heads the page."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, jpeg_quality: int = 80,
                 max_clients: int = DEMO_MAX_CLIENTS, title: str = "nanogfl",
                 stats: Callable[[], dict] | None = None) -> None:
        if max_clients < 1:
            raise UserError(f"--max-clients {max_clients}: must be at least 1")
        self.jpeg_quality = jpeg_quality
        self.max_clients = max_clients
        self.title = title
        self.stats = stats
        self._condition = threading.Condition()
        self._jpeg: bytes | None = None
        self._sequence = 0
        self._closed = False
        self._viewer_slots = threading.BoundedSemaphore(max_clients)
        self._viewers_lock = threading.Lock()
        self.viewers = 0
        try:
            self._httpd = BoundedHTTPServer((host, port), self._handler_class(), max_clients + SHORT_REQUEST_SLOTS,
                                            "nanogfl demo: too many connections at once; try again later")
        except OSError as e:
            raise UserError(f"cannot serve on {host}:{port}: {e.strerror or e} "
                            f"(port in use? try another --serve port)") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mjpeg-server", daemon=True)
        self._page = render_page(title, sharing_note(self.host, self.port)).encode()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    @property
    def sharing(self) -> str:
        return sharing_note(self.host, self.port)

    def start(self) -> "MjpegServer":
        self._thread.start()
        return self

    def publish(self, image_bgr: np.ndarray) -> None:
        jpeg = encode_jpeg(image_bgr, self.jpeg_quality)
        if jpeg is not None:
            self.publish_jpeg(jpeg)

    def publish_jpeg(self, jpeg: bytes) -> None:
        """Make ``jpeg`` the latest frame. Never waits for a viewer: the viewers' threads do the sending."""
        with self._condition:
            self._jpeg = jpeg
            self._sequence += 1
            self._condition.notify_all()

    def next_frame(self, last_sequence: int, timeout: float) -> tuple[int, bytes | None]:
        """The frame after ``last_sequence``, or the current one again after ``timeout``; None once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._closed or self._sequence != last_sequence, timeout)
            if self._closed:
                return self._sequence, None
            return self._sequence, self._jpeg

    def stats_json(self) -> dict:
        numbers = self.stats() if self.stats else {}
        return {**numbers, "server": {"host": self.host, "port": self.port, "sharing": self.sharing,
                                      "viewers": self.viewers, "max_clients": self.max_clients}}

    def _count_viewer(self, change: int) -> None:
        with self._viewers_lock:
            self.viewers += change

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = CLIENT_TIMEOUT_S

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", server._page)
                elif path == "/stats.json":
                    self._send(200, "application/json", json.dumps(server.stats_json()).encode())
                elif path == "/snapshot.jpg":
                    _, jpeg = server.next_frame(-1, 0)
                    if jpeg is None:
                        self._send(503, "text/plain", b"no frame yet\n")
                    else:
                        self._send(200, "image/jpeg", jpeg)
                elif path == "/stream":
                    if not server._viewer_slots.acquire(blocking=False):
                        self._send(503, "text/plain; charset=utf-8",
                                   f"nanogfl demo: at most {server.max_clients} viewers at once "
                                   f"(--max-clients); try again later\n".encode())
                        return
                    try:
                        server._count_viewer(+1)
                        self._stream()
                    finally:
                        server._count_viewer(-1)
                        server._viewer_slots.release()
                else:
                    self._send(404, "text/plain", b"not found; try /, /stream, /snapshot.jpg or /stats.json\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client went away

            def _stream(self) -> None:
                sequence = 0
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    while True:
                        sequence, jpeg = server.next_frame(sequence, RESEND_SECONDS)
                        if server._closed:
                            return
                        if jpeg is None:
                            continue  # nothing published yet
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                except OSError:
                    return  # the viewer went away, or stopped reading for CLIENT_TIMEOUT_S (socket timeout)

            def log_message(self, format: str, *args: object) -> None:
                pass  # one line per request would drown the demo's own output

        return Handler
