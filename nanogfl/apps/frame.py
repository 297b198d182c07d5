"""The unit every frame source yields."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One picture from a source, in the BGR order OpenCV and the runtime use."""
    image: np.ndarray  # BGR uint8 HxWx3
    source: str  # the file it came from, "camera N" or "picamera"
    index: int  # frame number inside its source (0 for an image)
    is_still: bool  # an image file, not a video or camera frame
    # time.perf_counter() when the picture was taken, where the source knows it better than "when it was read"
    captured_at: float | None = None
