"""The demo loop pipelined (capture, detect, draw + encode in three threads) vs serial (one thread), same run.

    python benchmarks/bench_demo_pipeline.py [--model M.param] [--video V.mp4] [--threads 1] [--rounds 3]
                                             [--frame-size W H] [--camera-fps 0]

Runs ``nanogfl demo``'s own loop (``apps.demo.detect_stream``) headless, serving on a loopback port with no viewer
(so every frame is drawn and JPEG-encoded and published as for a viewer), on the real clip of
../shared/data/video with the official NanoDet-Plus-m 416 ncnn model of ../shared/data (the runtime infers its
metadata; an exported model with its json beside it is used as it is). Two sources:

* ``file``: the video file read as fast as it decodes (nothing is dropped; every frame is shown);
* ``camera``: the clip played as a live camera at ``--camera-fps`` (default: the clip's own): frame k is taken at
  start + k / fps whether or not anyone reads, and, like OpenCV's V4L2 reader with its 4 driver buffers, the
  oldest 4 unread frames are kept and newer ones are lost while they are full. Latency counts from when a frame
  was taken, so a stale buffered frame shows as latency; the pipelined demo's capture thread keeps the buffers
  empty and drops (and counts) frames itself instead.

Per row: frames shown, frames dropped by the pipeline, FPS between the first and the last shown frame,
frame-to-display latency (taken -> encoded frame published) mean and p95, stage medians. Modes alternate in an
order that flips every round, so a machine slow-down hits both alike; the ratio lines compare the medians.
``--frame-size`` resizes every frame first (e.g. 640 480 for a typical camera size; the clip is 176x144).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nanogfl.apps.demo import DemoOutputs, Outputs, detect_stream  # noqa: E402
from nanogfl.apps.sources import Frame, FrameStream  # noqa: E402
from nanogfl.apps.stats import LiveStats, RunSummary  # noqa: E402
from nanogfl.runtime.backends import open_model  # noqa: E402
from nanogfl.runtime.detector import Detector  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
DEFAULT_MODEL = SHARED / "nanodet_plus_m_416_ncnn" / "nanodet-plus-m_416.param"
DEFAULT_VIDEO = SHARED / "video" / "carphone_pristine.mp4"
DRIVER_BUFFERS = 4  # OpenCV's V4L2 backend default (CAP_PROP_BUFFERSIZE)


class ResizedStream:
    """A FrameStream whose frames are resized to ``size`` (width, height) as they are read."""

    def __init__(self, stream: FrameStream, size: tuple[int, int] | None) -> None:
        self.stream, self.size = stream, size
        self.fps, self.is_live, self.stopped_message = stream.fps, False, None

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.stream:
            if self.size:
                frame.image = cv2.resize(frame.image, self.size, interpolation=cv2.INTER_LINEAR)
            yield frame

    def close(self) -> None:
        self.stream.close()


class SimulatedCamera:
    """Decoded frames played as a live camera at ``fps`` with a driver that keeps ``buffers`` unread frames."""

    def __init__(self, images: list[np.ndarray], fps: float, buffers: int = DRIVER_BUFFERS) -> None:
        self.images, self.fps, self.buffers = images, fps, buffers
        self.is_live, self.stopped_message = True, None
        self.lost_in_driver = 0

    def __iter__(self) -> Iterator[Frame]:
        start = time.perf_counter()
        buffered: list[int] = []
        next_taken = 0  # the next frame the sensor will take
        while True:
            now = time.perf_counter()
            while next_taken < len(self.images) and start + next_taken / self.fps <= now:
                if len(buffered) < self.buffers:
                    buffered.append(next_taken)
                else:
                    self.lost_in_driver += 1
                next_taken += 1
            if buffered:
                index = buffered.pop(0)
                yield Frame(self.images[index], "simulated camera", index, is_still=False,
                            captured_at=start + index / self.fps)
            elif next_taken >= len(self.images):
                return
            else:
                time.sleep(max(0.0, start + next_taken / self.fps - time.perf_counter()))

    def close(self) -> None:
        pass


def run_once(stream, detector: Detector, serial: bool) -> tuple[RunSummary, int]:
    """One pass of the demo loop over ``stream``: its summary and the frames the simulated driver lost."""
    settings = DemoOutputs(serve_port=0, host="127.0.0.1", window=False, serial=serial)
    stats = LiveStats(detector.backend.path.name, detector.meta.input_hw, "serial" if serial else "pipelined")
    with contextlib.redirect_stderr(io.StringIO()):  # the demo's own log lines
        outputs = Outputs(settings, stream.fps, stats)
        try:
            detect_stream(stream, detector, outputs, stats, settings)
        finally:
            stream.close()
            outputs.close_local()
            outputs.server.close()
    summary = stats.summary()
    assert summary is not None, "no frame was shown"
    return summary, getattr(stream, "lost_in_driver", 0)


def decode_all(video: Path, size: tuple[int, int] | None) -> list[np.ndarray]:
    stream = ResizedStream(FrameStream(str(video)), size)
    try:
        return [frame.image for frame in stream]
    finally:
        stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="an exported model, or the official .param (the runtime infers its metadata)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--threads", type=int, default=1, help="ncnn threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frame-size", nargs=2, type=int, metavar=("W", "H"), help="resize frames first")
    parser.add_argument("--camera-fps", type=float, default=0.0, help="simulated camera rate (0: the clip's)")
    args = parser.parse_args()
    size = tuple(args.frame_size) if args.frame_size else None
    detector = Detector(open_model(args.model, threads=args.threads))  # official file: metadata inferred
    camera_frames = decode_all(args.video, size)
    camera_fps = args.camera_fps or FrameStream(str(args.video)).fps
    sources = {"file": lambda: ResizedStream(FrameStream(str(args.video)), size),
               "camera": lambda: SimulatedCamera(camera_frames, camera_fps)}
    run_once(sources["file"](), detector, serial=True)  # warm-up
    results: dict[tuple[str, str], list[tuple[RunSummary, int]]] = {}
    for round_index in range(args.rounds):
        modes = ("serial", "pipelined") if round_index % 2 == 0 else ("pipelined", "serial")
        for source in sources:
            for mode in modes:
                results.setdefault((source, mode), []).append(
                    run_once(sources[source](), detector, serial=mode == "serial"))
    height, width = camera_frames[0].shape[:2]
    print(f"model {args.model.name}, ncnn threads {args.threads}, clip {args.video.name} ({len(camera_frames)} frames, "
          f"{width}x{height}), camera {camera_fps:.2f} FPS, {args.rounds} rounds (medians)")
    print(f"{'source':8} {'mode':10} {'shown':>5} {'dropped':>7} {'lost':>5} {'FPS':>6} {'lat mean':>8} "
          f"{'lat p95':>8}  stage medians ms (capture pre infer post draw encode)")
    print("(dropped: by the pipeline; lost: by the simulated camera driver, its buffers full)")
    for (source, mode), pairs in results.items():
        runs = [run for run, _ in pairs]
        med = {key: statistics.median(getattr(run, key) for run in runs)
               for key in ("frames", "dropped", "fps", "latency_mean_ms", "latency_p95_ms")}
        lost = statistics.median(lost for _, lost in pairs)
        stages = " ".join(f"{statistics.median(run.stage_median_ms[s] for run in runs):.1f}"
                          for s in runs[0].stage_median_ms)
        print(f"{source:8} {mode:10} {med['frames']:5.0f} {med['dropped']:7.0f} {lost:5.0f} {med['fps']:6.1f} "
              f"{med['latency_mean_ms']:8.1f} {med['latency_p95_ms']:8.1f}  {stages}")
    for source in sources:
        serial = [run for run, _ in results[(source, "serial")]]
        piped = [run for run, _ in results[(source, "pipelined")]]
        ratio = statistics.median(r.fps for r in piped) / statistics.median(r.fps for r in serial)
        latency = (statistics.median(r.latency_mean_ms for r in piped)
                   / statistics.median(r.latency_mean_ms for r in serial))
        print(f"{source}: pipelined / serial FPS {ratio:.2f}, mean latency {latency:.2f}")


if __name__ == "__main__":
    main()
