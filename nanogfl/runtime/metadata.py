"""The small JSON file written next to every exported model, so the runtime needs no config and no torch."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..fileio import atomic_write_text

LAYOUT_VERSION = 1


@dataclass
class ModelMeta:
    class_names: list[str]
    input_hw: tuple[int, int]  # (height, width)
    strides: tuple[int, ...] = (8, 16, 32, 64)
    reg_max: int = 7
    mean: tuple[float, float, float] = (103.53, 116.28, 123.675)
    std: tuple[float, float, float] = (57.375, 57.12, 58.395)
    # "sigmoid": the class columns are probabilities (our exports); "none": logits (official fp16 ncnn file)
    class_activation: str = "sigmoid"
    input_name: str = "data"
    output_name: str = "output"
    arch: str = "nanodet-plus-m"
    layout_version: int = LAYOUT_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        data = asdict(self)
        data["input_hw"] = list(self.input_hw)
        data["strides"] = list(self.strides)
        return json.dumps(data, indent=2)

    @classmethod
    def from_dict(cls, data: dict, source: str = "metadata") -> "ModelMeta":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown metadata keys {unknown}")
        if data.get("layout_version", LAYOUT_VERSION) > LAYOUT_VERSION:
            raise ValueError(f"{source}: layout version {data['layout_version']} is newer than this nanogfl "
                             f"understands ({LAYOUT_VERSION}); upgrade nanogfl")
        for key in ("class_names", "input_hw"):
            if key not in data:
                raise ValueError(f"{source}: metadata lacks {key!r}")
        data = dict(data)
        data["input_hw"] = tuple(int(v) for v in data["input_hw"])
        data["strides"] = tuple(int(v) for v in data.get("strides", (8, 16, 32, 64)))
        data["mean"] = tuple(float(v) for v in data.get("mean", cls.mean))
        data["std"] = tuple(float(v) for v in data.get("std", cls.std))
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "ModelMeta":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model metadata not found: {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(data, str(path))

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())


def metadata_path(model_path: str | Path) -> Path:
    """``model.onnx`` / ``model.param`` -> ``model.json`` beside it."""
    return Path(model_path).with_suffix(".json")
