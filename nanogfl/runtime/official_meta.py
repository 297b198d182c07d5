"""Metadata for an official NanoDet-Plus COCO ncnn file that has no json beside it, read from the .param text.

The published NanoDet-Plus ncnn files take blob "data" and give "output" [N, 80 + 32] (strides 8-64, reg_max 7)
after per-level ``Reshape 0=-1 1=112`` layers; the fp16 file has no Sigmoid (class logits), the int8 ones end
with it. The input size comes from the file name (``nanodet-plus-m_416.param``). Anything else is not guessed.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..contract import INPUT_BLOB, OUTPUT_BLOB
from .coco_names import COCO_CLASSES
from .metadata import ModelMeta

NANODET_PLUS_REG_MAX = 7


def infer_official_meta(path: Path) -> tuple[ModelMeta | None, str]:
    """(the metadata, what was inferred) for an official NanoDet-Plus COCO .param, or (None, why not)."""
    layers = [line.split() for line in path.read_text(errors="replace").splitlines()[2:] if line.strip()]
    blobs_in = {blob for layer in layers if len(layer) > 3 for blob in layer[4:4 + int(layer[2])]}
    produced = {blob for layer in layers if len(layer) > 3
                for blob in layer[4 + int(layer[2]):4 + int(layer[2]) + int(layer[3])]}
    if not any(layer[0] == "Input" and INPUT_BLOB in layer for layer in layers) or OUTPUT_BLOB not in produced:
        return None, f"it has no input blob {INPUT_BLOB!r} or no output blob {OUTPUT_BLOB!r}"
    if OUTPUT_BLOB in blobs_in:
        return None, f"its {OUTPUT_BLOB!r} blob is not the last one"
    widths = {match for layer in layers if layer[0] == "Reshape"
              for match in re.findall(r"(?<!\S)1=(\d+)", " ".join(layer[4:]))}
    expected = len(COCO_CLASSES) + 4 * (NANODET_PLUS_REG_MAX + 1)
    if widths != {str(expected)}:
        return None, f"its output rows are not {expected} wide (80 COCO classes + 4 x 8 distance bins)"
    size = re.search(r"_(\d+)(?:[-_]int8)?$", path.stem)
    if size is None or int(size.group(1)) % 32:
        return None, "its file name does not end with the input size (e.g. nanodet-plus-m_416.param)"
    side = int(size.group(1))
    activation = "sigmoid" if any(layer[0] == "Sigmoid" for layer in layers) else "none"
    meta = ModelMeta(class_names=list(COCO_CLASSES), input_hw=(side, side), class_activation=activation)
    return meta, (f"official NanoDet-Plus COCO model: 80 classes, {side}x{side} (from the file name), class "
                  f"{'probabilities' if activation == 'sigmoid' else 'logits'}, BGR mean/std, strides 8-64")
