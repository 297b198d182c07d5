"""Some of a dataset's classes, chosen by name and re-indexed in the given order (``data.classes``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserError
from .base import DetectionSource, ImageInfo


class ClassSubset(DetectionSource):
    """``source`` with only the objects of ``classes`` (names from its own class list), labelled 0..len-1 in the
    order given. Every image is kept: one without any of these objects is a background image.

    ``strict`` (the user's ``data.classes``): a name the dataset does not have is an error listing the ones it
    has. Not strict (reading a dataset for a model's classes): such a class simply has no objects.

    >>> subset = ClassSubset(CocoSource("instances_val2017.json", "val2017"), ["person", "car", "dog"])
    >>> subset.class_names, subset.category_ids  # (['person', 'car', 'dog'], [1, 3, 18])
    """

    def __init__(self, source: DetectionSource, classes: list[str], strict: bool = True) -> None:
        repeated = sorted({n for n in classes if classes.count(n) > 1})
        if repeated:
            raise UserError(f"data.classes names {repeated[0]!r} more than once")
        if not classes:
            raise UserError("data.classes is empty: name at least one class, or leave it unset for all")
        known = {name: label for label, name in enumerate(source.class_names)}
        unknown = [n for n in classes if n not in known]
        if unknown and strict:
            raise UserError(f"{source.description}: data.classes {unknown[0]!r} is not a class of this dataset; "
                            f"its classes: {', '.join(source.class_names)}")
        self.source = source
        self.class_names = list(classes)
        self.image_dir = source.image_dir
        self.description = source.description
        self._new_label = np.full(len(source.class_names), -1, np.int64)
        next_id = max(source.category_ids, default=0) + 1
        self.category_ids = []
        for label, name in enumerate(classes):
            if name in known:
                self._new_label[known[name]] = label
                self.category_ids.append(source.category_ids[known[name]])
            else:  # no objects in this dataset: an id of its own, so detections of it match nothing
                self.category_ids.append(next_id)
                next_id += 1

    def __len__(self) -> int:
        return len(self.source)

    def image_info(self, index: int) -> ImageInfo:
        return self.source.image_info(index)

    def image_path(self, index: int) -> Path:
        return self.source.image_path(index)

    def expected_image_hw(self, index: int) -> Optional[tuple[int, int]]:
        return self.source.expected_image_hw(index)

    def annotation(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        boxes, labels = self.source.annotation(index)
        new = self._new_label[labels]
        keep = new >= 0
        return boxes[keep], new[keep]

    def coco_gt(self) -> dict:
        gt = self.source.coco_gt()
        wanted = set(self.category_ids)
        return {**gt, "annotations": [a for a in gt["annotations"] if a["category_id"] in wanted],
                "categories": [{"id": cid, "name": name} for cid, name in zip(self.category_ids, self.class_names)]}

    def summary(self) -> str:
        """One line: boxes kept and the images left without any (kept as background images)."""
        counts = [len(self.annotation(i)[1]) for i in range(len(self))]
        background = sum(1 for c in counts if c == 0)
        return (f"{self.description}: data.classes {', '.join(self.class_names)}: {sum(counts)} boxes in "
                f"{len(self) - background} images; {background} images have none and are kept as background images")
