"""Tracking over a stream of frames (the demo's and predict's glue around runtime/track.py): one tracker, cut
when the frames come from another file, still images shown untracked."""
from __future__ import annotations

from ..runtime.postprocess import Detections
from ..runtime.track import ByteTracker, TrackerSettings, describe_counts, strong_only
from .sources import Frame


class StreamTracker:
    """Gives the detections of consecutive video / camera frames track ids; counts the distinct objects."""

    def __init__(self, settings: TrackerSettings) -> None:
        self.tracker = ByteTracker(settings)
        self._source: str | None = None

    def __call__(self, frame: Frame, detections: Detections) -> Detections:
        """The detections to show for ``frame`` (found with score_threshold = settings.low_score)."""
        if frame.is_still:  # a photo is not a moment of a video: show what the threshold shows, no ids
            return strong_only(detections, self.tracker.settings)
        if frame.source != self._source:
            self.tracker.cut()  # another video: nothing carries over, the counts go on
            self._source = frame.source
        return self.tracker.update(detections)

    def counts(self, class_names: list[str]) -> dict[str, int]:
        """Distinct objects per class so far, most frequent first."""
        return self.tracker.unique_counts(class_names)

    def summary(self, class_names: list[str]) -> str:
        return f"distinct objects tracked: {describe_counts(self.counts(class_names))}"
