"""Serve the annotated stream as MJPEG over HTTP (stdlib only), so a headless device can be watched in a browser.

``/`` is a page showing the stream, ``/stream`` the ``multipart/x-mixed-replace`` MJPEG stream itself and
``/snapshot.jpg`` the latest frame. Frames are JPEG-encoded once in ``publish`` and shared by all viewers.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from ..errors import UserError

BOUNDARY = "nanogflframe"
RESEND_SECONDS = 1.0  # with no new frame (paused or finished source) the last one is sent again this often

PAGE = """<!doctype html><html><head><title>nanogfl</title></head>
<body style="margin:0;background:#111"><img src="/stream" style="max-width:100%;height:auto"></body></html>"""


class MjpegServer:
    def __init__(self, host: str = "0.0.0.0", port: int = 8080, jpeg_quality: int = 80) -> None:
        self.jpeg_quality = jpeg_quality
        self._condition = threading.Condition()
        self._jpeg: bytes | None = None
        self._sequence = 0
        self._closed = False
        try:
            self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        except OSError as e:
            raise UserError(f"cannot serve on {host}:{port}: {e.strerror or e} "
                            f"(port in use? try another --serve port)") from None
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mjpeg-server", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    def start(self) -> "MjpegServer":
        self._thread.start()
        return self

    def publish(self, image_bgr: np.ndarray) -> None:
        ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return
        with self._condition:
            self._jpeg = encoded.tobytes()
            self._sequence += 1
            self._condition.notify_all()

    def next_frame(self, last_sequence: int, timeout: float) -> tuple[int, bytes | None]:
        """The frame after ``last_sequence``, or the current one again after ``timeout``; None once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._closed or self._sequence != last_sequence, timeout)
            if self._closed:
                return self._sequence, None
            return self._sequence, self._jpeg

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
            timeout = 10  # a viewer that stops reading is dropped instead of blocking its thread forever

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", PAGE.encode())
                elif path == "/snapshot.jpg":
                    _, jpeg = server.next_frame(-1, 0)
                    if jpeg is None:
                        self._send(503, "text/plain", b"no frame yet\n")
                    else:
                        self._send(200, "image/jpeg", jpeg)
                elif path == "/stream":
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found; try / or /stream\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                sequence = 0
                try:
                    while True:
                        sequence, jpeg = server.next_frame(sequence, RESEND_SECONDS)
                        if server._closed:
                            return
                        if jpeg is None:
                            continue  # nothing published yet
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    return  # the viewer went away

            def log_message(self, format: str, *args) -> None:
                pass  # one line per request would drown the demo's own output

        return Handler
