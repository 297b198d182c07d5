"""A constant-velocity Kalman filter on one box (centre x, centre y, width, height and their per-frame speeds).

Noise scales with the box size, as in SORT / ByteTrack: a large box may move more pixels per frame than a small
one. One frame is one time step.
"""
from __future__ import annotations

import numpy as np

POSITION_NOISE = 1 / 20  # standard deviation per frame, relative to the box side
VELOCITY_NOISE = 1 / 160
MIN_SIDE = 1e-3  # a predicted box never collapses to zero or negative size

_TRANSITION = np.eye(8)
_TRANSITION[:4, 4:] = np.eye(4)  # position += velocity
_MEASURE = np.eye(4, 8)  # a detection measures the position part


def box_to_state(box: np.ndarray) -> np.ndarray:
    """x1, y1, x2, y2 -> cx, cy, w, h."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, MIN_SIDE), max(y2 - y1, MIN_SIDE)])


def state_to_box(state: np.ndarray) -> np.ndarray:
    """cx, cy, w, h (the first four entries) -> x1, y1, x2, y2."""
    cx, cy = state[0], state[1]
    half_w, half_h = max(state[2], MIN_SIDE) / 2, max(state[3], MIN_SIDE) / 2
    return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])


class BoxKalman:
    """The state of one tracked box: mean [8] (cx, cy, w, h, vcx, vcy, vw, vh) and covariance [8, 8]."""

    def __init__(self, box: np.ndarray) -> None:
        position = box_to_state(box)
        self.mean = np.concatenate((position, np.zeros(4)))
        sides = np.tile(position[2:4], 2)
        std = np.concatenate((2 * POSITION_NOISE * sides, 10 * VELOCITY_NOISE * sides))
        self.covariance = np.diag(std ** 2)

    @property
    def box(self) -> np.ndarray:
        """The current estimate as x1, y1, x2, y2."""
        return state_to_box(self.mean)

    def predict(self, keep_size: bool = False) -> None:
        """One frame ahead; ``keep_size`` stops the width and height from drifting (for a track not seen lately,
        whose size speed would otherwise shrink or blow up the box frame after frame)."""
        if keep_size:
            self.mean[6:8] = 0.0
        sides = np.tile(np.maximum(self.mean[2:4], MIN_SIDE), 2)
        noise = np.diag(np.concatenate((POSITION_NOISE * sides, VELOCITY_NOISE * sides)) ** 2)
        self.mean = _TRANSITION @ self.mean
        self.covariance = _TRANSITION @ self.covariance @ _TRANSITION.T + noise

    def update(self, box: np.ndarray) -> None:
        """Correct the estimate with a measured box x1, y1, x2, y2."""
        measured = box_to_state(box)
        sides = np.tile(np.maximum(self.mean[2:4], MIN_SIDE), 2)
        innovation_cov = _MEASURE @ self.covariance @ _MEASURE.T + np.diag((POSITION_NOISE * sides) ** 2)
        gain = np.linalg.solve(innovation_cov, _MEASURE @ self.covariance).T  # P H^T S^-1 (S is symmetric)
        self.mean = self.mean + gain @ (measured - _MEASURE @ self.mean)
        self.covariance = self.covariance - gain @ innovation_cov @ gain.T
