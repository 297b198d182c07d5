"""Know your data before training: images, boxes per class, images without boxes, missing images, label files
without an image, and boxes too small for the finest stride. Torch-free; nothing is decoded (sizes come from the
annotations, or from image headers for YOLO)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..config import Config
from ..errors import UserError
from .base import DetectionSource

LINE_WIDTH = 120


@dataclass
class DatasetSummary:
    """What one dataset holds, as training will see it (crowd / difficult objects are not counted)."""
    split: str  # "train" or "val"
    description: str  # the annotation file or folder
    class_names: list[str]
    images: int
    boxes_per_class: list[int]
    images_without_boxes: int
    missing_images: int  # listed by the annotations but absent (or, for YOLO, an unreadable header)
    labels_without_image: list[str] = field(default_factory=list)  # YOLO label files no image matches
    small_boxes: int = 0  # boxes that fit inside one cell of the finest grid once resized to the input
    min_stride: int = 8
    input_hw: tuple[int, int] = (0, 0)

    @property
    def boxes(self) -> int:
        return int(sum(self.boxes_per_class))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "boxes": self.boxes,
                "boxes_per_class": dict(zip(self.class_names, self.boxes_per_class))}


def resize_factors(image_hw: tuple[int, int], input_hw: tuple[int, int], keep_ratio: bool) -> tuple[float, float]:
    """(x, y) scale from the image to the network input: stretched, or fitted with one factor (keep_ratio)."""
    sy, sx = input_hw[0] / image_hw[0], input_hw[1] / image_hw[1]
    return (min(sx, sy),) * 2 if keep_ratio else (sx, sy)


def summarize(source: DetectionSource, split: str, input_hw: tuple[int, int], min_stride: int,
              keep_ratio: bool = False) -> DatasetSummary:
    """Count ``source`` (a DetectionSource) for a model with input ``input_hw`` whose finest stride is
    ``min_stride``: a box is small when both its sides, resized to the input, are under ``min_stride``."""
    per_class = np.zeros(len(source.class_names), np.int64)
    empty = missing = small = 0
    for index in range(len(source)):
        info = source.image_info(index)
        if info.height <= 0 or info.width <= 0 or not source.image_path(index).is_file():
            missing += 1
        boxes, labels = source.annotation(index)
        if len(labels) == 0:
            empty += 1
            continue
        per_class += np.bincount(labels, minlength=len(per_class))
        if info.height > 0 and info.width > 0:
            sx, sy = resize_factors((info.height, info.width), input_hw, keep_ratio)
            sides = np.stack([(boxes[:, 2] - boxes[:, 0]) * sx, (boxes[:, 3] - boxes[:, 1]) * sy], axis=1)
            small += int((sides.max(axis=1) < min_stride).sum())
    orphans = [str(p) for p in source.label_files_without_image()]
    return DatasetSummary(split, source.description, list(source.class_names), len(source), per_class.tolist(),
                          empty, missing, orphans, small, int(min_stride), (int(input_hw[0]), int(input_hw[1])))


def summarize_datasets(cfg: Config, train: DetectionSource,
                       val: Optional[DetectionSource] = None) -> list[DatasetSummary]:
    """The train (and val) summaries for the model and input size of ``cfg``."""
    args = (cfg.input_hw, min(cfg.model.head.strides), cfg.augment.keep_ratio)
    return [summarize(train, "train", *args)] + ([summarize(val, "val", *args)] if val is not None else [])


def require_boxes(summary: DatasetSummary) -> None:
    """A training set without a single box trains on nothing: stop at start with one line."""
    if summary.boxes == 0:
        raise UserError(f"{summary.description}: no boxes in the {summary.split} set ({summary.images} images, "
                        f"none with an object): check the annotation file / label folder and data.class_names")


def check_datasets(cfg: Config, train: DetectionSource, val: Optional[DetectionSource] = None,
                   show: bool = True) -> list[DatasetSummary]:
    """What training does at start: summarise both sets, print the table when ``show``, and stop (UserError)
    when the training set has no box."""
    summaries = summarize_datasets(cfg, train, val)
    if show:
        print(format_summaries(summaries))
    require_boxes(summaries[0])
    return summaries


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if k else cell.ljust(w) for k, (cell, w) in enumerate(zip(row, widths)))
            for row in rows]


def _class_cells(summaries: list[DatasetSummary]) -> list[str]:
    """``name boxes[/val boxes]`` per class, several to a line."""
    counts = ["/".join(str(s.boxes_per_class[k]) for s in summaries) for k in range(len(summaries[0].class_names))]
    names = summaries[0].class_names
    cell = max(len(n) + 1 + len(c) for n, c in zip(names, counts)) + 3
    per_line = max(1, LINE_WIDTH // cell)
    cells = [f"{name} {count}".ljust(cell) for name, count in zip(names, counts)]
    lines = ["".join(cells[i:i + per_line]).rstrip() for i in range(0, len(cells), per_line)]
    return ["  " + line for line in lines]


def format_summaries(summaries: list[DatasetSummary]) -> str:
    """A compact table: one row per dataset, then the boxes per class (train/val) several to a line."""
    first = summaries[0]
    small = f"boxes < {first.min_stride}x{first.min_stride}px at {first.input_hw[0]}x{first.input_hw[1]}"
    rows = [["dataset", "images", "boxes", "images without boxes", "missing images", "labels without image",
             small]]
    for s in summaries:
        rows.append([s.split, str(s.images), str(s.boxes), str(s.images_without_boxes), str(s.missing_images),
                     str(len(s.labels_without_image)), str(s.small_boxes)])
    lines = _table(rows)
    splits = "/".join(s.split for s in summaries)
    lines.append(f"boxes per class ({splits}):")
    lines += _class_cells(summaries)
    for s in summaries:
        unused = [name for name, n in zip(s.class_names, s.boxes_per_class) if n == 0]
        if unused and s.boxes:
            lines.append(f"{s.split}: {len(unused)} class(es) without a box: {', '.join(unused[:10])}"
                         f"{', ...' if len(unused) > 10 else ''}")
        if s.labels_without_image:
            lines.append(f"{s.split}: {len(s.labels_without_image)} label file(s) without an image, e.g. "
                         f"{s.labels_without_image[0]}")
    return "\n".join(lines)
