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


class ConfigError(UserError, ValueError):
    """A config that cannot be used: unknown key, wrong type, value outside its closed set."""


@dataclass
class BackboneConfig:
    """The feature extractor: ShuffleNetV2 at a width multiplier (0.5, 1.0, 1.5 or 2.0)."""
    name: Literal["shufflenetv2"] = "shufflenetv2"
    width: float = 1.0


@dataclass
class NeckConfig:
    """The feature pyramid: Ghost-PAN with ``channels`` per level and ``kernel_size`` depthwise convs."""
    name: Literal["ghost_pan"] = "ghost_pan"
    channels: int = 96
    kernel_size: int = 5


@dataclass
class HeadConfig:
    """The deployable head: one depthwise GFL tower per level; box sides as distributions over reg_max + 1 bins."""
    name: Literal["depthwise_gfl"] = "depthwise_gfl"
    reg_max: int = 7
    stacked_convs: int = 2
    kernel_size: int = 5
    strides: list[int] = field(default_factory=lambda: list(NANODET_PLUS_STRIDES))


@dataclass
class AssignerConfig:
    """Label assignment: NanoDet-Plus's dynamic soft label assigner (top-k IoUs for dynamic k, IoU cost factor)."""
    name: Literal["dsla"] = "dsla"
    topk: int = 13
    iou_factor: float = 3.0


@dataclass
class ModelConfig:
    """Architecture and input size. ``arch`` picks the published record; part sections override its fields."""
    arch: ArchName = "nanodet-plus-m"
    input_size: list[int] = field(default_factory=lambda: [320, 320])  # [height, width], multiples of 32
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    assigner: AssignerConfig = field(default_factory=AssignerConfig)
    detach_epoch: int = 10  # from this epoch on the aux branch no longer trains the backbone and neck
    # which head's predictions drive label assignment: aux (NanoDet-Plus), main, or auto = aux unless training
    # starts from a checkpoint whose aux branch was never trained (an imported official model)
    assign_guidance: Literal["auto", "aux", "main"] = "auto"


# The parts of each published variant (what ``model.arch`` fills in).
PUBLISHED_PARTS: dict[str, dict[str, Any]] = {
    "nanodet-plus-m": {"backbone": {"width": 1.0}, "neck": {"channels": 96}},
    "nanodet-plus-m-1.5x": {"backbone": {"width": 1.5}, "neck": {"channels": 128}},
    "nanodet-plus-m-0.5x": {"backbone": {"width": 0.5}, "neck": {"channels": 96}},
}
assert tuple(PUBLISHED_PARTS) == ARCH_NAMES


@dataclass
class DatasetConfig:
    """One dataset: coco (json + image folder), voc (folder of xml or an ImageSets txt) or yolo (txt labels)."""
    format: DatasetFormat = "coco"
    ann: str = ""  # coco: json file; voc: folder of xml (or a txt list of ids); yolo: folder of txt labels
    images: str = ""  # folder of images


@dataclass
class DataConfig:
    """Train/val datasets, class names (yolo needs them; coco/voc read them from the labels), normalisation."""
    train: DatasetConfig = field(default_factory=DatasetConfig)
    val: DatasetConfig = field(default_factory=DatasetConfig)
    class_names: Optional[list[str]] = None
    mean: list[float] = field(default_factory=lambda: list(BGR_MEAN))  # BGR
    std: list[float] = field(default_factory=lambda: list(BGR_STD))
    workers: int = 4


@dataclass
class AugmentConfig:
    """Training augmentation (NanoDet-Plus recipe): one random warp per image, then colour jitter."""
    scale: list[float] = field(default_factory=lambda: [0.6, 1.4])
    stretch: list[float] = field(default_factory=lambda: [0.8, 1.2])
    flip: float = 0.5
    translate: float = 0.2
    brightness: float = 0.2
    contrast: list[float] = field(default_factory=lambda: [0.6, 1.4])
    saturation: list[float] = field(default_factory=lambda: [0.5, 1.2])


@dataclass
class TrainConfig:
    """Optimiser and schedule: AdamW, linear warmup over steps, cosine to ``min_lr`` over the epochs, EMA."""
    epochs: int = 300
    batch_size: int = 96  # global batch (split across DDP ranks)
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 500
    warmup_ratio: float = 1e-4
    min_lr: float = 5e-5
    grad_clip: float = 35.0
    ema_decay: float = 0.9998
    val_interval: int = 10  # epochs between evaluations (0: never)
    amp: bool = True  # used on CUDA only
    seed: int = 0
    max_bad_steps: int = 20  # consecutive non-finite losses before the run stops
    pretrained: Optional[str] = None  # checkpoint to start from (fine-tuning)


@dataclass
class EvalConfig:
    """COCO evaluation settings (the contract's defaults: score > 0.05, class-aware NMS 0.6, top 100)."""
    score_threshold: float = EVAL_SCORE_THRESHOLD
    iou_threshold: float = EVAL_IOU_THRESHOLD
    max_detections: int = EVAL_MAX_DETECTIONS


@dataclass
class Config:
    """A whole run: model, data, augmentation, training and evaluation settings, and the output folder."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = "runs/default"

    @property
    def input_hw(self) -> tuple[int, int]:
        return int(self.model.input_size[0]), int(self.model.input_size[1])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
