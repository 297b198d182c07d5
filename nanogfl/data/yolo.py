"""YOLO txt datasets: one ``class cx cy w h`` line per object, normalised to the (EXIF-rotated) image size."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from ..errors import UserError
from ..image_io import IMAGE_EXTENSIONS, read_image_header
from .base import BoxRepairCounts, DetectionSource, ImageInfo, build_coco_gt, repair_boxes, require_folder


def _names_from_yaml(path: Path) -> list[str]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({e})") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):  # {0: person, 1: bicycle}
        names = [names[k] for k in sorted(names, key=int)]
    if not isinstance(names, list) or not names:
        raise UserError(f"{path}: expected a 'names' list or mapping")
    return [str(n) for n in names]


TEXT_NAME_FILES = ("classes.txt", "names.txt", "obj.names", "coco.names")  # one class name a line
YAML_NAME_FILES = ("data.yaml", "dataset.yaml")  # preferred; any other *.yaml / *.yml with ``names:`` also counts


def _has_names(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "names" in data


def class_names_file(label_dir: Path) -> Optional[Path]:
    """The class-names file of a YOLO label folder, looked for in the folder and up to two folders above it:
    classes.txt (or names.txt, obj.names, coco.names, any *.names), data.yaml / dataset.yaml, or any other
    *.yaml / *.yml with a ``names:`` key. None: there is none."""
    for folder in [label_dir, *list(label_dir.parents)[:2]]:
        for name in (*TEXT_NAME_FILES, *YAML_NAME_FILES):
            if (folder / name).is_file():
                return folder / name
        others = sorted(folder.glob("*.names")) + [p for p in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
                                                    if _has_names(p)]
        if others:
            return others[0]
    return None


def find_class_names(label_dir: Path) -> list[str]:
    """The class names of ``class_names_file``."""
    path = class_names_file(label_dir)
    if path is not None and path.suffix not in (".yaml", ".yml"):
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if path is not None:
        return _names_from_yaml(path)
    raise UserError(f"{label_dir}: YOLO labels need class names: set data.class_names in the config or put "
                    f"classes.txt (one name a line) or a *.yaml with names: next to the labels")


def read_label_file(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised xyxy boxes float64 [K, 4] and class ids int64 [K] from one label file."""
    boxes, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise UserError(f"{path}:{number}: expected 'class cx cy w h', got {line.strip()!r}")
        try:
            label = int(parts[0])
            cx, cy, w, h = (float(v) for v in parts[1:])
        except ValueError:
            raise UserError(f"{path}:{number}: not numbers: {line.strip()!r}") from None
        if not 0 <= label < num_classes:
            raise UserError(f"{path}:{number}: unknown class id {label} (there are {num_classes} classes)")
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        labels.append(label)
    return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(labels, np.int64)


class YoloSource(DetectionSource):
    """Images from a folder (recursive); labels at the same relative path under the label folder, .txt.

    An image without a label file has no objects. Labels refer to the EXIF-rotated image, as YOLO tools write them.
    """

    def __init__(self, label_dir: str | Path, image_dir: str | Path, class_names: Optional[list[str]] = None):
        self.label_dir = require_folder(label_dir, "YOLO label folder")
        self.image_dir = require_folder(image_dir, f"image folder for {label_dir}")
        self.description = str(self.label_dir)
        self.class_names = list(class_names) if class_names is not None else find_class_names(self.label_dir)
        self.category_ids = list(range(1, len(self.class_names) + 1))
        self._files = sorted(str(p.relative_to(self.image_dir)) for p in self.image_dir.rglob("*")
                             if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not self._files:
            raise UserError(f"{self.image_dir}: the dataset has no images")
        self._boxes, self._labels = [], []  # normalised, repaired
        for file_name in self._files:
            label_path = (self.label_dir / file_name).with_suffix(".txt")
            boxes, labels = np.zeros((0, 4)), np.zeros((0,), np.int64)
            if label_path.is_file():
                boxes, labels = read_label_file(label_path, len(self.class_names))
            counts = BoxRepairCounts()
            boxes, keep = repair_boxes(boxes, 1.0, 1.0, counts)
            counts.report(label_path)
            self._boxes.append(boxes[keep])
            self._labels.append(labels[keep])
        self._sizes: list[Optional[tuple[int, int]]] = [None] * len(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def image_info(self, index: int) -> ImageInfo:
        if self._sizes[index] is None:
            header = read_image_header(self.image_dir / self._files[index])
            self._sizes[index] = header.displayed_hw if header else (0, 0)
        height, width = self._sizes[index]
        return ImageInfo(index + 1, self._files[index], height, width)

    def label_files_without_image(self) -> list[Path]:
        matched = {str(Path(f).with_suffix("")) for f in self._files}
        return sorted(p for p in self.label_dir.rglob("*.txt") if p.name not in TEXT_NAME_FILES
                      and str(p.relative_to(self.label_dir).with_suffix("")) not in matched)

    def expected_image_hw(self, index: int) -> Optional[tuple[int, int]]:
        return None  # always apply EXIF orientation

    def _pixel_boxes(self, index: int) -> np.ndarray:
        info = self.image_info(index)
        scale = np.array([info.width, info.height, info.width, info.height], np.float64)
        return (self._boxes[index].astype(np.float64) * scale).astype(np.float32)

    def annotation(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self._pixel_boxes(index), self._labels[index].copy()

    def coco_gt(self) -> dict:
        objects = [(self._pixel_boxes(i), self._labels[i], np.zeros(len(self._labels[i]), bool))
                   for i in range(len(self))]
        return build_coco_gt(self, objects)
