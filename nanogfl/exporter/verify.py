"""Self-check of an export: the exported files, run through the runtime backends, against the PyTorch model
(BN not folded) on real images. Reports the max |difference| on class probabilities and on box-bin logits."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..image_io import list_images, load_image
from ..model.deploy import DeployModel
from ..runtime.backends import open_model
from ..runtime.preprocess import prepare_input

DEFAULT_IMAGE_COUNT = 4


@dataclass(frozen=True)
class Tolerance:
    probs: float  # max |diff| on the sigmoid class probabilities
    box_logits: float  # max |diff| on the raw box-bin logits

    def __str__(self) -> str:
        return f"{self.probs:.0e} / {self.box_logits:.0e}"


# fp32 files differ from PyTorch only by BN folding and summation order: measured <= 5.5e-5 / 3.4e-4 (random
# weights with large activations), 3.4e-6 / 1.1e-4 (NanoDet-Plus-m weights, 20 COCO images at 320 and 416).
FP32_TOLERANCE = Tolerance(probs=1e-4, box_logits=2e-3)
# fp16 ncnn weights round every weight by up to 2^-11 relative; on NanoDet-Plus-m weights that are not already
# fp16-exact this moves outputs by up to 5.7e-3 / 0.22 (20 COCO images, 416; PyTorch with the same rounded
# weights agrees with ncnn to 2.5e-3). A wrong graph differs by ~0.5 on probabilities and several on logits.
FP16_TOLERANCE = Tolerance(probs=2e-2, box_logits=0.5)


@dataclass
class ParityResult:
    label: str  # "onnxruntime", "ncnn fp16", ...
    probs_diff: float
    box_logits_diff: float
    tolerance: Tolerance | None  # None: informative only (int8)

    @property
    def ok(self) -> bool:
        return self.tolerance is None or (self.probs_diff <= self.tolerance.probs
                                          and self.box_logits_diff <= self.tolerance.box_logits)

    def line(self) -> str:
        verdict = "info" if self.tolerance is None else ("ok" if self.ok else "FAILED")
        limit = "" if self.tolerance is None else f"  (tolerance {self.tolerance})"
        return (f"  {self.label:<12} probs {self.probs_diff:.1e}  box logits {self.box_logits_diff:.1e}"
                f"{limit}  {verdict}")


def synthetic_frame(height: int = 360, width: int = 480) -> np.ndarray:
    """A fixed BGR test frame (gradients, shapes, noise) for when no real images are at hand."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack((xs / width * 255, ys / height * 255, (xs + ys) / (width + height) * 255), axis=-1)
    for _ in range(12):
        x0, y0 = rng.integers(0, width - 40), rng.integers(0, height - 40)
        w, h = rng.integers(20, width // 3), rng.integers(20, height // 3)
        frame[y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, 3)
    frame += rng.normal(0, 8, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def load_verify_images(folder: str | Path | None = None, val_images: str | Path | None = None,
                       count: int = DEFAULT_IMAGE_COUNT) -> tuple[list[np.ndarray], str]:
    """Images for the parity check and what they are: the user's ``folder``; else the first images of the
    checkpoint's val set (``val_images``) when that folder exists here; else one synthetic frame."""
    if folder is not None:
        where = "images from"
    elif val_images and Path(val_images).is_dir():
        folder, where = val_images, "images of the checkpoint's val set in"
    else:
        return [synthetic_frame()], "1 synthetic frame (no --verify-images given and the checkpoint's val " \
                                    "images are not here)"
    files = list_images(folder, "--verify-images folder")[:count]
    images = [load_image(f) for f in files]
    unreadable = [f.name for f, image in zip(files, images) if image is None]
    if unreadable:
        raise UserError(f"{files[0].parent}: cannot read image {unreadable[0]}")
    return images, f"{len(images)} {where} {files[0].parent}"


def compare_outputs(reference: np.ndarray, output: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Max |diff| on the class columns and on the box columns of two [N, D] outputs."""
    if reference.shape != output.shape:
        raise UserError(f"exported model output has shape {output.shape}, PyTorch gives {reference.shape}")
    diff = np.abs(reference.astype(np.float64) - output.astype(np.float64))
    return float(diff[:, :num_classes].max()), float(diff[:, num_classes:].max())


def verify_exports(reference: DeployModel, models: list[tuple[str, Path, Tolerance | None]],
                   images: list[np.ndarray], threads: int = 0) -> list[ParityResult]:
    """Run every exported ``(label, path, tolerance)`` model through the runtime (which reads the metadata file
    beside it, ncnn_precision included, exactly as a later ``open_model`` does) and the PyTorch ``reference`` on
    ``images``; one ParityResult per model, worst case over images.
    All models must share one input size (they come from one export)."""
    backends = [open_model(path, threads=threads) for _, path, _ in models]
    meta = backends[0].meta
    worst = np.zeros((len(backends), 2))
    for image in images:
        blob, _ = prepare_input(image, meta)  # a keep-ratio model: each image at its own size
        with torch.no_grad():
            expected = reference(torch.from_numpy(blob))[0].numpy()
        for i, backend in enumerate(backends):
            worst[i] = np.maximum(worst[i], compare_outputs(expected, backend.forward(blob), meta.num_classes))
    return [ParityResult(label, float(worst[i, 0]), float(worst[i, 1]), tolerance)
            for i, (label, _, tolerance) in enumerate(models)]
