"""Open the dataset reader for a format: COCO json, Pascal VOC xml or YOLO txt -> one DetectionSource."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..config import Config
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


def open_datasets(cfg: Config) -> tuple[DetectionSource, Optional[DetectionSource]]:
    """The training set of ``cfg`` and its validation set (None when ``data.val.ann`` is empty), the latter with
    the training set's label order."""
    train_set, val_set = cfg.data.train, cfg.data.val
    train = build_source(train_set.format, train_set.ann, train_set.images, cfg.data.class_names)
    val = build_source(val_set.format, val_set.ann, val_set.images, list(train.class_names)) if val_set.ann else None
    return train, val
