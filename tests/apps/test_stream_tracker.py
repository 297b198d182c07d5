"""The stream glue: still images untracked and cut to the threshold, a new file starts new tracks."""
import numpy as np

from nanogfl.apps.sources import Frame
from nanogfl.apps.tracking import StreamTracker
from nanogfl.runtime.postprocess import Detections
from nanogfl.runtime.track import TrackerSettings

IMAGE = np.zeros((8, 8, 3), np.uint8)


def one_box(score: float) -> Detections:
    return Detections(np.array([[10, 10, 30, 50]], np.float32), np.array([score], np.float32), np.zeros(1, np.int64))


def test_stills_are_not_tracked_and_show_only_strong_boxes():
    tracker = StreamTracker(TrackerSettings(high_score=0.5, low_score=0.1))
    photo = Frame(IMAGE, "a.jpg", 0, is_still=True)
    assert tracker(photo, one_box(0.9)).track_ids is None
    assert len(tracker(photo, one_box(0.3))) == 0
    assert tracker.counts(["person"]) == {}


def test_another_video_starts_new_tracks_and_counts_go_on():
    tracker = StreamTracker(TrackerSettings())
    for source in ("a.mp4", "b.mp4"):
        for index in range(3):
            shown = tracker(Frame(IMAGE, source, index, is_still=False), one_box(0.9))
    assert shown.track_ids.tolist() == [2]  # the same place in another video is another object
    assert tracker.summary(["person"]) == "distinct objects tracked: 2 person"
