"""Following detected objects across video frames: ByteTrack-style association, numpy only.

Each frame, every track's box is predicted one frame ahead by a constant-velocity Kalman filter, then:
1. detections scoring at least ``high_score`` are matched to the confirmed tracks (those seen last frame and
   those lost for up to ``lost_buffer`` frames) by IoU with the predicted boxes;
2. the weaker detections (``low_score`` up to ``high_score``) are matched to the confirmed tracks that were seen
   last frame and are still unmatched: an object that blurs or is partly hidden keeps its track;
3. the strong detections still unmatched are matched to tentative tracks (new objects not yet confirmed);
4. strong detections still unmatched start tentative tracks; a tentative track is confirmed, and only then gets
   an id, after ``confirm_hits`` consecutive frames with a match, and is dropped at its first miss.
A detection only matches a track of its own class. Matching is optimal (minimum total 1 - IoU, runtime/
assignment.py), as in ByteTrack.

>>> tracker = ByteTracker(TrackerSettings(high_score=0.35))
>>> detector = Detector(backend, score_threshold=tracker.settings.low_score)  # the tracker wants weak boxes too
>>> for frame in video:
...     tracked = tracker.update(detector(frame.image))  # Detections with track_ids
>>> tracker.unique_counts(detector.class_names)  # {"person": 2, "car": 5}: confirmed objects per class
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import DEPLOY_SCORE_THRESHOLD
from .assignment import match
from .kalman import BoxKalman
from .nms import pairwise_iou
from .postprocess import Detections, class_counts

NO_TRACK_ID = -1  # in Detections.track_ids: a detection on a tentative track (not confirmed yet)


@dataclass(frozen=True)
class TrackerSettings:
    """The association thresholds (ByteTrack's published defaults, with ``high_score`` at the deploy threshold).

    ``high_score``: detections at or above it are shown, start tracks and are matched first; ``low_score``:
    weaker detections down to it may only continue a track. IoU thresholds: the least overlap between a
    track's predicted box and a detection for each of the three matching steps."""
    high_score: float = DEPLOY_SCORE_THRESHOLD
    low_score: float = 0.1
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    tentative_match_iou: float = 0.3
    confirm_hits: int = 2  # consecutive frames a new object must be seen to get an id
    lost_buffer: int = 30  # frames a confirmed object may go unseen and still keep its id

    def __post_init__(self) -> None:
        for name in ("high_score", "low_score", "match_iou", "low_match_iou", "tentative_match_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrackerSettings.{name}={getattr(self, name)}: must be within [0, 1]")
        if self.low_score > self.high_score:
            raise ValueError(f"TrackerSettings: low_score {self.low_score} is above high_score {self.high_score}")
        if self.confirm_hits < 1 or self.lost_buffer < 0:
            raise ValueError(f"TrackerSettings: confirm_hits {self.confirm_hits} must be >= 1 and lost_buffer "
                             f"{self.lost_buffer} >= 0")

    @classmethod
    def for_score(cls, score_threshold: float) -> "TrackerSettings":
        """The defaults around a user's score threshold: it becomes ``high_score`` (what is shown without
        tracking is what starts tracks), and ``low_score`` never exceeds it."""
        return cls(high_score=score_threshold, low_score=min(cls.low_score, score_threshold))


class Track:
    """One object followed across frames."""

    def __init__(self, box: np.ndarray, label: int) -> None:
        self.filter = BoxKalman(box)
        self.label = label
        self.track_id = NO_TRACK_ID  # given when confirmed
        self.hits = 1  # consecutive frames with a match
        self.misses = 0  # consecutive frames without one

    @property
    def confirmed(self) -> bool:
        return self.track_id != NO_TRACK_ID

    def predict(self) -> None:
        self.filter.predict(keep_size=self.misses > 0)

    def hit(self, box: np.ndarray) -> None:
        self.filter.update(box)
        self.hits += 1
        self.misses = 0

    def miss(self) -> None:
        self.hits = 0
        self.misses += 1


def iou_cost(tracks: list[Track], detections: Detections, candidates: np.ndarray) -> np.ndarray:
    """[T, D] 1 - IoU between predicted track boxes and the candidate detections; infinite across classes."""
    if not tracks or len(candidates) == 0:
        return np.zeros((len(tracks), len(candidates)))
    track_boxes = np.stack([t.filter.box for t in tracks])
    cost = 1.0 - pairwise_iou(track_boxes, detections.boxes[candidates].astype(np.float64))
    same_class = np.array([t.label for t in tracks])[:, None] == detections.labels[candidates][None, :]
    return np.where(same_class, cost, np.inf)


class ByteTracker:
    """Gives the detections of consecutive frames of one video stable ids (see the module docstring)."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self.tracks: list[Track] = []  # tentative, confirmed and lost, in creation order
        self.next_id = 1
        self.confirmed_labels: list[int] = []  # the class of every id given so far

    @staticmethod
    def _associate(tracks: list[Track], detections: Detections, candidates: np.ndarray, min_iou: float,
                   owner: list[Track | None]) -> tuple[list[Track], np.ndarray]:
        """Match ``tracks`` to the ``candidates`` detections, recording each match in ``owner`` (one entry per
        detection); return the tracks and candidates left over."""
        pairs, free_tracks, free_candidates = match(iou_cost(tracks, detections, candidates), 1.0 - min_iou)
        for track_row, candidate_row in pairs:
            detection = candidates[candidate_row]
            tracks[track_row].hit(detections.boxes[detection])
            owner[detection] = tracks[track_row]
        return [tracks[i] for i in free_tracks], candidates[free_candidates]

    def update(self, detections: Detections) -> Detections:
        """Associate one frame's detections; returns those to show, by descending score, with ``track_ids``:
        every detection at or above ``high_score`` (id -1 while its object is not confirmed) and every weaker
        one that continued a confirmed track."""
        settings = self.settings
        for track in self.tracks:
            track.predict()
        strong = np.flatnonzero(detections.scores >= settings.high_score)
        weak = np.flatnonzero((detections.scores >= settings.low_score) & (detections.scores < settings.high_score))
        owner: list[Track | None] = [None] * len(detections)
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]
        unmatched, strong_left = self._associate(confirmed, detections, strong, settings.match_iou, owner)
        lost = [t for t in unmatched if t.misses > 0]  # not seen last frame either: no weak boxes for them
        recent = [t for t in unmatched if t.misses == 0]
        recent_left, _ = self._associate(recent, detections, weak, settings.low_match_iou, owner)
        tentative_left, strong_left = self._associate(tentative, detections, strong_left,
                                                      settings.tentative_match_iou, owner)
        for track in lost + recent_left + tentative_left:
            track.miss()
        for detection in strong_left:
            track = Track(detections.boxes[detection], int(detections.labels[detection]))
            self.tracks.append(track)
            owner[detection] = track
        for track in self.tracks:
            if not track.confirmed and track.hits >= settings.confirm_hits:
                track.track_id = self.next_id
                self.next_id += 1
                self.confirmed_labels.append(track.label)
        track_ids = np.array([NO_TRACK_ID if t is None else t.track_id for t in owner], np.int64)
        shown = np.flatnonzero([t is not None for t in owner])  # every strong one, the weak ones that matched
        shown = shown[np.argsort(-detections.scores[shown], kind="stable")]
        self.tracks = [t for t in self.tracks
                       if (t.confirmed and t.misses <= settings.lost_buffer) or (not t.confirmed and t.misses == 0)]
        return Detections(detections.boxes, detections.scores, detections.labels, track_ids).select(shown)

    def cut(self) -> None:
        """Forget every track (the next frame is from another video): ids and counts go on from where they were."""
        self.tracks = []

    def unique_counts(self, class_names: list[str] | None = None) -> dict[str, int]:
        """How many distinct objects (confirmed ids) of each class were seen so far, most frequent first."""
        return class_counts(self.confirmed_labels, class_names)


def strong_only(detections: Detections, settings: TrackerSettings) -> Detections:
    """The detections at or above ``high_score``: what an untracked image shows when the detector also kept the
    weak ones for the tracker."""
    return detections.select(np.flatnonzero(detections.scores >= settings.high_score))


def describe_counts(counts: dict[str, int]) -> str:
    """{"person": 2, "car": 1} -> "2 person, 1 car" ("none" when empty)."""
    return ", ".join(f"{count} {name}" for name, count in counts.items()) or "none"
