"""The one sample format every dataset reader produces, and the behaviour they share."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserError
from ..image_io import load_image, warn


@dataclass(frozen=True)
class ImageInfo:
    image_id: int
    file_name: str  # relative to the image folder
    height: int
    width: int


@dataclass
class Sample:
    image: np.ndarray  # BGR uint8 HxWx3
    boxes: np.ndarray  # float32 [K, 4] x1, y1, x2, y2 pixels
    labels: np.ndarray  # int64 [K], 0..C-1
    info: ImageInfo


@dataclass
class BoxRepairCounts:
    """Per-file tally of repaired boxes, reported as one summary warning."""
    clipped: int = 0
    dropped: int = 0

    def report(self, source: str | Path) -> None:
        if self.clipped or self.dropped:
            warn(f"{source}: {self.clipped} box(es) clipped to the image, {self.dropped} dropped "
                 f"(NaN, zero/negative size or fully outside)")


def repair_boxes(boxes: np.ndarray, width: float, height: float,
                 counts: BoxRepairCounts) -> tuple[np.ndarray, np.ndarray]:
    """Clip xyxy boxes to the image and find the ones to drop (NaN/inf, empty after clipping).

    Returns (clipped boxes float32 [K, 4], keep mask [K]); the tallies go into ``counts``.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    finite = np.isfinite(boxes).all(axis=1)
    safe = np.where(finite[:, None], boxes, 0.0)
    clipped = np.clip(safe, 0.0, [width, height, width, height])
    keep = finite & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    changed = (np.abs(clipped - safe) > 1e-6).any(axis=1)
    counts.clipped += int((changed & keep).sum())
    counts.dropped += int((~keep).sum())
    return clipped.astype(np.float32), keep


def require_folder(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not str(path) or not path.is_dir():
        raise UserError(f"{what} not found: {path}")
    return path


class DetectionSource:
    """Indexed access to one dataset. Subclasses fill in the metadata and the per-image annotations."""

    class_names: list[str]
    category_ids: list[int]  # label index -> category id in coco_gt()
    image_dir: Path
    description: str  # the annotation file or folder, for messages

    def __len__(self) -> int:
        raise NotImplementedError

    def image_info(self, index: int) -> ImageInfo:
        raise NotImplementedError

    def annotation(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Training targets (crowd / difficult objects excluded): boxes float32 [K, 4], labels int64 [K]."""
        raise NotImplementedError

    def coco_gt(self) -> dict:
        raise NotImplementedError

    def image_path(self, index: int) -> Path:
        return self.image_dir / self.image_info(index).file_name

    def expected_image_hw(self, index: int) -> Optional[tuple[int, int]]:
        """The size the labels refer to, used to decide about EXIF rotation (None: apply it)."""
        info = self.image_info(index)
        return info.height, info.width

    def label_files_without_image(self) -> list[Path]:
        """Label files in the dataset's folder that no image matches (formats with one label file per image)."""
        return []

    def load(self, index: int) -> Optional[Sample]:
        """Image + targets, or None (after a one-line warning naming the file) when the image is unusable."""
        info = self.image_info(index)
        path = self.image_path(index)
        image = load_image(path, self.expected_image_hw(index))
        if image is None:
            return None
        if image.shape[:2] != (info.height, info.width):
            warn(f"{path}: image is {image.shape[1]}x{image.shape[0]} but {self.description} says "
                 f"{info.width}x{info.height}; skipped")
            return None
        boxes, labels = self.annotation(index)
        return Sample(image, boxes, labels, info)

    def warn_missing_images(self) -> None:
        """Fail when no listed image exists (a wrong folder); warn once when only some are missing."""
        missing = [i for i in range(len(self)) if not self.image_path(i).is_file()]
        if missing and len(missing) == len(self):
            raise UserError(f"{self.description}: none of the {len(self)} images exist under {self.image_dir} "
                            f"(first: {self.image_path(0)})")
        if missing:
            warn(f"{self.description}: {len(missing)} of {len(self)} images are missing under {self.image_dir} "
                 f"(first: {self.image_path(missing[0])}); they will be skipped")


def build_coco_gt(source: DetectionSource, objects: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """COCO-format ground truth from per-image (boxes, labels, ignored) arrays; ignored objects get iscrowd=1."""
    images, annotations = [], []
    for index, (boxes, labels, ignored) in enumerate(objects):
        info = source.image_info(index)
        images.append({"id": info.image_id, "file_name": info.file_name, "height": info.height, "width": info.width})
        for box, label, crowd in zip(boxes.tolist(), labels.tolist(), ignored.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1,  # pycocotools treats id 0 as "no match"
                                "image_id": info.image_id, "category_id": source.category_ids[label],
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": int(crowd)})
    categories = [{"id": cid, "name": name} for cid, name in zip(source.category_ids, source.class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}
