"""Drawing detections (boxes, labels, scores) and an FPS line on a BGR image."""
from __future__ import annotations

import colorsys
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np

from ..runtime.postprocess import Detections, class_name


@lru_cache(maxsize=None)
def class_color(label: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per class (golden-ratio hue steps)."""
    hue = (label * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_detections(image: np.ndarray, detections: Detections, class_names: Sequence[str],
                    fps: float | None = None) -> np.ndarray:
    """An annotated copy of ``image``: one box and "name score" tag per detection ("#id name score" when tracked
    and confirmed), FPS in the top-left corner."""
    canvas = image.copy()
    scale = max(0.4, min(canvas.shape[:2]) / 800)
    thickness = max(1, round(scale * 2))
    track_ids = [0] * len(detections) if detections.track_ids is None else detections.track_ids.tolist()
    for box, score, label, track_id in zip(detections.boxes, detections.scores, detections.labels.tolist(),
                                           track_ids):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = class_color(label)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
        name = class_name(label, class_names)
        text = f"#{track_id} {name} {score:.2f}" if track_id >= 1 else f"{name} {score:.2f}"
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = y1 - th - baseline if y1 - th - baseline >= 0 else y1  # keep the tag inside the image
        cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + baseline), color, -1)
        cv2.putText(canvas, text, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    if fps is not None:
        text = f"FPS {fps:.1f}"
        origin = (5, int(25 * scale) + 5)
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return canvas
