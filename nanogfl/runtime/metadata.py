"""The small JSON file written next to every exported model, so the runtime needs no config and no torch."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..contract import (
    BGR_MEAN,
    BGR_STD,
    COLOR_ORDERS,
    INPUT_BLOB,
    NANODET_PLUS_STRIDES,
    OUTPUT_BLOB,
    OUTPUT_LAYOUTS,
    RESIZE_MODES,
)
from ..fileio import atomic_write_text

LAYOUT_VERSION = 1


@dataclass
class ModelMeta:
    """Everything the runtime needs to run and decode an exported model, stored as ``model.json`` beside it.

    The model maps a normalised BGR blob ``input_name`` [1, 3, H, W] (``(pixel - mean) / std``, stretch-resized
    to ``input_hw``, or keep-ratio resized and padded: ``keep_ratio_scale``) to one output ``output_name``
    [1, N, C + 4 * (reg_max + 1)]: per prior of ``strides``
    (levels in order, row-major), C class columns (probabilities, or logits when ``class_activation`` is
    "none") and 4 side-major groups of reg_max + 1 distance-bin logits.

    Other detector families' exports (``layout`` other than "gfl", decoded by ``runtime/peers``) use the fields
    below too: ``color_order`` and ``resize_mode`` / ``pad_value`` (letterbox: keep the aspect ratio, paste at the
    top-left, fill the rest with ``pad_value`` in 0-255 pixels before normalisation), ``anchors`` ([level][anchor]
    = [w, h] in input pixels) and ``split_outputs`` (the output blobs, per stride).
    """
    class_names: list[str]
    input_hw: tuple[int, int]  # (height, width)
    strides: tuple[int, ...] = NANODET_PLUS_STRIDES
    reg_max: int = 7
    mean: tuple[float, float, float] = BGR_MEAN
    std: tuple[float, float, float] = BGR_STD
    # "sigmoid": the class columns are probabilities (our exports); "none": logits (official fp16 ncnn file)
    class_activation: str = "sigmoid"
    input_name: str = INPUT_BLOB
    output_name: str = OUTPUT_BLOB
    prior_offset: float = 0.0  # 0: NanoDet-Plus; 0.5: NanoDet-m (cell centres)
    split_outputs: list[str] = field(default_factory=list)  # [cls_8, box_8, cls_16, box_16, ...]; [] = one output
    # ncnn arithmetic the export was verified in, and the runtime's default (contract.NCNN_PRECISIONS); files
    # written before this field existed were verified on x86, where ncnn computes in fp32
    ncnn_precision: str = "fp32"
    # [short, long]: keep-ratio resize (the server-size GFL detectors, [800, 1333]): each image is scaled so that
    # its short side is at most ``short`` and its long side at most ``long``, then padded (bottom / right, zeros
    # after normalisation) to a multiple of 32; the input size then differs per image. []: stretch to input_hw.
    keep_ratio_scale: list[int] = field(default_factory=list)
    layout: str = "gfl"  # contract.OUTPUT_LAYOUTS
    color_order: str = "bgr"  # contract.COLOR_ORDERS
    resize_mode: str = "stretch"  # contract.RESIZE_MODES
    pad_value: float = 0.0  # letterbox fill, in input pixels (0-255) before normalisation
    anchors: list[list[list[float]]] = field(default_factory=list)  # anchor layouts: [level][anchor] = [w, h]
    best_class_only: bool = False  # peers: keep each box's best class only (YOLO-FastestV2's own postprocess)
    pre_nms_top_k: int = 0  # per pyramid level, the best (prior, class) pairs kept before NMS; 0: all
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
        data["strides"] = tuple(int(v) for v in data.get("strides", NANODET_PLUS_STRIDES))
        data["mean"] = tuple(float(v) for v in data.get("mean", cls.mean))
        data["std"] = tuple(float(v) for v in data.get("std", cls.std))
        data["split_outputs"] = [str(v) for v in data.get("split_outputs", [])]
        data["keep_ratio_scale"] = [int(v) for v in data.get("keep_ratio_scale", [])]
        if data["keep_ratio_scale"] and len(data["keep_ratio_scale"]) != 2:
            raise ValueError(f"{source}: keep_ratio_scale must be [short, long], got {data['keep_ratio_scale']}")
        data["anchors"] = [[[float(v) for v in pair] for pair in level] for level in data.get("anchors", [])]
        check_layout(data, source)
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


def check_layout(data: dict, source: str) -> None:
    """One-line errors for layout fields that do not fit together (``data``: ModelMeta keys, parsed)."""
    for key, choices in (("layout", OUTPUT_LAYOUTS), ("color_order", COLOR_ORDERS), ("resize_mode", RESIZE_MODES)):
        if key in data and data[key] not in choices:
            raise ValueError(f"{source}: {key} must be one of {', '.join(choices)}, got {data[key]!r}")
    layout, strides, outputs = data.get("layout", "gfl"), data["strides"], data["split_outputs"]
    if layout in ("gfl", "picodet") and outputs and len(outputs) != 2 * len(strides):
        raise ValueError(f"{source}: split_outputs must name a class and a box blob per stride "
                         f"({2 * len(strides)} names), got {outputs}")
    if layout == "picodet" and not outputs:
        raise ValueError(f"{source}: layout picodet needs split_outputs (a class and a box blob per stride)")
    if layout == "yolo_fastestv2" and data.get("class_activation", "sigmoid") != "sigmoid":
        raise ValueError(f"{source}: layout yolo_fastestv2 takes the graph's own activations (class_activation "
                         f"sigmoid)")
    if layout == "yolo_fastestv2":
        if len(outputs) != len(strides):
            raise ValueError(f"{source}: layout yolo_fastestv2 needs split_outputs with one blob per stride "
                             f"({len(strides)} names), got {outputs}")
        if len(data["anchors"]) != len(strides) or any(len(p) != 2 for level in data["anchors"] for p in level):
            raise ValueError(f"{source}: layout yolo_fastestv2 needs anchors [level][anchor] = [w, h] for each of "
                             f"the {len(strides)} strides")


def metadata_path(model_path: str | Path) -> Path:
    """``model.onnx`` / ``model.param`` -> ``model.json`` beside it."""
    return Path(model_path).with_suffix(".json")
