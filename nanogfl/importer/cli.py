"""``nanogfl import SRC --out CKPT``: a published NanoDet-Plus ncnn/ONNX model -> a fine-tunable checkpoint."""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..config import Config, validate
from ..data.image_io import list_images, load_image
from ..engine.checkpoint import save_checkpoint
from ..errors import UserError
from ..runtime.preprocess import preprocess
from .batchnorm import rebuild_batchnorm
from .convert import import_graph, infer_num_classes, read_source
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


def image_batches(files: list[Path], input_hw: tuple[int, int], mean: list[float], std: list[float],
                  batch_size: int = BN_BATCH_SIZE) -> Iterator[torch.Tensor]:
    """Normalised [B, 3, H, W] batches; unreadable files are skipped with a warning."""
    batch = []
    for path in files:
        image = load_image(path)  # warns and returns None for an unreadable file
        if image is None:
            continue
        batch.append(preprocess(image, input_hw, mean, std)[0])
        if len(batch) == batch_size:
            yield torch.from_numpy(np.concatenate(batch))
            batch = []
    if batch:
        yield torch.from_numpy(np.concatenate(batch))


def _check_against_source(model, source, blob: np.ndarray) -> None:
    """Structure matching cannot see e.g. a different concatenation order; running both models can."""
    try:
        diff = compare_with_source(model, source, blob)
    except ImportError as e:
        print(f"parity check skipped ({e.name} is not installed)")
        return
    if diff > PARITY_TOLERANCE:
        raise UserError(f"{source.source}: the graph matched layer by layer but the imported model's output "
                        f"differs by up to {diff:.3g} of its range (tolerance {PARITY_TOLERANCE}); it computes "
                        "something else (a different concat/shuffle order?), no checkpoint written")
    print(f"parity: max |ours - {Path(source.source).name}| = {diff:.2e} of the output range (ok)")


def run_import(args: argparse.Namespace) -> int:
    cfg = Config()
    cfg.model.arch = args.arch
    cfg.model.input_size = list(args.size or (416, 416))
    validate(cfg, "--size")
    class_names = read_class_names(args.class_names) if args.class_names else None
    files = list_images(args.bn_images, "--bn-images folder")[:MAX_BN_IMAGES] if args.bn_images else []

    source = read_source(args.src)
    num_classes = infer_num_classes(source, cfg.model.reg_max)
    if class_names is None:
        from ..runtime.coco_names import COCO_CLASSES
        class_names = list(COCO_CLASSES)
    if len(class_names) != num_classes:
        given = args.class_names or "the default COCO list"
        raise UserError(f"{args.src} predicts {num_classes} classes but {given} has {len(class_names)} names; "
                        "pass --class-names with one name a line")
    torch.manual_seed(0)  # the fresh aux branch
    model = import_graph(source, args.arch, cfg.model.reg_max, cfg.model.detach_epoch)
    print(f"matched {len(source.convs)} convolutions of {args.src} ({source.weight_format} weights) "
          f"to {args.arch} with {num_classes} classes")

    mean, std = cfg.data.mean, cfg.data.std
    check_hw = source.input_hw or cfg.input_hw  # an ONNX file may only run at its own size
    if files:
        seen = rebuild_batchnorm(model, image_batches(files, cfg.input_hw, mean, std))
        print(f"BatchNorm statistics measured on {seen} images at {cfg.input_hw[0]}x{cfg.input_hw[1]}")
        blob = next(image_batches(files[:1], check_hw, mean, std)).numpy()
    else:
        print("BatchNorm layers are identity (eval mode is exact); pass --bn-images DIR to measure real "
              "statistics before fine-tuning")
        blob = np.random.default_rng(0).standard_normal((1, 3, *check_hw)).astype(np.float32)
    _check_against_source(model, source, blob)

    save_checkpoint(args.out, {"model": model.state_dict(), "config": cfg.to_dict(),
                               "class_names": class_names, "imported_from": str(args.src)})
    print(f"wrote {args.out}")
    return 0
