"""The config schema: one typed dataclass per section; closed values are ``Literal`` (checked on load).

``model.arch`` names a published variant whose parts (backbone, neck, head, assigner) are the starting point;
part sections given in the YAML override fields of that record.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from ..contract import (
    ARCH_NAMES,
    BGR_MEAN,
    BGR_STD,
    EVAL_IOU_THRESHOLD,
    EVAL_MAX_DETECTIONS,
    EVAL_SCORE_THRESHOLD,
    NANODET_PLUS_STRIDES,
    ArchName,
    DatasetFormat,
)
from ..errors import UserError

SHUFFLENET_V2_WIDTHS = (0.5, 1.0, 1.5, 2.0)
RESNET_DEPTHS = (50, 101, 152)  # bottleneck ResNets (model/backbones/resnet.py)
FreezablePart = Literal["backbone", "neck", "head", "aux"]  # train.freeze: aux = the aux neck + aux head


class ConfigError(UserError, ValueError):
    """A config that cannot be used: unknown key, wrong type, value outside its closed set."""


@dataclass
class BackboneConfig:
    """The feature extractor: ShuffleNetV2 at a width multiplier (0.5, 1.0, 1.5 or 2.0), or ResNet / ResNeXt
    (the server-size GFL detectors)."""
    name: Literal["shufflenetv2", "resnet"] = "shufflenetv2"  # the backbone kind
    width: float = 1.0  # shufflenetv2: channel multiplier, stage channels 48/96/192 (0.5x) ... 244/488/976 (2.0x)
    depth: int = 50  # resnet: 50, 101 or 152
    groups: int = 1  # resnet: 1 (ResNet) or the ResNeXt cardinality (32 for X-101-32x4d)
    width_per_group: int = 64  # resnet: 64 (ResNet) or the ResNeXt group width (4 for X-101-32x4d)
    frozen_stages: int = 1  # resnet: the stem and this many stages get no gradient (1: stem + layer1)
    norm_eval: bool = True  # resnet: BatchNorm statistics stay as loaded while training (eval mode)


@dataclass
class NeckConfig:
    """The feature pyramid: Ghost-PAN (NanoDet-Plus, 4 levels), the convolution-free PAN (NanoDet-m, 3 levels)
    or FPN (the server-size GFL detectors, P3..P7), with ``channels`` per level."""
    name: Literal["ghost_pan", "pan", "fpn"] = "ghost_pan"  # the neck kind
    channels: int = 96  # channels of every pyramid level (96 for 1.0x, 128 for 1.5x, 256 for FPN)
    kernel_size: int = 5  # ghost_pan only: depthwise kernel of the Ghost blocks and the downsampling convs
    extra_levels: int = 2  # fpn only: stride-2 3x3 convs on top of P5 (P6, P7)


@dataclass
class HeadConfig:
    """The deployable head: one depthwise GFL tower per level (NanoDet), or one GFL head shared by all levels with
    GroupNorm cls/reg towers (the server-size detectors); box sides as distributions over reg_max + 1 bins."""
    name: Literal["depthwise_gfl", "shared_gfl"] = "depthwise_gfl"  # the head kind
    reg_max: int = 7  # box distances are distributions over 0..reg_max strides
    stacked_convs: int = 2  # depthwise_gfl: (depthwise + pointwise) blocks per tower; shared_gfl: convs per tower
    kernel_size: int = 5  # depthwise_gfl: depthwise kernel of the towers
    activation: Literal["leaky_relu", "relu"] = "leaky_relu"  # shared_gfl: after each GroupNorm
    gn_groups: int = 32  # shared_gfl: GroupNorm groups
    strides: list[int] = field(default_factory=lambda: list(NANODET_PLUS_STRIDES))  # one per pyramid level
    prior_offset: float = 0.0  # prior point of cell (x, y) is ((x + offset) * s, (y + offset) * s): 0.5 for NanoDet-m
    quality: Literal["none", "dgqp"] = "none"  # dgqp: GFLV2's distribution-guided quality predictor (joint score)
    quality_topk: int = 4  # dgqp: top probabilities per side fed to the predictor (their mean is added)
    quality_channels: int = 64  # dgqp: hidden channels of the predictor


@dataclass
class AssignerConfig:
    """Label assignment: NanoDet-Plus's dynamic soft label assigner (dsla) or ATSS (NanoDet-m, GFL)."""
    name: Literal["dsla", "atss"] = "dsla"  # the assigner kind
    topk: int = 13  # dsla: dynamic k = int(sum of a GT's top-k IoUs); atss: candidates per level (9)
    iou_factor: float = 3.0  # dsla: weight of -log(IoU) in the matching cost
    box_scale: float = 5.0  # atss: side of the virtual square box of a prior, in strides


@dataclass
class ModelConfig:
    """Architecture and input size. ``arch`` picks the published record; part sections override its fields."""
    arch: ArchName = "nanodet-plus-m"  # the published variant (its parts are the defaults of the sections below)
    input_size: list[int] = field(default_factory=lambda: [320, 320])  # [height, width], multiples of 32
    # [short, long]: every image (training, evaluation, the torch runtime) is resized keep-ratio within these
    # limits and padded to a multiple of 32, batches to their largest image (the server-size GFL detectors:
    # [800, 1333]); []: warp / stretch to input_size
    keep_ratio_scale: list[int] = field(default_factory=list)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    assigner: AssignerConfig = field(default_factory=AssignerConfig)
    aux_head: bool = True  # NanoDet-Plus's training-only assign-guidance branch (aux neck + aux head)
    # clamped: QFL / box losses over max(positives, 1) / max(weight sum, 1) (NanoDet-Plus, mmdetection GFL);
    # per_image: positives counted as at least 1 per image, weight sum unclamped (NanoDet-m's GFL head)
    loss_normalisation: Literal["clamped", "per_image"] = "clamped"
    detach_epoch: int = 10  # from this epoch on the aux branch no longer trains the backbone and neck
    # which head's predictions drive label assignment: aux (NanoDet-Plus), main, or auto = aux unless training
    # starts from a checkpoint whose aux branch was never trained (an imported official model)
    assign_guidance: Literal["auto", "aux", "main"] = "auto"


# The parts of each published variant (what ``model.arch`` fills in).
PUBLISHED_PARTS: dict[str, dict[str, Any]] = {
    "nanodet-plus-m": {"backbone": {"width": 1.0}, "neck": {"channels": 96}},
    "nanodet-plus-m-1.5x": {"backbone": {"width": 1.5}, "neck": {"channels": 128}},
    "nanodet-plus-m-0.5x": {"backbone": {"width": 0.5}, "neck": {"channels": 96}},
    "nanodet-m": {"backbone": {"width": 1.0}, "neck": {"name": "pan", "channels": 96},
                  "head": {"kernel_size": 3, "strides": [8, 16, 32], "prior_offset": 0.5},
                  "assigner": {"name": "atss", "topk": 9}, "aux_head": False, "loss_normalisation": "per_image"},
    **{arch: {"backbone": {"name": "resnet", **backbone}, "neck": {"name": "fpn", "channels": 256, "extra_levels": 2},
              "head": {"name": "shared_gfl", "reg_max": 16, "stacked_convs": 4, "activation": "relu",
                       "strides": [8, 16, 32, 64, 128], "prior_offset": 0.0},
              "assigner": {"name": "atss", "topk": 9, "box_scale": 8.0}, "aux_head": False,
              "keep_ratio_scale": [800, 1333], "input_size": [800, 1344]}
       for arch, backbone in (("gfl-r50", {"depth": 50}), ("gfl-r101", {"depth": 101}),
                              ("gfl-x101-32x4d", {"depth": 101, "groups": 32, "width_per_group": 4}))},
}
assert tuple(PUBLISHED_PARTS) == ARCH_NAMES


@dataclass
class DatasetConfig:
    """One dataset: coco (json + image folder), voc (folder of xml or an ImageSets txt) or yolo (txt labels)."""
    format: DatasetFormat = "coco"  # coco, voc or yolo
    ann: str = ""  # coco: json file; voc: folder of xml (or a txt list of ids); yolo: folder of txt labels
    images: str = ""  # folder of images


@dataclass
class DataConfig:
    """Train/val datasets, class names (yolo needs them; coco/voc read them from the labels), normalisation."""
    train: DatasetConfig = field(default_factory=DatasetConfig)  # what the model learns from
    val: DatasetConfig = field(default_factory=DatasetConfig)  # what best.pt is chosen on (ann "" : no evaluation)
    class_names: Optional[list[str]] = None  # the dataset's classes: label order; yolo needs it (or classes.txt)
    # train on some of the dataset's classes: only their boxes are kept, labelled in this order (names from the
    # dataset's own list: COCO categories, VOC names, YOLO names); images left without boxes are background
    classes: Optional[list[str]] = None
    mean: list[float] = field(default_factory=lambda: list(BGR_MEAN))  # per-channel mean, BGR order
    std: list[float] = field(default_factory=lambda: list(BGR_STD))  # per-channel std, BGR order
    workers: int = 4  # DataLoader worker processes (0: load in the training process)


@dataclass
class AugmentConfig:
    """Training augmentation: one random warp per image, then colour jitter.

    The defaults are the NanoDet-Plus recipe (stretch-resize to the input); legacy NanoDet-m sets ``keep_ratio``
    and ``stretch: [1, 1]``.
    """
    scale: list[float] = field(default_factory=lambda: [0.6, 1.4])  # uniform range of the overall zoom
    stretch: list[float] = field(default_factory=lambda: [0.8, 1.2])  # extra zoom per axis (aspect change)
    flip: float = 0.5  # probability of a horizontal flip
    translate: float = 0.2  # shift of the centre, fraction of the input size (keep_ratio: of the fitted image)
    brightness: float = 0.2  # +- added to pixels on the 0..1 scale (with probability 0.5)
    contrast: list[float] = field(default_factory=lambda: [0.6, 1.4])  # multiplier range (probability 0.5)
    saturation: list[float] = field(default_factory=lambda: [0.5, 1.2])  # HSV saturation multiplier (p 0.5)
    keep_ratio: bool = False  # fit the image inside the input (one scale, centred, black borders), no stretch


@dataclass
class TrainConfig:
    """Optimiser and schedule. Defaults: the NanoDet-Plus recipe (AdamW, linear warmup over steps, cosine to
    ``min_lr`` over the epochs, grad clipping, EMA). Legacy NanoDet-m: ``optimizer: sgd``, ``schedule: multistep``
    with ``milestones``, ``ema_decay: 0``, ``grad_clip: 0``.
    """
    epochs: int = 300  # length of the run (and of the cosine schedule)
    batch_size: int = 96  # global batch (split across DDP ranks)
    optimizer: Literal["adamw", "sgd"] = "adamw"  # adamw (decoupled weight decay) or sgd (momentum, L2 decay)
    lr: float = 1e-3  # learning rate after warmup, at epoch 0
    momentum: float = 0.9  # SGD momentum (sgd only)
    weight_decay: float = 0.05  # AdamW: decoupled decay; SGD: L2 term added to the gradient
    warmup_steps: int = 500  # linear warmup length in optimiser steps
    warmup_epochs: float = 0.0  # > 0: the warmup lasts this many epochs (their steps replace warmup_steps)
    warmup_ratio: float = 1e-4  # warmup starts at lr * warmup_ratio (and scales the scheduled lr up to it)
    schedule: Literal["cosine", "multistep"] = "cosine"  # lr over epochs: cosine to min_lr, or steps by gamma
    min_lr: float = 5e-5  # where the cosine ends (cosine only)
    milestones: list[int] = field(default_factory=list)  # multistep: epochs at which lr is multiplied by gamma
    gamma: float = 0.1  # multistep: the factor applied at each milestone
    grad_clip: float = 35.0  # max global gradient norm (0: no clipping)
    ema_decay: float = 0.9998  # weight EMA (NanoDet-Plus ramp) deployed and evaluated; 0: the model itself
    ema_ramp: float = 2000.0  # steps over which the EMA's weight of a new step falls from 1 to 1 - ema_decay
    val_interval: int = 10  # epochs between evaluations (0: never)
    amp: bool = True  # CUDA: float16 autocast with loss scaling (the CPU's mixed precision is cpu_bf16)
    # CPU: bfloat16 autocast of the forward (fp32 weights, optimiser and losses). auto: when the CPU has native
    # bf16 (avx512_bf16 / amx_bf16 flags); on: always (emulated where not native: slow); off: float32
    cpu_bf16: Literal["auto", "on", "off"] = "auto"
    seed: int = 0  # shuffling, augmentation and initialisation
    max_bad_steps: int = 20  # consecutive non-finite losses before the run stops
    pretrained: Optional[str] = None  # checkpoint to start from (fine-tuning; evaluated first, as epoch 0)
    backbone_weights: Optional[str] = None  # resnet: torchvision-format ImageNet .pth for the backbone (no pretrained)
    freeze: list[FreezablePart] = field(default_factory=list)  # parts not trained (their BatchNorm stays in eval)


@dataclass
class EvalConfig:
    """COCO evaluation settings (the contract's defaults: score > 0.05, class-aware NMS 0.6, top 100)."""
    score_threshold: float = EVAL_SCORE_THRESHOLD  # candidates (box, class) above this score
    iou_threshold: float = EVAL_IOU_THRESHOLD  # class-aware NMS
    max_detections: int = EVAL_MAX_DETECTIONS  # kept per image
    pre_nms_top_k: int = 0  # per pyramid level, the best (prior, class) pairs kept before NMS (0: all; GFL: 1000)


@dataclass
class Config:
    """A whole run: model, data, augmentation, training and evaluation settings, and the output folder."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = "runs/default"  # checkpoints, metrics.csv and TensorBoard logs (``--out`` overrides)

    @property
    def input_hw(self) -> tuple[int, int]:
        return int(self.model.input_size[0]), int(self.model.input_size[1])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
