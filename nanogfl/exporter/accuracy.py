"""COCO AP of an exported model through the torch-free runtime (the path a deployed model takes)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..config import DatasetConfig, EvalConfig


def evaluate_exported(model_path: str | Path, ann_file: str | Path, image_dir: str | Path, threads: int = 0,
                      max_images: int | None = None) -> dict:
    """AP, AP50, ... of ``model_path`` (.onnx, .param or .pt) on a COCO json + image folder, with the evaluation
    settings of training (score > 0.05, class-aware NMS 0.6, top 100). ``max_images`` takes the first N images."""
    from ..data.sources import build_source
    from ..engine.evaluate import evaluate_model
    from ..runtime.backends import open_model
    from ..runtime.detector import Detector

    backend = open_model(model_path, threads=threads)
    settings = EvalConfig()
    detector = Detector(backend, score_threshold=settings.score_threshold, iou_threshold=settings.iou_threshold,
                        max_detections=settings.max_detections)
    with tempfile.TemporaryDirectory(prefix="nanogfl-eval-") as work:
        if max_images is not None:
            ann_file = write_coco_subset(ann_file, Path(work) / "subset.json", max_images)
        source = build_source(DatasetConfig(format="coco", ann=str(ann_file), images=str(image_dir)),
                              list(backend.meta.class_names))
        return evaluate_model(detector, source, verbose=False, progress=False)


def write_coco_subset(ann_file: str | Path, out_file: Path, count: int) -> Path:
    """The first ``count`` images of a COCO json (by order in the file) with their annotations."""
    data = json.loads(Path(ann_file).read_text())
    images = data["images"][:count]
    keep = {image["id"] for image in images}
    subset = {**data, "images": images, "annotations": [a for a in data["annotations"] if a["image_id"] in keep]}
    out_file.write_text(json.dumps(subset))
    return out_file
