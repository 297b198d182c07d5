"""The demo's live numbers: FPS, per-stage latency, frame-to-display latency, dropped frames, class counts.

One ``FrameTiming`` per shown frame; ``LiveStats`` keeps the recent ones (for the page and /stats.json) and a
bounded history (for the summary at the end). It is written by the thread that shows frames and read by the
HTTP server's threads, so every access takes its lock (briefly: no I/O under it).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

STAGES = ("capture", "preprocess", "inference", "postprocess", "draw", "encode")
RECENT_FRAMES = 30  # the page's numbers are medians over this many recent frames
HISTORY_FRAMES = 10_000  # the summary covers at most this many last frames (a camera may run for days)


@dataclass
class FrameTiming:
    """Where one frame's time went (ms per stage), and when it left the source and when it was shown."""
    captured_at: float  # time.perf_counter() when the source delivered it
    capture_ms: float = 0.0
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0
    draw_ms: float = 0.0
    encode_ms: float = 0.0
    shown_at: float = 0.0  # time.perf_counter() once written / published / shown

    @property
    def latency_ms(self) -> float:
        """Frame-to-display latency: from the source delivering the frame to its annotated copy being out."""
        return (self.shown_at - self.captured_at) * 1e3

    def stage_ms(self) -> list[float]:
        return [self.capture_ms, self.preprocess_ms, self.inference_ms, self.postprocess_ms, self.draw_ms,
                self.encode_ms]


class FpsMeter:
    """Frames per second over the recent past (exponential moving average of frame intervals)."""

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self._last: float | None = None
        self._interval: float | None = None

    def tick(self, now: float | None = None) -> float | None:
        now = time.perf_counter() if now is None else now
        if self._last is not None:
            dt = max(now - self._last, 1e-6)
            previous = dt if self._interval is None else self._interval
            self._interval = self.smoothing * previous + (1 - self.smoothing) * dt
        self._last = now
        return self.fps

    @property
    def fps(self) -> float | None:
        return None if self._interval is None else 1.0 / self._interval


class LiveStats:
    """The running numbers of one demo run. ``record`` once per shown frame; ``dropped`` is counted by the
    capture side; ``snapshot`` is the JSON the page shows; ``summary`` the numbers over the whole run."""

    def __init__(self, model: str, input_hw: tuple[int, int], mode: str) -> None:
        self.model = model
        self.input_hw = input_hw
        self.mode = mode  # "pipelined" or "serial"
        self.frames = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._meter = FpsMeter()
        self._recent: deque[FrameTiming] = deque(maxlen=RECENT_FRAMES)
        self._history: deque[FrameTiming] = deque(maxlen=HISTORY_FRAMES)
        self._counts: dict[str, int] = {}
        self._objects = 0
        self._started = time.perf_counter()

    @property
    def fps(self) -> float | None:
        return self._meter.fps

    def record(self, timing: FrameTiming, counts: dict[str, int]) -> None:
        with self._lock:
            self.frames += 1
            self._meter.tick(timing.shown_at)
            self._recent.append(timing)
            self._history.append(timing)
            self._counts = counts
            self._objects = sum(counts.values())

    def count_dropped(self, frames: int = 1) -> None:
        with self._lock:
            self.dropped += frames

    def snapshot(self) -> dict:
        """What /stats.json serves: medians over the last frames; None before the first frame."""
        with self._lock:
            recent = list(self._recent)
            fps, frames, dropped, counts, objects = self._meter.fps, self.frames, self.dropped, self._counts, \
                self._objects
        stages = np.median([t.stage_ms() for t in recent], axis=0).tolist() if recent else [None] * len(STAGES)
        latency = float(np.median([t.latency_ms for t in recent])) if recent else None
        return {
            "model": self.model, "input_size": list(self.input_hw), "mode": self.mode,
            "fps": rounded(fps), "frames": frames, "dropped": dropped,
            "latency_ms": rounded(latency),
            "stages_ms": {stage: rounded(value) for stage, value in zip(STAGES, stages)},
            "objects": objects, "classes": dict(counts),
            "uptime_s": round(time.perf_counter() - self._started, 1),
        }

    def summary(self) -> "RunSummary | None":
        with self._lock:
            history = list(self._history)
            frames, dropped = self.frames, self.dropped
        if not history:
            return None
        first, last = history[0].shown_at, history[-1].shown_at
        latencies = np.asarray([t.latency_ms for t in history])
        return RunSummary(
            frames=frames, dropped=dropped,
            fps=(len(history) - 1) / (last - first) if last > first else None,
            stage_median_ms=dict(zip(STAGES, np.median([t.stage_ms() for t in history], axis=0).tolist())),
            latency_mean_ms=float(latencies.mean()), latency_p95_ms=float(np.percentile(latencies, 95)))


@dataclass
class RunSummary:
    """A run's numbers: frames shown and dropped, FPS between the first and last shown frame, stage medians,
    frame-to-display latency mean and 95th percentile."""
    frames: int
    dropped: int
    fps: float | None
    stage_median_ms: dict[str, float]
    latency_mean_ms: float
    latency_p95_ms: float

    @property
    def detect_ms(self) -> float:
        return sum(self.stage_median_ms[stage] for stage in ("preprocess", "inference", "postprocess"))


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)
