"""Pick the dataset reader named by a DatasetConfig."""
from __future__ import annotations

from typing import Optional

from ..config import DatasetConfig
from ..errors import UserError
from .base import DetectionSource
from .coco import CocoSource
from .voc import VocSource
from .yolo import YoloSource


def build_source(ds: DatasetConfig, class_names: Optional[list[str]] = None) -> DetectionSource:
    """COCO json, Pascal VOC xml or YOLO txt -> one DetectionSource (class_names: fix the label order)."""
    if not ds.ann or not ds.images:
        raise UserError(f"dataset ({ds.format}): both 'ann' and 'images' must be set, got ann={ds.ann!r} "
                        f"images={ds.images!r}")
    if ds.format == "coco":
        return CocoSource(ds.ann, ds.images, class_names)
    if ds.format == "voc":
        return VocSource(ds.ann, ds.images, class_names)
    if ds.format == "yolo":
        return YoloSource(ds.ann, ds.images, class_names)
    raise UserError(f"dataset format must be coco, voc or yolo, got {ds.format!r}")
