"""``nanogfl demo``: live detection on a camera, the Pi camera, a video, an image or a folder.

Shows a window when a display and a GUI-enabled OpenCV exist; otherwise (a headless Raspberry Pi) it never
aborts: it writes the annotated stream to a video (--save) and/or serves it with its live numbers over HTTP
(--serve). Capture, detection and drawing + encoding run overlapped in three threads (``pipeline``), or in one
with ``serial``.
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

from ..contract import DEMO_MAX_CLIENTS
from ..runtime.detector import Detector
from ..runtime.postprocess import class_counts
from ..runtime.track import TrackerSettings
from .draw import draw_detections
from .mjpeg import MjpegServer, encode_jpeg
from .pipeline import Captured, Detected, captured_frames, run_pipelined, run_serial
from .sources import FrameStream
from .stats import LiveStats
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


def wait_until_interrupted(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


@dataclass
class DemoOutputs:
    """Where the demo sends annotated frames, and how it runs (the ``nanogfl demo`` flags)."""
    video: str | None = None  # write the annotated stream to this video file
    serve_port: int | None = None  # serve it as MJPEG over HTTP on this port (0: any free port)
    host: str = "127.0.0.1"  # the server's address; "0.0.0.0" shares it on the LAN
    max_clients: int = DEMO_MAX_CLIENTS  # stream viewers at once
    window: bool = True  # open a window when a display and a GUI OpenCV exist
    max_frames: int = 0  # stop after this many frames (0: at the end of the source)
    serial: bool = False  # capture, detect and show in one thread (for comparison) instead of three


class Outputs:
    """Where annotated frames go: a window, a video file, an MJPEG server (any combination, possibly none)."""

    def __init__(self, settings: DemoOutputs, fps: float, stats: LiveStats) -> None:
        self.window_reason = open_window() if settings.window else "--no-window"
        if self.window_reason and settings.window:
            print(f"no window: {self.window_reason}", file=sys.stderr)
        self.writer = VideoWriter(settings.video, fps) if settings.video else None
        self.server = None
        if settings.serve_port is not None:
            self.server = MjpegServer(settings.host, settings.serve_port, max_clients=settings.max_clients,
                                      title=stats.model, stats=stats.snapshot).start()
            print(f"serving the annotated stream, {self.server.sharing}; page with live numbers at /, "
                  f"MJPEG at /stream, numbers at /stats.json; at most {settings.max_clients} viewers",
                  file=sys.stderr, flush=True)
        if self.window_reason and self.writer is None and self.server is None:
            print("no window, --save or --serve: detecting and printing FPS only", file=sys.stderr)

    @property
    def has_window(self) -> bool:
        return self.window_reason is None

    def show(self, annotated: np.ndarray, jpeg: bytes | None, is_still: bool) -> bool:
        """Send a frame everywhere; False when the user asked to quit (q or Esc in the window)."""
        if self.writer:
            self.writer.write(annotated)
        if self.server and jpeg is not None:
            self.server.publish_jpeg(jpeg)
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


def detect_stream(stream: FrameStream, detector: Detector, outputs: Outputs, stats: LiveStats,
                  settings: DemoOutputs, tracker: StreamTracker | None = None) -> bool:
    """Run the detector over the stream, pipelined or serial; True when it stopped early (quit key,
    --max-frames or Ctrl+C) rather than at the end of the source. ``stats`` collects the numbers; ``tracker`` follows
    objects across video / camera frames (in frame order: the detector thread runs it)."""
    class_names = detector.class_names
    last_log = time.perf_counter()

    def detect(captured: Captured) -> Detected:
        detections = detector(captured.frame.image)
        if tracker:
            detections = tracker(captured.frame, detections)
        timing, stages = captured.timing, detector.last_timing  # read in the thread that ran the detector
        timing.preprocess_ms, timing.inference_ms = stages.preprocess_ms, stages.inference_ms
        timing.postprocess_ms = stages.postprocess_ms
        return Detected(captured.frame, detections, timing)

    def show(item: Detected) -> bool:
        nonlocal last_log
        timing = item.timing
        start = time.perf_counter()
        annotated = draw_detections(item.frame.image, item.detections, class_names, stats.fps)
        drawn = time.perf_counter()
        jpeg = encode_jpeg(annotated, outputs.server.jpeg_quality) if outputs.server else None
        encoded = time.perf_counter()
        keep_going = outputs.show(annotated, jpeg, item.frame.is_still)
        timing.draw_ms, timing.encode_ms = (drawn - start) * 1e3, (encoded - drawn) * 1e3
        timing.shown_at = time.perf_counter()
        stats.record(timing, class_counts(item.detections.labels.tolist(), class_names))
        if not outputs.has_window and timing.shown_at - last_log > LOG_INTERVAL_S:
            last_log = timing.shown_at
            print(f"frame {stats.frames}: {len(item.detections)} objects, {stats.fps or 0:.1f} FPS, "
                  f"inference {timing.inference_ms:.1f} ms, latency {timing.latency_ms:.1f} ms, "
                  f"{stats.dropped} dropped", file=sys.stderr, flush=True)
        return keep_going and not (settings.max_frames and stats.frames >= settings.max_frames)

    captures = captured_frames(stream)
    try:
        if settings.serial:
            return run_serial(captures, detect, show)
        return run_pipelined(captures, detect, show, drop_frames=stream.is_live,
                             on_drop=lambda _: stats.count_dropped())
    except KeyboardInterrupt:
        return True


def model_label(detector: Detector) -> str:
    return detector.backend.path.name


def run_demo(stream: FrameStream, detector: Detector, settings: DemoOutputs,
             tracking: TrackerSettings | None = None) -> int:
    """Detect on every frame of ``stream`` and show / save / serve the annotated frames; the exit status (1 when
    a camera stopped delivering frames). Closes the stream and every output on every path. With ``tracking``,
    objects are followed across video / camera frames (the detector should keep weak boxes: score_threshold =
    tracking.low_score) and the summary counts the distinct ones."""
    outputs = None
    tracker = StreamTracker(tracking) if tracking else None
    try:
        stats = LiveStats(model_label(detector), detector.meta.input_hw, "serial" if settings.serial else "pipelined")
        outputs = Outputs(settings, stream.fps, stats)
        try:
            stopped_early = detect_stream(stream, detector, outputs, stats, settings, tracker)
        finally:
            stream.close()
            outputs.close_local()
        print_summary(stats, outputs.writer)
        if tracker:
            print(tracker.summary(detector.class_names), file=sys.stderr)
        if stream.stopped_message:
            print(f"nanogfl demo: {stream.stopped_message}", file=sys.stderr)
            return 1
        if outputs.server and stats.frames and not stopped_early:
            wait_until_interrupted(f"source finished; still serving the last frame on port {outputs.server.port} "
                                   f"(Ctrl+C to stop)")
        return 0
    finally:
        stream.close()
        if outputs and outputs.server:
            outputs.server.close()


def print_summary(stats: LiveStats, writer: VideoWriter | None) -> None:
    summary = stats.summary()
    if summary is None:
        print("no frames processed", file=sys.stderr)
        return
    stages = ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in summary.stage_median_ms.items())
    fps = f"{summary.fps:.1f} FPS" if summary.fps else "one frame"
    print(f"{summary.frames} frames ({summary.dropped} dropped), {stats.mode}: {fps}; median per frame: {stages} "
          f"(detection alone {1000 / summary.detect_ms:.1f} FPS); frame-to-display latency mean "
          f"{summary.latency_mean_ms:.1f} ms, p95 {summary.latency_p95_ms:.1f} ms", file=sys.stderr)
    if writer:
        print(f"saved {writer.frames_written} annotated frames to {writer.path}", file=sys.stderr)
