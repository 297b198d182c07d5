"""Start training from another checkpoint; a different class count re-initialises only the head outputs."""
from __future__ import annotations

import warnings

from torch import nn

from ..checkpoint import AUX_PREFIXES, read_checkpoint
from ..errors import UserError

PREDICTOR_PREFIXES = ("head.predictors.", "aux_head.cls_out.", "aux_head.reg_out.")


def load_pretrained(model: nn.Module, path: str, class_names: list[str]) -> bool:
    """Load what fits; returns whether the checkpoint's aux branch was trained (False for imported models)."""
    checkpoint = read_checkpoint(path)
    state = checkpoint.model
    own = model.state_dict()
    source_classes = checkpoint.class_names
    keep = {}
    mismatched = []
    for name, value in state.items():
        if name not in own:
            continue
        if own[name].shape != value.shape:
            mismatched.append(name)
            continue
        keep[name] = value
    bad = [n for n in mismatched if not n.startswith(PREDICTOR_PREFIXES)]
    if bad:
        raise UserError(f"{path}: weights do not fit this architecture ({bad[0]}: checkpoint "
                        f"{tuple(state[bad[0]].shape)} vs model {tuple(own[bad[0]].shape)}); check model.arch")
    if mismatched or source_classes != class_names:
        warnings.warn(f"{path}: trained for {len(source_classes)} classes, this dataset has {len(class_names)}: "
                      f"the class outputs are re-initialised, the rest is loaded")
        keep = {k: v for k, v in keep.items() if not k.startswith(PREDICTOR_PREFIXES)}
    missing = [k for k in own if k not in keep and not k.startswith(PREDICTOR_PREFIXES)
               and (checkpoint.aux_trained or not k.startswith(AUX_PREFIXES))]  # best.pt has no aux branch
    if missing:
        warnings.warn(f"{path}: {len(missing)} tensors not in the checkpoint keep their initial values "
                      f"(e.g. {missing[0]})")
    model.load_state_dict(keep, strict=False)
    return checkpoint.aux_trained
