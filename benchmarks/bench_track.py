"""What ``--track`` costs per frame: the detector with and without the weak boxes the tracker needs, and the
tracker itself, on the real clip; plus the tracker alone on a synthetic crowd.

    python benchmarks/bench_track.py [--model PARAM] [--video MP4] [--size 320] [--threads 1] [--crowd 60]

On every frame of the clip the detector runs twice, in an order that flips frame by frame: at the deploy score
threshold (what predict/demo run without --track) and at the tracker's low score (what they run with it); the
tracker then updates on the second result. A crowd of ``--crowd`` objects moving on straight lines (some
crossing, with 10% of the boxes missing each frame and weak scores now and then) times the tracker where its
matrices are largest. Prints medians in ms and the ratio tracked / untracked for the whole frame.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nanogfl.apps.sources import VideoFile  # noqa: E402
from nanogfl.contract import DEPLOY_SCORE_THRESHOLD  # noqa: E402
from nanogfl.runtime.backends import open_model  # noqa: E402
from nanogfl.runtime.coco_names import COCO_CLASSES  # noqa: E402
from nanogfl.runtime.detector import Detector  # noqa: E402
from nanogfl.runtime.postprocess import Detections  # noqa: E402
from nanogfl.runtime.track import ByteTracker, TrackerSettings  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
DEFAULT_MODEL = SHARED / "nanodet_plus_m_416_ncnn" / "nanodet-plus-m_416.param"
DEFAULT_VIDEO = SHARED / "video" / "carphone_pristine.mp4"


def time_clip(model: Path, video: Path, size: int, threads: int) -> None:
    backend = open_model(model, threads=threads, input_hw=(size, size))
    settings = TrackerSettings()
    plain = Detector(backend, score_threshold=DEPLOY_SCORE_THRESHOLD)
    weak = Detector(backend, score_threshold=settings.low_score)
    tracker = ByteTracker(settings)
    rows = []  # plain total, plain post, weak total, weak post, tracker ms, boxes kept for the tracker
    for frame in VideoFile(video):
        if frame.index % 2:
            plain(frame.image)
        detections = weak(frame.image)
        weak_timing = weak.last_timing
        if frame.index % 2 == 0:
            plain(frame.image)
        start = time.perf_counter()
        tracker.update(detections)
        track_ms = (time.perf_counter() - start) * 1e3
        rows.append((plain.last_timing.total_ms, plain.last_timing.postprocess_ms, weak_timing.total_ms,
                     weak_timing.postprocess_ms, track_ms, len(detections)))
    med = np.median(np.asarray(rows), axis=0)
    tracked_total = med[2] + med[4]
    print(f"{video.name}, {len(rows)} frames, input {size}, {threads} thread(s):")
    print(f"  detector at score {DEPLOY_SCORE_THRESHOLD}: {med[0]:.2f} ms per frame (postprocess {med[1]:.2f})")
    print(f"  detector at score {settings.low_score}:  {med[2]:.2f} ms per frame (postprocess {med[3]:.2f}), "
          f"{med[5]:.0f} boxes")
    print(f"  tracker update: {med[4]:.3f} ms per frame (max {max(r[4] for r in rows):.3f})")
    print(f"  tracked / untracked frame time: {tracked_total / med[0]:.3f}")
    print(f"  distinct objects: {tracker.unique_counts(list(COCO_CLASSES))}")


def time_crowd(count: int, frames: int = 200, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 600, (count, 2))
    velocity = rng.uniform(-4, 4, (count, 2))
    size = rng.uniform(20, 60, (count, 2))
    labels = rng.integers(0, 3, count)
    tracker = ByteTracker()
    times = []
    for t in range(frames):
        seen = rng.random(count) > 0.1
        xy = start[seen] + velocity[seen] * t
        boxes = np.concatenate((xy, xy + size[seen]), axis=1).astype(np.float32)
        scores = np.where(rng.random(seen.sum()) < 0.2, 0.2, 0.8).astype(np.float32)
        detections = Detections(boxes, scores, labels[seen].astype(np.int64))
        begin = time.perf_counter()
        tracker.update(detections)
        times.append((time.perf_counter() - begin) * 1e3)
    print(f"synthetic crowd of {count} objects, {frames} frames: tracker update {np.median(times):.3f} ms per "
          f"frame (max {max(times):.3f}), {tracker.next_id - 1} ids given")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="official NanoDet-Plus-m ncnn .param")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--crowd", type=int, default=60, help="objects in the synthetic crowd")
    args = parser.parse_args()
    time_clip(args.model, args.video, args.size, args.threads)  # the runtime infers the official file's metadata
    time_crowd(args.crowd)


if __name__ == "__main__":
    main()
