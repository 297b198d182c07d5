"""The torch side: a Dataset over a DetectionSource, the batch collate function and the DataLoader builder.

Randomness is drawn from ``np.random.default_rng([seed, epoch, index])``: each sample's augmentation depends
only on the seed, the epoch and its index, so it is the same whatever the number of workers or ranks.
"""
from __future__ import annotations

from typing import Any, Callable

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import UserError
from ..runtime.preprocess import padded_size
from .base import DetectionSource, Sample

Transform = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


class DetectionDataset(Dataset):
    """A DetectionSource as a torch Dataset: unreadable images are skipped (warned once), augmentation is seeded
    by (seed, epoch, index)."""

    def __init__(self, source: DetectionSource, transform: Transform, seed: int = 0):
        self.source = source
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self._unreadable: set[int] = set()  # per process: each bad file is warned about once

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The sample at ``index``, or the next readable one when its image cannot be read."""
        for step in range(len(self)):
            candidate = (index + step) % len(self)
            if candidate in self._unreadable:
                continue
            sample = self.source.load(candidate)
            if sample is None:
                self._unreadable.add(candidate)
                continue
            return self._prepare(sample, candidate)
        raise UserError(f"{self.source.description}: none of the {len(self)} images could be read")

    def _prepare(self, sample: Sample, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image, boxes, labels, matrix = self.transform(sample.image, sample.boxes, sample.labels, rng)
        return {"image": torch.from_numpy(image), "boxes": torch.from_numpy(boxes),
                "labels": torch.from_numpy(labels), "image_id": sample.info.image_id}


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """-> images [B, 3, H, W], boxes / labels as lists of per-image tensors, image_ids (for messages), and
    image_hw: each image's own size rounded up to a multiple of 32 (its valid region; priors beyond it are
    ignored by the loss). Images of different sizes (keep-ratio training) are zero-padded bottom / right to the
    largest one's padded size."""
    sizes = [padded_size(tuple(item["image"].shape[1:])) for item in batch]
    batch_hw = (max(h for h, _ in sizes), max(w for _, w in sizes))
    images = torch.zeros(len(batch), 3, *batch_hw)
    for image, item in zip(images, batch):
        image[:, :item["image"].shape[1], :item["image"].shape[2]] = item["image"]
    return {"images": images, "image_hw": sizes,
            "boxes": [item["boxes"] for item in batch],
            "labels": [item["labels"] for item in batch],
            "image_ids": [item["image_id"] for item in batch]}


def _init_worker(worker_id: int) -> None:
    cv2.setNumThreads(0)  # the workers already run in parallel; OpenCV threads would oversubscribe the CPU


def build_loader(dataset: DetectionDataset, batch_size: int, shuffle: bool, workers: int, distributed: bool,
                 seed: int, drop_last: bool) -> DataLoader:
    """DataLoader with a per-epoch reshuffle; call ``set_epoch(loader, epoch)`` before each epoch.

    Distributed: each rank reads its own slice (DistributedSampler pads with repeats when the length does not
    divide, so evaluation must de-duplicate by image_id).
    """
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    elif shuffle:
        # One replica: the same seed + epoch permutation as the distributed case, without a process group.
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    else:
        sampler = None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate,
                      drop_last=drop_last, pin_memory=torch.cuda.is_available(), worker_init_fn=_init_worker,
                      persistent_workers=False)  # fresh workers each epoch pick up dataset.epoch


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Reseed the shuffle and the augmentation for ``epoch`` (before iterating the loader)."""
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
