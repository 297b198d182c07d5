"""Start training from another checkpoint, whatever its class list.

The class outputs are rows of the head's last convolutions (NanoDet's per-level predictors: class rows, then box
rows; a shared GFL head's ``cls_out``, main or aux: class rows only). When this run's classes differ from the
checkpoint's, the box rows are kept, every class the checkpoint knows by name keeps its row (moved to its new
label index), and only the classes it does not know start from the fresh initialisation (the prior bias). The
rest loads as it is.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch
from torch import nn

from ..checkpoint import AUX_PREFIXES, read_checkpoint
from ..errors import UserError

# tensors whose first rows are one per class
CLASS_ROW_PREFIXES = ("head.predictors.", "head.cls_out.", "aux_head.cls_out.")


def class_sources(source_classes: list[str], class_names: list[str]) -> list[Optional[int]]:
    """For each class of this run, its row in the checkpoint (found by name), or None for a new class."""
    row_of = {name: row for row, name in enumerate(source_classes)}
    return [row_of.get(name) for name in class_names]


def transfer_class_rows(value: torch.Tensor, fresh: torch.Tensor, sources: list[Optional[int]],
                        num_source_classes: int) -> Optional[torch.Tensor]:
    """``fresh`` (this run's initial tensor, one row per class then the box rows) with the checkpoint's box rows
    and the rows of the classes it knows; None when the two do not fit (another reg_max or width)."""
    box_rows = value.shape[0] - num_source_classes
    if value.shape[1:] != fresh.shape[1:] or fresh.shape[0] - len(sources) != box_rows or box_rows < 0:
        return None
    out = fresh.detach().clone()
    out[len(sources):] = value[num_source_classes:]
    for row, source_row in enumerate(sources):
        if source_row is not None:
            out[row] = value[source_row]
    return out


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def class_transfer_note(path: str, source_classes: list[str], class_names: list[str]) -> str:
    """The warning for a class-list change: which classes keep their outputs and which start fresh."""
    sources = class_sources(source_classes, class_names)
    kept = [n for n, s in zip(class_names, sources) if s is not None]
    new = [n for n, s in zip(class_names, sources) if s is None]
    dropped = len(source_classes) - len(kept)
    return (f"{path}: {len(source_classes)} classes in the checkpoint, {len(class_names)} in this run; box outputs "
            f"kept; class outputs kept by name for {len(kept)} ({_names(kept)}); new, freshly initialised: "
            f"{len(new)} ({_names(new)})" + (f"; {dropped} checkpoint classes not used" if dropped else ""))


def load_pretrained(model: nn.Module, path: str, class_names: list[str]) -> bool:
    """Load what fits; returns whether the checkpoint's aux branch was trained (False for imported models)."""
    checkpoint = read_checkpoint(path)
    state = checkpoint.model
    own = model.state_dict()
    source_classes = checkpoint.class_names
    same_classes = source_classes == class_names
    sources = class_sources(source_classes, class_names)
    keep: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name not in own:
            continue
        fitted: Optional[torch.Tensor] = value
        if name.startswith(CLASS_ROW_PREFIXES) and not same_classes:
            fitted = transfer_class_rows(value, own[name], sources, len(source_classes))
        elif own[name].shape != value.shape:
            fitted = None
        if fitted is None:
            raise UserError(f"{path}: weights do not fit this architecture ({name}: checkpoint "
                            f"{tuple(value.shape)} vs model {tuple(own[name].shape)}); check model.arch and "
                            f"model.head")
        keep[name] = fitted
    if not same_classes:
        warnings.warn(class_transfer_note(path, source_classes, class_names))
    missing = [k for k in own if k not in keep
               and (checkpoint.aux_trained or not k.startswith(AUX_PREFIXES))]  # best.pt has no aux branch
    if missing:
        warnings.warn(f"{path}: {len(missing)} tensors not in the checkpoint keep their initial values "
                      f"(e.g. {missing[0]})")
    model.load_state_dict(keep, strict=False)
    return checkpoint.aux_trained
