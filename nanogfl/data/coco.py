"""COCO json datasets (the official instances_*.json layout)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import UserError
from .base import BoxRepairCounts, DetectionSource, ImageInfo, repair_boxes, require_folder


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"annotation file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None


def _field(entry: Any, key: str, where: str, path: Path) -> Any:
    if not isinstance(entry, dict) or key not in entry:
        raise UserError(f"{path}: {where} lacks the key {key!r}")
    return entry[key]


def _section(data: Any, key: str, path: Path) -> list:
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be an object with images, annotations and categories")
    value = _field(data, key, "the top level", path)
    if not isinstance(value, list):
        raise UserError(f"{path}: {key!r} must be a list")
    return value


def _label_order(categories: list, class_names: Optional[list[str]], path: Path) -> tuple[list[str], list[int]]:
    by_id = {}
    for k, cat in enumerate(categories):
        by_id[int(_field(cat, "id", f"categories[{k}]", path))] = str(_field(cat, "name", f"categories[{k}]", path))
    if not by_id:
        raise UserError(f"{path}: 'categories' is empty")
    ids = sorted(by_id)
    if class_names is None:
        return [by_id[i] for i in ids], ids
    id_by_name = {name: i for i, name in by_id.items()}
    unknown = [n for n in class_names if n not in id_by_name]
    extra = [by_id[i] for i in ids if by_id[i] not in class_names]
    if unknown or extra:
        raise UserError(f"{path}: categories do not match class_names (not in the file: {unknown}; "
                        f"not in class_names: {extra})")
    return list(class_names), [id_by_name[n] for n in class_names]


class CocoSource(DetectionSource):
    """COCO json + image folder. Images without annotations are kept; crowd boxes are not training targets."""

    def __init__(self, ann_file: str | Path, image_dir: str | Path, class_names: Optional[list[str]] = None):
        self.ann_file = Path(ann_file)
        self.description = str(self.ann_file)
        data = read_json(self.ann_file)
        images, annotations = _section(data, "images", self.ann_file), _section(data, "annotations", self.ann_file)
        self.class_names, self.category_ids = _label_order(_section(data, "categories", self.ann_file),
                                                           class_names, self.ann_file)
        self.image_dir = require_folder(image_dir, f"image folder for {self.ann_file}")
        if not images:
            raise UserError(f"{self.ann_file}: the dataset has no images")
        self._read_images(images)
        self._read_annotations(annotations)
        self.warn_missing_images()

    def _read_images(self, images: list) -> None:
        path = self.ann_file
        self._ids, self._files, self._heights, self._widths = [], [], [], []
        self._index_of_id: dict[int, int] = {}
        for k, image in enumerate(images):
            image_id = int(_field(image, "id", f"images[{k}]", path))
            if image_id in self._index_of_id:
                raise UserError(f"{path}: image id {image_id} appears twice")
            self._index_of_id[image_id] = k
            self._ids.append(image_id)
            self._files.append(str(_field(image, "file_name", f"images[{k}]", path)))
            self._heights.append(int(_field(image, "height", f"images[{k}]", path)))
            self._widths.append(int(_field(image, "width", f"images[{k}]", path)))

    def _read_annotations(self, annotations: list) -> None:
        path = self.ann_file
        label_of_category = {cid: label for label, cid in enumerate(self.category_ids)}
        image_index, boxes, labels = [], [], []
        for k, ann in enumerate(annotations):
            where = f"annotations[{k}] (id {ann.get('id', '?') if isinstance(ann, dict) else '?'})"
            category = _field(ann, "category_id", where, path)
            if category not in label_of_category:
                raise UserError(f"{path}: {where} has unknown category_id {category}")
            image_id = _field(ann, "image_id", where, path)
            if image_id not in self._index_of_id:
                raise UserError(f"{path}: {where} refers to unknown image_id {image_id}")
            bbox = _field(ann, "bbox", where, path)
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise UserError(f"{path}: {where} bbox must be [x, y, width, height], got {bbox!r}")
            if ann.get("iscrowd", 0):
                continue
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                raise UserError(f"{path}: {where} bbox must hold numbers, got {bbox!r}") from None
            image_index.append(self._index_of_id[image_id])
            boxes.append((x, y, x + w, y + h))
            labels.append(label_of_category[category])
        self._store_targets(np.asarray(image_index, np.int64), np.asarray(boxes, np.float64).reshape(-1, 4),
                            np.asarray(labels, np.int64))

    def _store_targets(self, image_index: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> None:
        """Repair boxes against their image size, then keep them as flat arrays sorted by image."""
        counts = BoxRepairCounts()
        sizes = np.stack([np.asarray(self._widths), np.asarray(self._heights)], axis=1)[image_index]
        repaired = np.zeros((len(boxes), 4), np.float32)
        keep = np.zeros(len(boxes), bool)
        for w, h in np.unique(sizes, axis=0):  # vectorised per distinct image size
            rows = (sizes[:, 0] == w) & (sizes[:, 1] == h)
            repaired[rows], keep[rows] = repair_boxes(boxes[rows], w, h, counts)
        counts.report(self.ann_file)
        order = np.argsort(image_index[keep], kind="stable")
        self._boxes = repaired[keep][order]
        self._labels = labels[keep][order]
        self._starts = np.searchsorted(image_index[keep][order], np.arange(len(self._ids) + 1))

    def __len__(self) -> int:
        return len(self._ids)

    def image_info(self, index: int) -> ImageInfo:
        return ImageInfo(self._ids[index], self._files[index], self._heights[index], self._widths[index])

    def annotation(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self._starts[index], self._starts[index + 1]
        return self._boxes[start:end].copy(), self._labels[start:end].copy()

    def coco_gt(self) -> dict:
        """The original json content (crowd annotations included: COCOeval ignores them)."""
        return read_json(self.ann_file)
