"""``nanogfl predict``: detections for an image, a folder, a glob pattern or a video; optionally saved and/or
printed as JSON lines (one per image or video frame). With tracking, the objects of each video are followed
across its frames (runtime/track.py): every detection carries a ``track_id`` and the video's summary counts the
distinct objects per class."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

import cv2

from ..errors import UserError
from ..image_io import load_image
from ..runtime.detector import Detector
from ..runtime.postprocess import Detections
from ..runtime.track import TrackerSettings, strong_only
from .draw import draw_detections
from .sources import VideoFile, expand_source, is_live_source, is_video
from .tracking import StreamTracker
from .video_writer import FOURCC_BY_SUFFIX, VideoWriter


class Reporter:
    """Writes results (JSON lines to ``json_out``, else a short human line) and annotated copies."""

    def __init__(self, detector: Detector, save_dir: Path | None, json_out: TextIO | None,
                 tracking: TrackerSettings | None = None) -> None:
        self.detector = detector
        self.save_dir = save_dir
        self.json_out = json_out
        self.tracking = tracking
        self._used_names: set[str] = set()

    @property
    def as_json(self) -> bool:
        """Whether the human lines give way: JSON lines go to stdout."""
        return self.json_out is sys.stdout

    def output_path(self, source: Path, suffix: str | None = None) -> Path:
        """A file in the save folder named after the source, made unique if two sources share a name."""
        name = source.stem + (suffix or source.suffix)
        candidate, counter = name, 1
        while candidate in self._used_names:
            candidate = f"{source.stem}_{counter}{suffix or source.suffix}"
            counter += 1
        self._used_names.add(candidate)
        return self.save_dir / candidate

    def report(self, source: Path, frame_index: int | None, image_hw: tuple[int, int],
               detections: Detections) -> None:
        names = self.detector.class_names
        if self.json_out is not None:
            record = {"source": str(source), "frame": frame_index, "height": image_hw[0], "width": image_hw[1],
                      "detections": detections.to_list(names),
                      "timing_ms": {k: round(v, 3) for k, v in self.detector.last_timing.as_dict().items()}}
            print(json.dumps(record), file=self.json_out, flush=True)
        if not self.as_json and frame_index is None:
            found = ", ".join(f"{d['label']} {d['score']:.2f}" for d in detections.to_list(names)[:8])
            more = " ..." if len(detections) > 8 else ""
            print(f"{source}: {len(detections)} objects ({found}{more}) in "
                  f"{self.detector.last_timing.total_ms:.1f} ms")


def predict_image(path: Path, reporter: Reporter) -> bool:
    image = load_image(path)  # warns and returns None for unreadable files
    if image is None:
        return False
    detections = reporter.detector(image)
    if reporter.tracking:  # not tracked, but the detector kept weak boxes for the videos
        detections = strong_only(detections, reporter.tracking)
    reporter.report(path, None, image.shape[:2], detections)
    if reporter.save_dir:
        target = reporter.output_path(path)
        if not cv2.imwrite(str(target), draw_detections(image, detections, reporter.detector.class_names)):
            raise UserError(f"{target}: cannot write the annotated image")
    return True


def predict_video(path: Path, reporter: Reporter) -> bool:
    video = VideoFile(path)
    writer = None
    if reporter.save_dir:
        suffix = path.suffix.lower() if path.suffix.lower() in FOURCC_BY_SUFFIX else ".mp4"
        writer = VideoWriter(reporter.output_path(path, suffix), video.fps)
    tracker = StreamTracker(reporter.tracking) if reporter.tracking else None  # ids start afresh per video
    frames = objects = 0
    total_ms = 0.0
    try:
        for frame in video:
            detections = reporter.detector(frame.image)
            if tracker:
                detections = tracker(frame, detections)
            reporter.report(path, frame.index, frame.image.shape[:2], detections)
            if writer:
                writer.write(draw_detections(frame.image, detections, reporter.detector.class_names))
            frames += 1
            objects += len(detections)
            total_ms += reporter.detector.last_timing.total_ms
    finally:
        video.close()
        if writer:
            writer.close()
    if not reporter.as_json:
        print(f"{path}: {frames} frames, {objects / max(frames, 1):.1f} objects per frame, "
              f"{total_ms / max(frames, 1):.1f} ms per frame" + (f", saved to {writer.path}" if writer else ""))
    if tracker:  # beside JSON lines on stdout, the summary goes to stderr
        print(f"{path}: {tracker.summary(reporter.detector.class_names)}",
              file=sys.stderr if reporter.as_json else sys.stdout)
    return frames > 0


def check_source(source: str) -> list[Path]:
    """The media files of ``source`` (before a model is opened, so a typo fails fast)."""
    if is_live_source(source):
        raise UserError(f"--source {source}: predict works on files; use `nanogfl demo --source {source}` "
                        f"for a camera")
    return expand_source(source)


def predict(detector: Detector, source: str, save_dir: Path | None = None, json_out: TextIO | None = None,
            tracking: TrackerSettings | None = None) -> int:
    """Detect objects in every image and video frame of ``source`` (an image, video, folder or glob); write
    JSON lines to ``json_out`` and annotated copies into ``save_dir``. Returns the number of files processed;
    unreadable files in a folder are skipped with a warning. With ``tracking``, the objects of each video are
    followed across its frames (images are not tracked); the detector should then keep the weak detections
    too (score_threshold = tracking.low_score)."""
    paths = check_source(source)
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
    reporter = Reporter(detector, save_dir, json_out, tracking)
    processed = 0
    for path in paths:
        if not is_video(path):
            processed += predict_image(path, reporter)
            continue
        try:
            processed += predict_video(path, reporter)
        except UserError as e:
            if len(paths) == 1:
                raise
            print(f"warning: {e}; skipped", file=sys.stderr)
    if processed == 0:
        raise UserError(f"{source}: no readable image or video")
    if save_dir and not reporter.as_json:
        print(f"annotated results saved in {save_dir}")
    return processed
