"""One call from a BGR frame to detections in its own pixels, with per-stage timing."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..contract import DEPLOY_SCORE_THRESHOLD, EVAL_IOU_THRESHOLD, EVAL_MAX_DETECTIONS
from .backends import Backend
from .metadata import ModelMeta
from .peers import postprocess_peer
from .postprocess import Detections, postprocess
from .preprocess import prepare_input


@dataclass
class StageTiming:
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total_ms": self.total_ms}


class Detector:
    """A BGR frame -> Detections in its own pixels: preprocess, backend forward, decode + NMS + box mapping.

    >>> detector = Detector(open_model("export_out/nanodet-plus-m_416x416.param"))
    >>> detections = detector(cv2.imread("photo.jpg"))  # boxes [K, 4], scores [K], labels [K]
    >>> detector.last_timing.total_ms                    # per-stage timing of the last call
    """

    def __init__(self, backend: Backend, score_threshold: float = DEPLOY_SCORE_THRESHOLD,
                 iou_threshold: float = EVAL_IOU_THRESHOLD, max_detections: int = EVAL_MAX_DETECTIONS) -> None:
        self.backend = backend
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.last_timing = StageTiming()

    @property
    def meta(self) -> ModelMeta:
        return self.backend.meta

    @property
    def class_names(self) -> list[str]:
        return list(self.backend.meta.class_names)

    def __call__(self, image_bgr: np.ndarray) -> Detections:
        meta = self.backend.meta
        start = time.perf_counter()
        blob, matrix = prepare_input(image_bgr, meta)
        preprocessed = time.perf_counter()
        if meta.layout == "gfl":
            output = self.backend.forward(blob)
            inferred = time.perf_counter()
            detections = postprocess(output, meta, matrix, image_bgr.shape[:2], self.score_threshold,
                                     self.iou_threshold, self.max_detections, input_hw=blob.shape[2:])
        else:  # another family's model (runtime/peers)
            outputs = self.backend.raw_outputs(blob)
            inferred = time.perf_counter()
            detections = postprocess_peer(outputs, meta, matrix, image_bgr.shape[:2], self.score_threshold,
                                          self.iou_threshold, self.max_detections, blob.shape[2:])
        done = time.perf_counter()
        self.last_timing = StageTiming((preprocessed - start) * 1e3, (inferred - preprocessed) * 1e3,
                                       (done - inferred) * 1e3)
        return detections
