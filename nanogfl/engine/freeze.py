"""``train.freeze``: parts of the detector that do not train. Their parameters get no gradient and their
BatchNorm layers keep the running statistics they came with (eval mode), so a frozen part computes exactly what
it did before training."""
from __future__ import annotations

import typing

from torch import nn

from ..config.schema import FreezablePart
from ..errors import UserError

# train.freeze name -> the detector's attributes it covers
PART_MODULES: dict[str, tuple[str, ...]] = {"backbone": ("backbone",), "neck": ("neck",), "head": ("head",),
                                            "aux": ("aux_neck", "aux_head")}
assert tuple(PART_MODULES) == typing.get_args(FreezablePart)


def frozen_modules(model: nn.Module, parts: list[str]) -> list[nn.Module]:
    """The submodules of ``model`` that ``parts`` name (absent ones, e.g. aux of NanoDet-m, are skipped)."""
    modules = [getattr(model, attr, None) for part in parts for attr in PART_MODULES[part]]
    return [m for m in modules if m is not None]


def freeze(model: nn.Module, parts: list[str]) -> None:
    """Stop the parameters of ``parts`` from training; at least one parameter must remain trainable."""
    for module in frozen_modules(model, parts):
        module.requires_grad_(False)
    if parts and not any(p.requires_grad for p in model.parameters()):
        raise UserError(f"train.freeze {parts} leaves nothing to train")


def train_mode(model: nn.Module, parts: list[str]) -> None:
    """``model.train()``, except the frozen parts, which stay in eval mode (BatchNorm statistics unchanged)."""
    model.train()
    for module in frozen_modules(model, parts):
        module.eval()
