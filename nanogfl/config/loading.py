"""Loading configs: YAML -> validated Config, dotted overrides, migration of keys older versions wrote."""
from __future__ import annotations

import copy
import dataclasses
import typing
import warnings
from pathlib import Path
from typing import Any, Optional

import yaml

from ..contract import SIZE_MULTIPLE, check_input_size
from ..errors import UserError
from ..fileio import atomic_write_text
from .schema import (
    PUBLISHED_PARTS,
    RESNET_DEPTHS,
    SHUFFLENET_V2_WIDTHS,
    Config,
    ConfigError,
    ModelConfig,
)

# Keys that older versions wrote, and where their value lives now (None: dropped).
RETIRED_KEYS: dict[str, Optional[str]] = {"model.reg_max": "model.head.reg_max"}


def _valid_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if isinstance(value, bool) and {"on", "off"} <= set(allowed):  # YAML 1.1 reads a bare on / off as a bool
            value = "on" if value else "off"
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


def save_config(cfg: Config, path: str | Path) -> None:
    """Write ``cfg`` as YAML (atomically), every field resolved: ``load_config(path)`` gives ``cfg`` back."""
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None, width=120))


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
    scale = cfg.model.keep_ratio_scale
    if scale and (len(scale) != 2 or min(scale) < SIZE_MULTIPLE):
        raise ConfigError(f"model.keep_ratio_scale must be [short, long] side limits of at least {SIZE_MULTIPLE}, "
                          f"got {scale}")
    if scale and cfg.model.assigner.name != "atss":
        raise ConfigError("model.keep_ratio_scale (padded batches of images of different sizes) needs "
                          f"model.assigner.name atss, got {cfg.model.assigner.name}")
    backbone = cfg.model.backbone
    if backbone.name == "shufflenetv2" and backbone.width not in SHUFFLENET_V2_WIDTHS:
        raise ConfigError(f"model.backbone.width: {backbone.width} is not one of "
                          f"{', '.join(map(str, SHUFFLENET_V2_WIDTHS))}")
    if backbone.name == "resnet":
        if backbone.depth not in RESNET_DEPTHS:
            raise ConfigError(f"model.backbone.depth: {backbone.depth} is not one of "
                              f"{', '.join(map(str, RESNET_DEPTHS))}")
        if backbone.groups < 1 or backbone.width_per_group < 1 or not 0 <= backbone.frozen_stages <= 4:
            raise ConfigError(f"model.backbone: groups and width_per_group must be positive and frozen_stages in "
                              f"0..4, got {backbone.groups}, {backbone.width_per_group}, {backbone.frozen_stages}")
    if cfg.model.head.reg_max < 1:
        raise ConfigError(f"model.head.reg_max must be at least 1, got {cfg.model.head.reg_max}")
    if not cfg.model.head.strides or sorted(cfg.model.head.strides) != cfg.model.head.strides:
        raise ConfigError(f"model.head.strides must be increasing, got {cfg.model.head.strides}")
    _validate_train(cfg)


def _validate_train(cfg: Config) -> None:
    """The optimiser / schedule / EMA fields: one consistent recipe."""
    train = cfg.train
    if train.schedule == "multistep" and not train.milestones:
        raise ConfigError("train.milestones: schedule multistep needs at least one milestone epoch")
    if train.schedule != "multistep" and train.milestones:
        raise ConfigError(f"train.milestones {train.milestones} are only used by schedule multistep "
                          f"(train.schedule is {train.schedule})")
    if train.milestones and (train.milestones[0] < 1 or
                             any(b <= a for a, b in zip(train.milestones, train.milestones[1:]))):
        raise ConfigError(f"train.milestones must be strictly increasing epochs from 1 on, got {train.milestones}")
    if not train.gamma > 0:
        raise ConfigError(f"train.gamma must be positive, got {train.gamma}")
    if not 0 <= train.momentum < 1:
        raise ConfigError(f"train.momentum must be in [0, 1), got {train.momentum}")
    if not 0 <= train.ema_decay < 1:
        raise ConfigError(f"train.ema_decay must be in [0, 1) (0: no EMA), got {train.ema_decay}")
    if not train.ema_ramp > 0:
        raise ConfigError(f"train.ema_ramp must be positive (steps), got {train.ema_ramp}")
    if not train.grad_clip >= 0:
        raise ConfigError(f"train.grad_clip must be 0 (no clipping) or positive, got {train.grad_clip}")
    if not train.warmup_epochs >= 0:
        raise ConfigError(f"train.warmup_epochs must be 0 (use warmup_steps) or positive, got {train.warmup_epochs}")
    if train.backbone_weights and cfg.model.backbone.name != "resnet":
        raise ConfigError(f"train.backbone_weights initialises a ResNet backbone; model.backbone is "
                          f"{cfg.model.backbone.name} (use train.pretrained for a nanogfl checkpoint)")
    classes = cfg.data.classes
    if classes is not None and (not classes or len(set(classes)) != len(classes)):
        raise ConfigError(f"data.classes must name each class once (at least one), got {classes}")
