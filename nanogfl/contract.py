"""The facts every layer agrees on, in one place (stdlib only: the torch-free runtime imports this).

Training, evaluation, export and the deploy runtime all read these names; nothing else restates them.
"""
from __future__ import annotations

from typing import Literal, get_args

from .errors import UserError

# Input normalisation of every published NanoDet model: BGR pixels (OpenCV order), (x - mean) / std.
BGR_MEAN: tuple[float, float, float] = (103.53, 116.28, 123.675)
BGR_STD: tuple[float, float, float] = (57.375, 57.12, 58.395)

# Head strides of NanoDet-Plus (GhostPAN adds a fourth, stride-64 level to the backbone's 8/16/32).
NANODET_PLUS_STRIDES: tuple[int, ...] = (8, 16, 32, 64)

# Blob names of an exported model: input [1, 3, H, W] normalised BGR, one output [1, N, C + 4 * (reg_max + 1)].
INPUT_BLOB = "data"
OUTPUT_BLOB = "output"

# Input sizes are multiples of this on both sides (every published model; the stride-64 level rounds up).
SIZE_MULTIPLE = 32

# Score threshold for showing detections (predict, demo); evaluation keeps far more candidates.
DEPLOY_SCORE_THRESHOLD = 0.35
# The demo's defaults: stream viewers at once (--max-clients), the Pi camera's capture size (width, height).
DEMO_MAX_CLIENTS = 4
PICAMERA_SIZE = (640, 480)
# COCO evaluation settings of NanoDet: multi-label candidates above 0.05, class-aware NMS at IoU 0.6, top 100.
EVAL_SCORE_THRESHOLD = 0.05
EVAL_IOU_THRESHOLD = 0.6
EVAL_MAX_DETECTIONS = 100

# The published architectures (model/variants.py holds the record of parts behind each name): the NanoDet family
# (whose official ncnn / ONNX files ``nanogfl import`` reads) and the GFL paper's server-size detectors.
NanoDetArch = Literal["nanodet-plus-m", "nanodet-plus-m-1.5x", "nanodet-plus-m-0.5x", "nanodet-m"]
ServerArch = Literal["gfl-r50", "gfl-r101", "gfl-x101-32x4d"]
ArchName = Literal[NanoDetArch, ServerArch]
NANODET_ARCHS: tuple[str, ...] = get_args(NanoDetArch)
ARCH_NAMES: tuple[str, ...] = get_args(ArchName)

# Dataset annotation formats (data/coco.py, data/voc.py, data/yolo.py).
DatasetFormat = Literal["coco", "voc", "yolo"]
DATASET_FORMATS: tuple[str, ...] = get_args(DatasetFormat)

# What ``nanogfl export`` writes: one ONNX file and/or one ncnn .param/.bin pair per input size.
ExportFormat = Literal["onnx", "ncnn"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)

# What the class columns of a model output hold: probabilities (our exports) or logits (official fp16 ncnn).
ClassActivation = Literal["sigmoid", "none"]
CLASS_ACTIVATIONS: tuple[str, ...] = get_args(ClassActivation)

# How a model's outputs are laid out (runtime/peers/ decodes the other detector families, so val and benchmark run
# them next to ours): "gfl" ours and NanoDet's, one [N, C + 4 * (reg_max + 1)] output (or class/box pairs per
# stride); "yolox" [N, 5 + C]; "yolo_fastestv2" one anchor grid per stride; "picodet" class/box pairs per stride.
OutputLayout = Literal["gfl", "yolox", "yolo_fastestv2", "picodet"]
OUTPUT_LAYOUTS: tuple[str, ...] = get_args(OutputLayout)
# Channel order of the network input ("bgr": OpenCV's, ours) and how an image is brought to the input size
# ("stretch": plain resize, ours; "letterbox": keep the aspect ratio, paste at the top-left, pad the rest).
ColorOrder = Literal["bgr", "rgb"]
COLOR_ORDERS: tuple[str, ...] = get_args(ColorOrder)
ResizeMode = Literal["stretch", "letterbox"]
RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)

# The arithmetic ncnn runs a model in. "fp32": ncnn's fp16 packed/storage/arithmetic (and bf16) options off, fp32
# throughout; "fp16": ncnn's defaults, which store and compute in fp16 where the CPU has ARMv8.2 half-precision
# arithmetic (Raspberry Pi 5's Cortex-A76; not the Pi 4's A72, not x86). The metadata records the precision an
# export was verified in; the runtime uses that unless told otherwise ("auto").
NcnnPrecision = Literal["fp32", "fp16"]
NCNN_PRECISIONS: tuple[str, ...] = get_args(NcnnPrecision)


def check_input_size(input_hw: tuple[int, ...] | list[int], what: str = "input size") -> tuple[int, int]:
    """(height, width) as ints, or a one-line UserError naming the nearest valid size."""
    if len(input_hw) != 2:
        raise UserError(f"{what} must be (height, width), got {list(input_hw)}")
    height, width = int(input_hw[0]), int(input_hw[1])
    if min(height, width) <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        def nearest(v: int) -> int:
            return max(SIZE_MULTIPLE, round(v / SIZE_MULTIPLE) * SIZE_MULTIPLE)
        raise UserError(f"{what} {height}x{width} (height x width): both sides must be positive multiples of "
                        f"{SIZE_MULTIPLE}; use e.g. --size {nearest(height)} {nearest(width)}")
    return height, width
