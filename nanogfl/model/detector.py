"""The NanoDet-Plus detector: backbone -> GhostPAN -> per-level GFL head, plus the training-only
assign-guidance module (aux neck + aux head). One named builder per published variant."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .backbone import ShuffleNetV2
from .head import AuxHead, GFLHead
from .neck import GhostPAN

STRIDES = (8, 16, 32, 64)


@dataclass(frozen=True)
class Architecture:
    """What distinguishes one published variant from another."""
    name: str
    backbone_width: float
    neck_channels: int
    reference: str  # where the numbers we compare against come from


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (
        Architecture("nanodet-plus-m", 1.0, 96,
                     "NanoDet-Plus-m: 1.17M params; COCO val2017 mAP 27.0 @320, 30.4 @416"),
        Architecture("nanodet-plus-m-1.5x", 1.5, 128,
                     "NanoDet-Plus-m-1.5x: 2.44M params; COCO val2017 mAP 29.9 @320, 34.1 @416"),
        Architecture("nanodet-plus-m-0.5x", 0.5, 96, "ShuffleNetV2-0.5x backbone, no published weights"),
    )
}


class NanoDetPlus(nn.Module):
    def __init__(self, backbone: ShuffleNetV2, neck: GhostPAN, head: GFLHead,
                 aux_neck: GhostPAN | None = None, aux_head: AuxHead | None = None,
                 strides: tuple[int, ...] = STRIDES, detach_epoch: int = 10) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.aux_neck = aux_neck
        self.aux_head = aux_head
        self.strides = tuple(strides)
        self.detach_epoch = detach_epoch

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def reg_max(self) -> int:
        return self.head.reg_max

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw main-head predictions [B, N, num_classes + 4 * (reg_max + 1)] (class logits, box bin logits)."""
        return self.head(self.neck(self.backbone(images)))

    def forward_train(self, images: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Main and aux predictions. From ``detach_epoch`` on, the aux branch no longer trains the shared trunk."""
        if self.aux_neck is None or self.aux_head is None:
            raise RuntimeError("this model has no aux branch (it was built for deployment)")
        features = self.backbone(images)
        neck_out = self.neck(features)
        detach = epoch >= self.detach_epoch
        aux_out = self.aux_neck([f.detach() for f in features] if detach else features)
        dual = [torch.cat((f.detach() if detach else f, a), dim=1) for f, a in zip(neck_out, aux_out)]
        return self.head(neck_out), self.aux_head(dual)

    def drop_aux(self) -> "NanoDetPlus":
        self.aux_neck = None
        self.aux_head = None
        return self


class DeployModel(nn.Module):
    """The exported graph: one tensor [B, N, C + 4 * (reg_max + 1)] with sigmoid on the class columns."""

    def __init__(self, detector: NanoDetPlus) -> None:
        super().__init__()
        self.detector = detector
        self.num_classes = detector.num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        preds = self.detector(images)
        return torch.cat((preds[..., :self.num_classes].sigmoid(), preds[..., self.num_classes:]), dim=-1)


def build_nanodet_plus(arch: str | Architecture, num_classes: int = 80, reg_max: int = 7,
                       detach_epoch: int = 10, with_aux: bool = True) -> NanoDetPlus:
    spec = arch if isinstance(arch, Architecture) else get_architecture(arch)
    backbone = ShuffleNetV2(spec.backbone_width)
    neck = GhostPAN(backbone.out_channels, spec.neck_channels, kernel_size=5)
    head = GFLHead(num_classes, spec.neck_channels, len(STRIDES), reg_max, stacked_convs=2, kernel_size=5)
    aux_neck = copy.deepcopy(neck) if with_aux else None
    aux_head = AuxHead(num_classes, 2 * spec.neck_channels, len(STRIDES), reg_max) if with_aux else None
    return NanoDetPlus(backbone, neck, head, aux_neck, aux_head, STRIDES, detach_epoch)


def nanodet_plus_m(num_classes: int = 80, **kwargs) -> NanoDetPlus:
    """NanoDet-Plus-m: ShuffleNetV2 1.0x, GhostPAN 96 channels."""
    return build_nanodet_plus("nanodet-plus-m", num_classes, **kwargs)


def nanodet_plus_m_1_5x(num_classes: int = 80, **kwargs) -> NanoDetPlus:
    """NanoDet-Plus-m-1.5x: ShuffleNetV2 1.5x, GhostPAN 128 channels."""
    return build_nanodet_plus("nanodet-plus-m-1.5x", num_classes, **kwargs)


def nanodet_plus_m_0_5x(num_classes: int = 80, **kwargs) -> NanoDetPlus:
    """ShuffleNetV2 0.5x with a 96-channel GhostPAN: the smallest variant (no published weights)."""
    return build_nanodet_plus("nanodet-plus-m-0.5x", num_classes, **kwargs)


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}") from None
