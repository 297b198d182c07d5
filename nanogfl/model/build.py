"""Config parts -> modules. Each part section of ``ModelConfig`` names its kind; one small builder per part."""
from __future__ import annotations

import copy

from ..config import AssignerConfig, BackboneConfig, HeadConfig, ModelConfig, NeckConfig
from .assigners import ATSSAssigner, DynamicSoftLabelAssigner
from .backbones import ResNet, ShuffleNetV2
from .criterion import GFLCriterion
from .detector import GFLDetector
from .heads import DepthwiseGFLHead, SharedGFLHead
from .heads.quality import DistributionQuality
from .necks import FPN, PAN, GhostPAN


def build_backbone(cfg: BackboneConfig) -> ShuffleNetV2 | ResNet:
    if cfg.name == "resnet":
        return ResNet(cfg.depth, cfg.groups, cfg.width_per_group, cfg.frozen_stages, cfg.norm_eval)
    return ShuffleNetV2(cfg.width)


def build_neck(cfg: NeckConfig, in_channels: tuple[int, ...]) -> GhostPAN | PAN | FPN:
    if cfg.name == "pan":
        return PAN(in_channels, cfg.channels)
    if cfg.name == "fpn":
        return FPN(in_channels, cfg.channels, cfg.extra_levels)
    return GhostPAN(in_channels, cfg.channels, cfg.kernel_size)


def build_quality(cfg: HeadConfig) -> DistributionQuality | None:
    if cfg.quality == "dgqp":
        return DistributionQuality(cfg.reg_max, cfg.quality_topk, cfg.quality_channels)
    return None


def build_head(cfg: HeadConfig, num_classes: int, in_channels: int) -> DepthwiseGFLHead | SharedGFLHead:
    if cfg.name == "shared_gfl":
        return SharedGFLHead(num_classes, in_channels, len(cfg.strides), cfg.reg_max, cfg.stacked_convs,
                             cfg.gn_groups, cfg.activation, build_quality(cfg))
    return DepthwiseGFLHead(num_classes, in_channels, len(cfg.strides), cfg.reg_max, cfg.stacked_convs,
                            cfg.kernel_size, build_quality(cfg))


def build_assigner(cfg: AssignerConfig) -> DynamicSoftLabelAssigner | ATSSAssigner:
    if cfg.name == "atss":
        return ATSSAssigner(cfg.topk, cfg.box_scale)
    return DynamicSoftLabelAssigner(cfg.topk, cfg.iou_factor)


def build_detector(cfg: ModelConfig, num_classes: int, with_aux: bool = True) -> GFLDetector:
    """The detector ``cfg`` describes; ``with_aux`` adds NanoDet-Plus's aux neck and aux head (training only)
    when the architecture has them (``cfg.aux_head``).

    >>> cfg = load_config("configs/nanodet-plus-m_320.yml")
    >>> model = build_detector(cfg.model, num_classes=80)
    >>> model.eval()(torch.zeros(1, 3, *cfg.input_hw)).shape  # [1, 2125, 112]
    """
    backbone = build_backbone(cfg.backbone)
    neck = build_neck(cfg.neck, backbone.out_channels)
    head = build_head(cfg.head, num_classes, cfg.neck.channels)
    if neck.num_levels != len(cfg.head.strides):
        raise ValueError(f"the neck gives {neck.num_levels} levels but model.head.strides has "
                         f"{len(cfg.head.strides)}: {cfg.head.strides}")
    aux_neck = aux_head = None
    if with_aux and cfg.aux_head:
        aux_neck = copy.deepcopy(neck)
        aux_head = SharedGFLHead(num_classes, 2 * cfg.neck.channels, len(cfg.head.strides), cfg.head.reg_max)
    return GFLDetector(backbone, neck, head, tuple(cfg.head.strides), aux_neck, aux_head, cfg.detach_epoch)


def build_criterion(cfg: ModelConfig, num_classes: int) -> GFLCriterion:
    return GFLCriterion(build_assigner(cfg.assigner), num_classes, cfg.head.reg_max, tuple(cfg.head.strides),
                        prior_offset=cfg.head.prior_offset, normalisation=cfg.loss_normalisation)
