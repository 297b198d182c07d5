"""The typed config: dataclasses loaded from YAML, with dotted overrides and clear errors for unknown keys."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import UserError


class ConfigError(UserError, ValueError):
    pass


@dataclass
class ModelConfig:
    arch: str = "nanodet-plus-m"  # nanodet-plus-m | nanodet-plus-m-1.5x | nanodet-plus-m-0.5x
    input_size: list[int] = field(default_factory=lambda: [320, 320])  # [height, width], multiples of 32
    reg_max: int = 7
    detach_epoch: int = 10
    # which head's predictions drive label assignment: aux (NanoDet-Plus), main, or auto = aux unless training
    # starts from a checkpoint whose aux branch was never trained (an imported official model)
    assign_guidance: str = "auto"


@dataclass
class DatasetConfig:
    format: str = "coco"  # coco | voc | yolo
    ann: str = ""  # coco: json file; voc: folder of xml (or a txt list of ids); yolo: folder of txt labels
    images: str = ""  # folder of images


@dataclass
class DataConfig:
    train: DatasetConfig = field(default_factory=DatasetConfig)
    val: DatasetConfig = field(default_factory=DatasetConfig)
    class_names: Optional[list[str]] = None  # required for yolo; coco/voc read them from the annotations
    mean: list[float] = field(default_factory=lambda: [103.53, 116.28, 123.675])  # BGR
    std: list[float] = field(default_factory=lambda: [57.375, 57.12, 58.395])
    workers: int = 4


@dataclass
class AugmentConfig:
    scale: list[float] = field(default_factory=lambda: [0.6, 1.4])
    stretch: list[float] = field(default_factory=lambda: [0.8, 1.2])
    flip: float = 0.5
    translate: float = 0.2
    brightness: float = 0.2
    contrast: list[float] = field(default_factory=lambda: [0.6, 1.4])
    saturation: list[float] = field(default_factory=lambda: [0.5, 1.2])


@dataclass
class TrainConfig:
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
    score_threshold: float = 0.05
    iou_threshold: float = 0.6
    max_detections: int = 100


@dataclass
class Config:
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


def _valid_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
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
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(_valid_keys(cls))}")
    values = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**values)


def config_from_dict(data: dict, source: str = "config") -> Config:
    cfg = _from_dict(Config, data or {}, "")
    validate(cfg, source)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
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


def validate(cfg: Config, source: str) -> None:
    h, w = cfg.input_hw
    if len(cfg.model.input_size) != 2:
        raise ConfigError(f"{source}: model.input_size must be [height, width]")
    for v in (h, w):
        if v <= 0 or v % 32:
            raise ConfigError(f"{source}: model.input_size {cfg.model.input_size} must be positive multiples of 32")
    if cfg.model.assign_guidance not in ("auto", "aux", "main"):
        raise ConfigError(f"{source}: model.assign_guidance must be auto, aux or main, "
                          f"got {cfg.model.assign_guidance!r}")
    if cfg.data.train.format not in ("coco", "voc", "yolo") or cfg.data.val.format not in ("coco", "voc", "yolo"):
        raise ConfigError(f"{source}: data.*.format must be coco, voc or yolo")
