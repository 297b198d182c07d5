"""Open the dataset reader for a format: COCO json, Pascal VOC xml or YOLO txt -> one DetectionSource, optionally
restricted to some of its classes by name."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..config import Config
from ..contract import DATASET_FORMATS
from ..errors import UserError
from .base import DetectionSource
from .coco import CocoSource
from .subset import ClassSubset
from .voc import VocSource
from .yolo import YoloSource, class_names_file


def _read(format: str, ann: str | Path, images: str | Path, class_names: Optional[list[str]]) -> DetectionSource:
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


def build_source(format: str, ann: str | Path, images: str | Path, class_names: Optional[list[str]] = None,
                 classes: Optional[list[str]] = None) -> DetectionSource:
    """The dataset at ``ann`` + ``images`` in ``format``.

    ``class_names`` (``data.class_names``) are the dataset's own classes: the names of YOLO's class ids, the label
    order for COCO / VOC. ``classes`` (``data.classes``) keeps only the objects of these classes, labelled in this
    order (an unknown name is an error listing the dataset's classes; images left without objects stay as
    background images, said in one line).
    """
    source = _read(format, ann, images, class_names)
    if classes is None:
        return source
    subset = ClassSubset(source, list(classes))
    print(subset.summary())
    return subset


def source_for_model(format: str, ann: str | Path, images: str | Path, model_classes: list[str],
                     class_names: Optional[list[str]] = None) -> DetectionSource:
    """The dataset read for a model that predicts ``model_classes`` (evaluation): the dataset's own classes
    (``class_names``, else the files'), then the model's classes picked from them by name, in the model's order.
    A model class the dataset lacks has no objects there; objects of other classes are not scored. YOLO labels
    with neither names nor a classes.txt / data.yaml are taken to be in the model's label order."""
    if format == "yolo" and class_names is None and class_names_file(Path(ann)) is None:
        class_names = list(model_classes)
    source = _read(format, ann, images, class_names)
    if source.class_names == list(model_classes):
        return source
    return ClassSubset(source, list(model_classes), strict=False)


def open_datasets(cfg: Config) -> tuple[DetectionSource, Optional[DetectionSource]]:
    """The training set of ``cfg`` (``data.classes`` applied) and its validation set (None when ``data.val.ann``
    is empty), the latter read for the model the training set makes (its classes picked by name)."""
    train_set, val_set = cfg.data.train, cfg.data.val
    train = build_source(train_set.format, train_set.ann, train_set.images, cfg.data.class_names, cfg.data.classes)
    val = (source_for_model(val_set.format, val_set.ann, val_set.images, list(train.class_names),
                            cfg.data.class_names) if val_set.ann else None)
    return train, val
