"""One import: a published NanoDet-Plus ncnn/ONNX model -> a fine-tunable checkpoint, checked against the file."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..checkpoint import Checkpoint, save_checkpoint
from ..contract import NANODET_ARCHS, check_input_size
from ..errors import UserError
from ..image_io import list_images, load_image
from ..model.batchnorm_stats import normalised_batches, rebuild_batchnorm
from ..model.detector import GFLDetector
from ..model.variants import default_config
from ..runtime.coco_names import COCO_CLASSES
from .convert import import_graph, infer_num_classes, read_source
from .graph import NetGraph
from .verify import compare_with_source

MAX_BN_IMAGES = 1000
BN_BATCH_SIZE = 8
PARITY_TOLERANCE = 1e-2  # relative to the output range; the official fp16 ncnn vs torch: ~1e-5


def read_class_names(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"class names file not found: {path}")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise UserError(f"{path}: no class names (expected one name a line)")
    return names


def image_batches(files: list[Path], input_hw: tuple[int, int], mean: Sequence[float], std: Sequence[float],
                  batch_size: int = BN_BATCH_SIZE) -> Iterator[torch.Tensor]:
    """Normalised [B, 3, H, W] batches; unreadable files are skipped with a warning."""
    images = (image for image in map(load_image, files) if image is not None)  # load_image warns on a bad file
    return normalised_batches(images, input_hw, mean, std, batch_size)


def _check_against_source(model: GFLDetector, source: NetGraph, class_names: list[str], blob: np.ndarray,
                          log: Callable[[str], None]) -> None:
    """Structure matching cannot see e.g. a different concatenation order; running both models can."""
    try:
        diff = compare_with_source(model, source, class_names, blob)
    except UserError as e:
        if "is not installed" not in str(e):
            raise
        log(f"parity check skipped ({e})")
        return
    if diff > PARITY_TOLERANCE:
        raise UserError(f"{source.source}: the graph matched layer by layer but the imported model's output "
                        f"differs by up to {diff:.3g} of its range (tolerance {PARITY_TOLERANCE}); it computes "
                        "something else (a different concat/shuffle order?), no checkpoint written")
    log(f"parity: max |ours - {Path(source.source).name}| = {diff:.2e} of the output range (ok)")


def import_model(src: str | Path, out: str | Path, arch: str = "nanodet-plus-m",
                 input_hw: tuple[int, int] = (416, 416), class_names: list[str] | None = None,
                 bn_images: str | Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Read ``src`` (ncnn .param/.bin or ONNX), match it to ``arch`` by structure, rebuild BatchNorm (identity,
    or statistics measured on ``bn_images``), run the file next to the result, and write the checkpoint ``out``
    only if they agree. ``class_names`` default to COCO's 80."""
    if arch not in NANODET_ARCHS:
        raise UserError(f"{src}: ncnn and ONNX files import as NanoDet models (--arch {', '.join(NANODET_ARCHS)}); "
                        f"{arch} imports from an mmdetection .pth")
    cfg = default_config(arch)
    cfg.model.input_size = list(check_input_size(input_hw, "--size"))
    files = list_images(bn_images, "--bn-images folder")[:MAX_BN_IMAGES] if bn_images else []

    source = read_source(src)
    num_classes = infer_num_classes(source, arch)
    names = list(class_names) if class_names is not None else list(COCO_CLASSES)
    if len(names) != num_classes:
        given = "--class-names" if class_names is not None else "the default COCO list"
        raise UserError(f"{src} predicts {num_classes} classes but {given} has {len(names)} names; "
                        "pass --class-names with one name a line")
    torch.manual_seed(0)  # the fresh aux branch
    model = import_graph(source, arch)
    log(f"matched {len(source.convs)} convolutions of {src} ({source.weight_format} weights) "
        f"to {arch} with {num_classes} classes")

    mean, std = cfg.data.mean, cfg.data.std
    check_hw = source.input_hw or cfg.input_hw  # an ONNX file may only run at its own size
    if files:
        seen = rebuild_batchnorm(model, image_batches(files, cfg.input_hw, mean, std))
        log(f"BatchNorm statistics measured on {seen} images at {cfg.input_hw[0]}x{cfg.input_hw[1]}")
        blob = next(image_batches(files[:1], check_hw, mean, std)).numpy()
    else:
        log("BatchNorm layers are identity (eval mode is exact); pass --bn-images DIR to measure real "
            "statistics before fine-tuning")
        blob = np.random.default_rng(0).standard_normal((1, 3, *check_hw)).astype(np.float32)
    _check_against_source(model, source, names, blob, log)

    save_checkpoint(out, Checkpoint(model=model.state_dict(), config=cfg.to_dict(), class_names=names,
                                    aux_trained=False, source=str(src)))
    log(f"wrote {out}")
    return Path(out)
