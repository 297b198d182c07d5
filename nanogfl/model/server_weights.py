"""Weights users of the server-size GFL detectors already have: mmdetection 3.x GFL checkpoints (GFocalV2's
``reg_conf`` for GFLV2) and torchvision-format ImageNet ResNet / ResNeXt backbones.

Both name the backbone like ``model/backbones/resnet.py`` does; their first convolution takes RGB, ours BGR,
so its input channels are reversed on the way in (and out). Every key must map and every key of the target
must be filled: anything left over on either side is an error naming it.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError

FIRST_CONV = "backbone.conv1.weight"
# (mmdetection pattern, nanogfl replacement), applied to keys after the backbone prefix is handled
MMDET_RULES: tuple[tuple[str, str], ...] = (
    (r"^neck\.(lateral_convs|fpn_convs)\.(\d+)\.conv\.", r"neck.\1.\2."),
    (r"^bbox_head\.(cls_convs|reg_convs)\.(\d+)\.conv\.", r"head.\1.\2.0."),
    (r"^bbox_head\.(cls_convs|reg_convs)\.(\d+)\.gn\.", r"head.\1.\2.1."),
    (r"^bbox_head\.gfl_cls\.", "head.cls_out."),
    (r"^bbox_head\.gfl_reg\.", "head.reg_out."),
    (r"^bbox_head\.scales\.(\d+)\.scale$", r"head.scales.\1.scale"),
    (r"^bbox_head\.reg_conf\.0\.", "head.quality.conv1."),  # GFocalV2's DGQP: conv, ReLU, conv, sigmoid
    (r"^bbox_head\.reg_conf\.2\.", "head.quality.conv2."),
    (r"^backbone\.", "backbone."),
)
MMDET_IGNORED = re.compile(r"^bbox_head\.integral\.project$")  # a constant buffer (0..reg_max), not a weight
TORCHVISION_IGNORED = re.compile(r"^fc\.")  # the ImageNet classifier
OPTIONAL_SUFFIX = "num_batches_tracked"  # BatchNorm's step counter: older torchvision files lack it


class WeightsError(UserError):
    """A weights file that does not fit the model: unmapped, missing or misshapen tensors."""


class _Inert:
    """Stands in for any class a pickle names outside the tensor allowlist: built and filled, it does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _InertUnpickler(pickle.Unpickler):
    ALLOWED = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
               ("torch._utils", "_rebuild_parameter"), ("torch", "Size"), ("torch", "device")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        return _Inert


class _InertPickleModule:
    Unpickler = _InertUnpickler
    load = staticmethod(pickle.load)


def read_weights_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, meta) of a ``.pth``: a bare state dict or a checkpoint holding one under ``state_dict`` /
    ``model``. Opened without running code from it: tensors and plain containers only; any other object the file
    names (mmengine's message hub, optimiser records) loads as an inert placeholder."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        payload = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_InertPickleModule)
    except (RuntimeError, EOFError, OSError) as e:
        raise WeightsError(f"{path}: not a PyTorch weights file ({str(e).splitlines()[0]})") from None
    if not isinstance(payload, dict):
        raise WeightsError(f"{path}: expected a state dict or a checkpoint dict, got {type(payload).__name__}")
    state = payload.get("state_dict", payload.get("model", payload))
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    if not tensors:
        raise WeightsError(f"{path}: no tensors found (expected a state dict, or one under 'state_dict')")
    meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
    return tensors, meta


def mmdet_class_names(meta: dict[str, Any]) -> list[str] | None:
    """The class names an mmdetection 3.x checkpoint records (``meta.dataset_meta.classes``), if any."""
    dataset_meta = meta.get("dataset_meta")
    classes = dataset_meta.get("classes") if isinstance(dataset_meta, dict) else None
    return [str(c) for c in classes] if isinstance(classes, (list, tuple)) and classes else None


def _flip_first_conv(state: dict[str, torch.Tensor], key: str) -> None:
    if key in state:
        state[key] = state[key].flip(1)  # RGB <-> BGR input channels


def from_mmdet(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """An mmdetection GFL state dict in nanogfl's names (BGR first conv)."""
    mapped, unmapped = {}, []
    for key, value in state.items():
        if MMDET_IGNORED.match(key):
            continue
        for pattern, replacement in MMDET_RULES:
            new_key, hits = re.subn(pattern, replacement, key)
            if hits:
                mapped[new_key] = value
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise WeightsError(f"{source}: {len(unmapped)} keys are not part of a GFL detector: "
                           f"{', '.join(unmapped[:5])}{' ...' if len(unmapped) > 5 else ''}")
    _flip_first_conv(mapped, FIRST_CONV)
    return mapped


def to_mmdet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of ``from_mmdet`` (RGB first conv): what mmdetection would hold for this model."""
    inverse = (
        (r"^neck\.(lateral_convs|fpn_convs)\.(\d+)\.", r"neck.\1.\2.conv."),
        (r"^head\.(cls_convs|reg_convs)\.(\d+)\.0\.", r"bbox_head.\1.\2.conv."),
        (r"^head\.(cls_convs|reg_convs)\.(\d+)\.1\.", r"bbox_head.\1.\2.gn."),
        (r"^head\.cls_out\.", "bbox_head.gfl_cls."), (r"^head\.reg_out\.", "bbox_head.gfl_reg."),
        (r"^head\.scales\.", "bbox_head.scales."), (r"^head\.quality\.conv1\.", "bbox_head.reg_conf.0."),
        (r"^head\.quality\.conv2\.", "bbox_head.reg_conf.2."),
    )
    out = {}
    for key, value in state.items():
        for pattern, replacement in inverse:
            key, hits = re.subn(pattern, replacement, key)
            if hits:
                break
        out[key] = value
    _flip_first_conv(out, FIRST_CONV)
    return out


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str, prefix: str = "") -> None:
    """Copy ``state`` (keys relative to ``prefix``) into ``model``; every tensor of the target must be given with
    its shape, and nothing else."""
    target = {k[len(prefix):]: v for k, v in model.state_dict().items() if k.startswith(prefix)}
    missing = sorted(k for k in set(target) - set(state) if not k.endswith(OPTIONAL_SUFFIX))
    extra = sorted(set(state) - set(target))
    wrong = [k for k in target if k in state and state[k].shape != target[k].shape]
    if missing or extra or wrong:
        problems = [f"{len(missing)} missing ({', '.join(missing[:3])})" if missing else "",
                    f"{len(extra)} not in the model ({', '.join(extra[:3])})" if extra else "",
                    f"{len(wrong)} of another shape ({', '.join(wrong[:3])})" if wrong else ""]
        raise WeightsError(f"{source} does not fit this model: {'; '.join(p for p in problems if p)}")
    with torch.no_grad():
        for key, value in state.items():
            target[key].copy_(value)
        for key in set(target) - set(state):
            target[key].zero_()


def load_torchvision_backbone(backbone: nn.Module, path: str | Path) -> None:
    """Initialise a ``ResNet`` from torchvision-format ImageNet weights (``conv1``, ``layer1.0.conv1``, ...,
    ``fc``; the classifier is dropped)."""
    state, _ = read_weights_file(path)
    state = {k: v for k, v in state.items() if not TORCHVISION_IGNORED.match(k)}
    _flip_first_conv(state, "conv1.weight")
    load_into(backbone, state, str(path))
