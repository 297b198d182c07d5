"""Pascal VOC xml datasets: one xml per image; coordinates taken as written (floats accepted, no -1 shift)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserError
from ..image_io import IMAGE_EXTENSIONS, read_image_header
from .base import BoxRepairCounts, DetectionSource, ImageInfo, build_coco_gt, repair_boxes, require_folder


@dataclass
class _VocObject:
    name: str
    box: tuple[float, float, float, float]
    difficult: bool


@dataclass
class _VocFile:
    path: Path
    file_name: str
    size_hw: Optional[tuple[int, int]]  # None when the xml has no usable <size>
    objects: list[_VocObject]


def _text(node: ET.Element, tag: str, path: Path, required: bool = True) -> Optional[str]:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise UserError(f"{path}: <{node.tag}> lacks <{tag}>")
        return None
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: Path) -> float:
    text = _text(node, tag, path)
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{path}: <{tag}> is not a number: {text!r}") from None


def parse_voc_xml(path: Path, image_dir: Path) -> _VocFile:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise UserError(f"{path}: not valid XML ({e})") from None
    file_name = _text(root, "filename", path, required=False)
    if file_name is None:
        found = [p for p in (image_dir / (path.stem + ext) for ext in IMAGE_EXTENSIONS) if p.is_file()]
        file_name = found[0].name if found else path.stem + ".jpg"
    size_hw = None
    size = root.find("size")
    if size is not None:
        height, width = _text(size, "height", path, False), _text(size, "width", path, False)
        if height and width and float(height) > 0 and float(width) > 0:
            size_hw = (int(float(height)), int(float(width)))
    objects = []
    for obj in root.findall("object"):
        box = obj.find("bndbox")
        if box is None:
            raise UserError(f"{path}: <object> lacks <bndbox>")
        coords = tuple(_number(box, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax"))
        difficult = _text(obj, "difficult", path, required=False) or "0"
        objects.append(_VocObject(_text(obj, "name", path), coords, difficult.strip() not in ("0", "false")))
    return _VocFile(path, file_name, size_hw, objects)


def _xml_files(ann: Path) -> list[Path]:
    """A folder of xml, or an ImageSets-style txt of ids (xml read from the sibling Annotations folder)."""
    if ann.is_dir():
        return sorted(ann.glob("*.xml"))
    if ann.is_file() and ann.suffix == ".txt":
        candidates = [p / "Annotations" for p in list(ann.parents)[:3]]
        xml_dir = next((c for c in candidates if c.is_dir()), None)
        if xml_dir is None:
            raise UserError(f"{ann}: id list given but no Annotations folder found near it")
        ids = [line.split()[0] for line in ann.read_text().splitlines() if line.strip()]
        return [xml_dir / f"{i}.xml" for i in ids]
    raise UserError(f"VOC annotations not found: {ann} (expected a folder of .xml or a .txt list of ids)")


class VocSource(DetectionSource):
    """Pascal VOC. Class names from the config, or every <name> in the xml files, sorted.

    Difficult objects are not training targets; in coco_gt() they are iscrowd=1 so evaluation ignores them.
    """

    def __init__(self, ann: str | Path, image_dir: str | Path, class_names: Optional[list[str]] = None):
        ann = Path(ann)
        self.description = str(ann)
        self.image_dir = require_folder(image_dir, f"image folder for {ann}")
        xml_paths = _xml_files(ann)
        if not xml_paths:
            raise UserError(f"{ann}: the dataset has no images (no .xml files)")
        missing = [p for p in xml_paths if not p.is_file()]
        if missing:
            raise UserError(f"{missing[0]}: annotation file not found ({len(missing)} listed in {ann} are missing)")
        files = [parse_voc_xml(p, self.image_dir) for p in xml_paths]
        names = sorted({o.name for f in files for o in f.objects})
        self.class_names = list(class_names) if class_names is not None else names
        if not self.class_names:
            raise UserError(f"{ann}: no objects found and no class_names given")
        self.category_ids = list(range(1, len(self.class_names) + 1))
        self._store(files)
        self.warn_missing_images()

    def _store(self, files: list[_VocFile]) -> None:
        label_of = {name: k for k, name in enumerate(self.class_names)}
        self._files, self._sizes, self._boxes, self._labels, self._difficult = [], [], [], [], []
        for f in files:
            unknown = [o.name for o in f.objects if o.name not in label_of]
            if unknown:
                raise UserError(f"{f.path}: unknown class name {unknown[0]!r} (not in class_names)")
            size_hw = f.size_hw
            if size_hw is None:
                header = read_image_header(self.image_dir / f.file_name)
                size_hw = header.stored_hw if header else (0, 0)
            counts = BoxRepairCounts()
            boxes, keep = repair_boxes(np.array([o.box for o in f.objects], np.float64).reshape(-1, 4),
                                       size_hw[1], size_hw[0], counts)
            counts.report(f.path)
            self._files.append(f.file_name)
            self._sizes.append(size_hw)
            self._boxes.append(boxes[keep])
            self._labels.append(np.array([label_of[o.name] for o in f.objects], np.int64)[keep])
            self._difficult.append(np.array([o.difficult for o in f.objects], bool)[keep])

    def __len__(self) -> int:
        return len(self._files)

    def image_info(self, index: int) -> ImageInfo:
        height, width = self._sizes[index]
        return ImageInfo(index + 1, self._files[index], height, width)

    def annotation(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        easy = ~self._difficult[index]
        return self._boxes[index][easy].copy(), self._labels[index][easy].copy()

    def coco_gt(self) -> dict:
        return build_coco_gt(self, list(zip(self._boxes, self._labels, self._difficult)))
