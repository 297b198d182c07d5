"""Open the dataset reader for a format: COCO json, Pascal VOC xml or YOLO txt -> one DetectionSource."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..contract import DATASET_FORMATS
from ..errors import UserError
from .base import DetectionSource
from .coco import CocoSource
from .voc import VocSource
from .yolo import YoloSource


def build_source(format: str, ann: str | Path, images: str | Path,
                 class_names: Optional[list[str]] = None) -> DetectionSource:
    """The dataset at ``ann`` + ``images`` in ``format`` (class_names: fix the label order)."""
    if not str(ann) or not str(images):
        raise UserError(f"dataset ({format}): both 'ann' and 'images' must be set, got ann={str(ann)!r} "
                        f"images={str(images)!r}")
    if format == "coco":
        return CocoSource(ann, images, class_names)
    if format == "voc":
        return VocSource(ann, images, class_names)
    if format == "yolo":
        return YoloSource(ann, images, class_names)
    raise UserError(f"dataset format must be one of {', '.join(DATASET_FORMATS)}, got {format!r}")
