"""``nanogfl demo``: live detection on a camera, video, image or folder.

Shows a window when a display and a GUI-enabled OpenCV exist; otherwise (a headless Raspberry Pi) it never
aborts: it writes the annotated stream to a video (--save) and/or serves it as MJPEG over HTTP (--serve).
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..runtime.detector import Detector
from ..runtime.track import TrackerSettings
from .draw import draw_detections
from .mjpeg import MjpegServer
from .sources import FrameStream
from .tracking import StreamTracker
from .video_writer import VideoWriter

WINDOW_NAME = "nanogfl"
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc
LOG_INTERVAL_S = 5.0


def open_window(name: str = WINDOW_NAME) -> str | None:
    """Open an OpenCV window; None when it worked, else why not. Checks for a display first, because a GUI build
    of OpenCV aborts the whole process on imshow when there is none; the pip headless build raises instead."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    if re.search(r"GUI:\s*NONE", cv2.getBuildInformation()):
        return "this OpenCV has no GUI support (opencv-python-headless); pip install opencv-python for a window"
    try:
        cv2.namedWindow(name, cv2.WINDOW_NORMAL)
    except cv2.error as e:
        return f"OpenCV cannot open a window ({str(e).strip().splitlines()[-1]})"
    return None


class FpsMeter:
    """Frames per second over the recent past (exponential moving average of frame intervals)."""

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self._last: float | None = None
        self._interval: float | None = None

    def tick(self) -> float | None:
        now = time.perf_counter()
        if self._last is not None:
            dt = max(now - self._last, 1e-6)
            previous = dt if self._interval is None else self._interval
            self._interval = self.smoothing * previous + (1 - self.smoothing) * dt
        self._last = now
        return None if self._interval is None else 1.0 / self._interval


def wait_until_interrupted(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


@dataclass
class DemoOutputs:
    """Where the demo sends annotated frames (the ``nanogfl demo`` flags)."""
    video: str | None = None  # write the annotated stream to this video file
    serve_port: int | None = None  # serve it as MJPEG over HTTP on this port (0: any free port)
    host: str = "0.0.0.0"
    window: bool = True  # open a window when a display and a GUI OpenCV exist
    max_frames: int = 0  # stop after this many frames (0: at the end of the source)


class Outputs:
    """Where annotated frames go: a window, a video file, an MJPEG server (any combination, possibly none)."""

    def __init__(self, settings: DemoOutputs, fps: float) -> None:
        self.window_reason = open_window() if settings.window else "--no-window"
        if self.window_reason and settings.window:
            print(f"no window: {self.window_reason}", file=sys.stderr)
        self.writer = VideoWriter(settings.video, fps) if settings.video else None
        self.server = None
        if settings.serve_port is not None:
            self.server = MjpegServer(settings.host, settings.serve_port).start()
            shown_host = "localhost" if settings.host in ("0.0.0.0", "") else settings.host
            print(f"serving the annotated stream at http://{shown_host}:{self.server.port}/ (MJPEG: /stream)",
                  file=sys.stderr, flush=True)
        if self.window_reason and self.writer is None and self.server is None:
            print("no window, --save or --serve: detecting and printing FPS only", file=sys.stderr)

    @property
    def has_window(self) -> bool:
        return self.window_reason is None

    def show(self, annotated: np.ndarray, is_still: bool) -> bool:
        """Send a frame everywhere; False when the user asked to quit (q or Esc in the window)."""
        if self.writer:
            self.writer.write(annotated)
        if self.server:
            self.server.publish(annotated)
        if self.has_window:
            cv2.imshow(WINDOW_NAME, annotated)
            return (cv2.waitKey(0 if is_still else 1) & 0xFF) not in QUIT_KEYS
        return True

    def close_local(self) -> None:
        """Finish the video file and the window; the server stays up (it may go on showing the last frame)."""
        if self.writer:
            self.writer.close()
        if self.has_window:
            cv2.destroyAllWindows()


def detect_stream(stream: FrameStream, detector: Detector, outputs: Outputs, max_frames: int,
                  tracker: StreamTracker | None = None) -> tuple[list[tuple[float, float, float]], bool]:
    """Run the detector over the stream (and the tracker over video and camera frames); returns the per-frame
    stage timings and whether it stopped early (quit key, --max-frames or Ctrl+C) rather than at the end."""
    meter = FpsMeter()
    timings: list[tuple[float, float, float]] = []
    last_log = time.perf_counter()
    try:
        for frame in stream:
            detections = detector(frame.image)
            if tracker:
                detections = tracker(frame, detections)
            fps = meter.tick()
            timing = detector.last_timing
            timings.append((timing.preprocess_ms, timing.inference_ms, timing.postprocess_ms))
            if not outputs.show(draw_detections(frame.image, detections, detector.class_names, fps), frame.is_still):
                return timings, True
            if not outputs.has_window and time.perf_counter() - last_log > LOG_INTERVAL_S:
                last_log = time.perf_counter()
                print(f"frame {len(timings)}: {len(detections)} objects, {fps or 0:.1f} FPS, "
                      f"inference {timing.inference_ms:.1f} ms", file=sys.stderr, flush=True)
            if max_frames and len(timings) >= max_frames:
                return timings, True
    except KeyboardInterrupt:
        return timings, True
    return timings, False


def run_demo(stream: FrameStream, detector: Detector, settings: DemoOutputs,
             tracking: TrackerSettings | None = None) -> int:
    """Detect on every frame of ``stream`` and show / save / serve the annotated frames; the exit status (1 when
    a camera stopped delivering frames). Closes the stream and every output on every path. With ``tracking``,
    objects are followed across video / camera frames (the detector should keep weak boxes: score_threshold =
    tracking.low_score) and the summary counts the distinct ones."""
    outputs = None
    tracker = StreamTracker(tracking) if tracking else None
    try:
        outputs = Outputs(settings, stream.fps)
        try:
            timings, stopped_early = detect_stream(stream, detector, outputs, settings.max_frames, tracker)
        finally:
            stream.close()
            outputs.close_local()
        print_summary(timings, outputs.writer)
        if tracker:
            print(tracker.summary(detector.class_names), file=sys.stderr)
        if stream.stopped_message:
            print(f"nanogfl demo: {stream.stopped_message}", file=sys.stderr)
            return 1
        if outputs.server and timings and not stopped_early:
            wait_until_interrupted(f"source finished; still serving the last frame on port {outputs.server.port} "
                                   f"(Ctrl+C to stop)")
        return 0
    finally:
        stream.close()
        if outputs and outputs.server:
            outputs.server.close()


def print_summary(timings: list[tuple[float, float, float]], writer: VideoWriter | None) -> None:
    if not timings:
        print("no frames processed", file=sys.stderr)
        return
    pre, infer, post = np.median(np.asarray(timings), axis=0)
    print(f"{len(timings)} frames; median per frame: preprocess {pre:.1f} ms, inference {infer:.1f} ms, "
          f"postprocess {post:.1f} ms ({1000 / (pre + infer + post):.1f} FPS without drawing)", file=sys.stderr)
    if writer:
        print(f"saved {writer.frames_written} annotated frames to {writer.path}", file=sys.stderr)
