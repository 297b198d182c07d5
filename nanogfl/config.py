"""The typed config: dataclasses loaded from YAML, with dotted overrides and one-line errors.

Every field is typed; closed values are ``Literal`` and checked when the config loads. ``model.arch`` names a
published variant whose parts (backbone, neck, head, assigner) are the starting point; part sections given in
the YAML override fields of that record.
"""
from __future__ import annotations

import copy
import dataclasses
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from .contract import (
    ARCH_NAMES,
    BGR_MEAN,
    BGR_STD,
    EVAL_IOU_THRESHOLD,
    EVAL_MAX_DETECTIONS,
    EVAL_SCORE_THRESHOLD,
    NANODET_PLUS_STRIDES,
    ArchName,
    DatasetFormat,
    check_input_size,
)
from .errors import UserError

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


# Keys that older versions wrote, and where their value lives now (None: dropped).
RETIRED_KEYS: dict[str, Optional[str]] = {"model.reg_max": "model.head.reg_max"}


def _valid_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        return _coerce(value, inner, where)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from None
        if hint is int and isinstance(value, float) and value != number:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _from_dict(cls: type, data: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in hints]
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key {unknown[0]!r}; valid keys: "
                          f"{', '.join(_valid_keys(cls))}")
    values = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**values)


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _migrate_retired_keys(data: dict, source: str) -> dict:
    """Move keys an older version wrote to where they live now (or drop them), with a note."""
    data = copy.deepcopy(data)
    for old, new in RETIRED_KEYS.items():
        *parents, leaf = old.split(".")
        node = data
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        if new is None:
            warnings.warn(f"{source}: config key {old} was retired; its value {value!r} is ignored")
            continue
        *new_parents, new_leaf = new.split(".")
        target = data
        for key in new_parents:
            target = target.setdefault(key, {})
        target.setdefault(new_leaf, value)
        warnings.warn(f"{source}: config key {old} is now {new} (read as such)")
    return data


def config_from_dict(data: dict, source: str = "config", migrate: bool = False) -> Config:
    """A validated Config from a plain dict. ``migrate`` accepts keys that older versions wrote (checkpoints)."""
    data = dict(data or {})
    if migrate:
        data = _migrate_retired_keys(data, source)
    model = data.get("model", {})
    if not isinstance(model, dict):
        raise ConfigError(f"model: expected a mapping, got {model!r}")
    arch = _coerce(model.get("arch", ModelConfig.arch), typing.get_type_hints(ModelConfig)["arch"], "model.arch")
    data["model"] = _deep_merge(PUBLISHED_PARTS[arch], model)
    cfg = _from_dict(Config, data, "")
    validate(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply ``key.path=value`` overrides; every problem is a one-line ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        for item in overrides or []:
            apply_override(data, item)
        return config_from_dict(data, str(path))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def apply_override(data: dict, item: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to a nested dict, rejecting unknown keys."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    dotted, raw = item.split("=", 1)
    keys = dotted.strip().split(".")
    cls: Any = Config
    node = data
    for i, key in enumerate(keys):
        hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
        if key not in hints:
            prefix = ".".join(keys[:i]) or "top level"
            valid = ", ".join(_valid_keys(cls)) if dataclasses.is_dataclass(cls) else "(none)"
            raise ConfigError(f"override {dotted!r}: unknown key {key!r} in {prefix}; valid keys: {valid}")
        cls = hints[key]
        if i == len(keys) - 1:
            node[key] = yaml.safe_load(raw)
        else:
            node = node.setdefault(key, {})


def validate(cfg: Config) -> None:
    """Checks across fields that types alone cannot express."""
    try:
        check_input_size(cfg.model.input_size, "model.input_size")
    except UserError as e:
        raise ConfigError(str(e)) from None
    if cfg.model.backbone.width not in SHUFFLENET_V2_WIDTHS:
        raise ConfigError(f"model.backbone.width: {cfg.model.backbone.width} is not one of "
                          f"{', '.join(map(str, SHUFFLENET_V2_WIDTHS))}")
    if cfg.model.head.reg_max < 1:
        raise ConfigError(f"model.head.reg_max must be at least 1, got {cfg.model.head.reg_max}")
    if not cfg.model.head.strides or sorted(cfg.model.head.strides) != cfg.model.head.strides:
        raise ConfigError(f"model.head.strides must be increasing, got {cfg.model.head.strides}")
