"""ByteTracker on synthetic box sequences: ids survive misses, crossings and weak frames; new objects get new ids."""
import numpy as np
import pytest

from nanogfl.runtime.postprocess import Detections
from nanogfl.runtime.track import NO_TRACK_ID, ByteTracker, TrackerSettings, describe_counts


def frame(*objects: tuple[tuple[float, float, float, float], float, int]) -> Detections:
    """Detections from (box, score, label) triples."""
    if not objects:
        return Detections.empty()
    boxes, scores, labels = zip(*objects)
    return Detections(np.array(boxes, np.float32), np.array(scores, np.float32), np.array(labels, np.int64))


def box_at(x: float, y: float, w: float = 20, h: float = 40) -> tuple[float, float, float, float]:
    return (x, y, x + w, y + h)


def ids_by_x(tracked: Detections) -> list[int]:
    """Track ids ordered left to right."""
    return tracked.track_ids[np.argsort(tracked.boxes[:, 0])].tolist()


def test_new_object_is_tentative_then_confirmed_with_its_own_id():
    tracker = ByteTracker()
    first = tracker.update(frame((box_at(10, 10), 0.9, 0)))
    assert first.track_ids.tolist() == [NO_TRACK_ID]  # shown, but not an object yet
    assert first.to_list()[0]["track_id"] is None
    assert tracker.update(frame((box_at(11, 10), 0.9, 0))).track_ids.tolist() == [1]
    tracker.update(frame((box_at(12, 10), 0.9, 0), (box_at(100, 10), 0.8, 0)))
    latest = tracker.update(frame((box_at(13, 10), 0.9, 0), (box_at(101, 10), 0.8, 0)))
    assert ids_by_x(latest) == [1, 2]
    assert latest.to_list()[1]["track_id"] == 2
    assert tracker.unique_counts(["person"]) == {"person": 2}


def test_one_frame_flicker_never_gets_an_id():
    tracker = ByteTracker()
    tracker.update(frame((box_at(10, 10), 0.9, 0)))
    tracker.update(frame())
    tracker.update(frame((box_at(10, 10), 0.9, 0)))
    assert tracker.unique_counts() == {}  # two single sightings, not an object


def test_id_kept_across_a_short_miss_by_the_velocity_prediction():
    """8 px per frame, unseen for 3 frames: the box comes back 32 px on, clear of where it was last seen (IoU
    0 with that box), where only a moving prediction finds it."""
    tracker = ByteTracker()
    for t in range(8):
        seen = tracker.update(frame((box_at(8 * t, 50), 0.9, 0)))
    assert seen.track_ids.tolist() == [1]
    for _ in range(3):
        assert len(tracker.update(frame())) == 0
    back = tracker.update(frame((box_at(8 * 11, 50), 0.9, 0)))
    assert back.track_ids.tolist() == [1] and tracker.unique_counts() == {"0": 1}


def test_id_dropped_after_the_lost_buffer():
    tracker = ByteTracker(TrackerSettings(lost_buffer=2))
    for _ in range(3):
        tracker.update(frame((box_at(10, 10), 0.9, 0)))
    for _ in range(3):
        tracker.update(frame())
    for _ in range(2):
        back = tracker.update(frame((box_at(10, 10), 0.9, 0)))
    assert back.track_ids.tolist() == [2]


def test_two_crossing_objects_keep_their_ids():
    """Same class, opposite directions, overlapping while they pass each other."""
    tracker = ByteTracker()
    history = []
    for t in range(16):
        a, b = box_at(10 + 6 * t, 50), box_at(100 - 6 * t, 58)
        history.append(tracker.update(frame((a, 0.9, 0), (b, 0.85, 0))))
    before, after = history[2], history[-1]
    left_id, right_id = ids_by_x(before)
    assert ids_by_x(after) == [right_id, left_id]  # they swapped sides, not ids
    assert tracker.unique_counts() == {"0": 2}


def test_weak_detections_continue_a_track_but_start_none():
    tracker = ByteTracker(TrackerSettings(high_score=0.5, low_score=0.1))
    for t in range(4):
        tracker.update(frame((box_at(10 + t, 10), 0.9, 0)))
    for t in range(4, 7):  # blurred: below high_score, still above low_score
        weak = tracker.update(frame((box_at(10 + t, 10), 0.2, 0), (box_at(120, 10), 0.3, 0)))
        assert weak.track_ids.tolist() == [1]  # the stray weak box elsewhere is not shown
        assert weak.scores.tolist() == pytest.approx([0.2])
    assert tracker.update(frame((box_at(17, 10), 0.9, 0))).track_ids.tolist() == [1]
    assert tracker.unique_counts() == {"0": 1}


def test_weak_detection_below_low_score_is_ignored():
    tracker = ByteTracker(TrackerSettings(high_score=0.5, low_score=0.2))
    for _ in range(3):
        tracker.update(frame((box_at(10, 10), 0.9, 0)))
    assert len(tracker.update(frame((box_at(10, 10), 0.15, 0)))) == 0


def test_a_detection_of_another_class_does_not_take_the_id():
    tracker = ByteTracker()
    for _ in range(3):
        tracker.update(frame((box_at(10, 10), 0.9, 0)))
    for _ in range(2):
        other = tracker.update(frame((box_at(10, 10), 0.9, 3)))
    assert other.track_ids.tolist() == [2] and other.labels.tolist() == [3]
    assert tracker.unique_counts(["person", "bicycle", "car", "motorcycle"]) == {"person": 1, "motorcycle": 1}
    assert describe_counts(tracker.unique_counts(["a", "b", "c", "d"])) == "1 a, 1 d"


def test_output_sorted_by_score_and_empty_frames():
    tracker = ByteTracker()
    assert tracker.update(frame()).track_ids.tolist() == []
    out = tracker.update(frame((box_at(0, 0), 0.5, 0), (box_at(50, 0), 0.9, 1), (box_at(99, 0), 0.7, 2)))
    assert out.scores.tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert describe_counts({}) == "none"


@pytest.mark.parametrize("settings", [dict(high_score=0.2, low_score=0.3), dict(match_iou=1.5),
                                      dict(confirm_hits=0)])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ValueError, match="TrackerSettings"):
        TrackerSettings(**settings)


def test_settings_for_a_score_threshold():
    assert TrackerSettings.for_score(0.4) == TrackerSettings(high_score=0.4, low_score=0.1)
    assert TrackerSettings.for_score(0.05).low_score == 0.05


def test_cut_forgets_tracks_but_keeps_counting():
    tracker = ByteTracker()
    for _ in range(2):
        tracker.update(frame((box_at(10, 10), 0.9, 0)))
    tracker.cut()
    for _ in range(2):
        again = tracker.update(frame((box_at(10, 10), 0.9, 0)))
    assert again.track_ids.tolist() == [2] and tracker.unique_counts() == {"0": 2}
