"""The published variants: one named builder each, with the reference numbers it is checked against.

A variant's parts are the ``model.arch`` record in ``nanogfl.config.PUBLISHED_PARTS``; the builders here build
that record. ``REFERENCES`` holds what the official release reports and what we measured on its files.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config import Config, ModelConfig, config_from_dict
from ..contract import ARCH_NAMES
from .build import build_detector
from .detector import GFLDetector


@dataclass(frozen=True)
class Reference:
    """Deploy size of the official model (BN folded, aux dropped) and its published COCO val2017 mAP.
    ``official_file`` (under the shared data folder) is the published file the numbers were counted from;
    ``trained_params`` the published count of every parameter of the model as trained (mmdetection's count:
    BatchNorm and GroupNorm affine terms, frozen ones included; aux branch excluded). The server-size models have
    no published deploy file: their deploy numbers are our own count, kept as a regression check."""
    deploy_params: Optional[int]  # None: no published model
    deploy_macs: dict[tuple[int, int], int]  # input (height, width) -> multiply-accumulates
    published: str
    official_file: Optional[str] = None
    trained_params: Optional[int] = None


def _square(macs: dict[int, int]) -> dict[tuple[int, int], int]:
    return {(size, size): value for size, value in macs.items()}


SERVER_HW = (800, 1333)  # the test-time scale of the server-size detectors: MACs are published at 1333x800
REFERENCES: dict[str, Reference] = {
    "nanodet-plus-m": Reference(1_186_346, _square({320: 450_712_800, 416: 762_090_840}),
                                "NanoDet-Plus-m: 1.17M params; COCO val2017 mAP 27.0 @320, 30.4 @416",
                                "nanodet_plus_m_416_ncnn/nanodet-plus-m_416.param"),
    "nanodet-plus-m-1.5x": Reference(2_461_000, _square({320: 879_000_000, 416: 1_486_000_000}),
                                     "NanoDet-Plus-m-1.5x: 2.44M params; COCO val2017 mAP 29.9 @320, 34.1 @416"),
    "nanodet-plus-m-0.5x": Reference(None, {}, "ShuffleNetV2-0.5x backbone, no published weights"),
    "nanodet-m": Reference(941_818, _square({320: 342_223_200, 416: 578_357_208}),
                           "NanoDet-m (legacy): 0.95M params; COCO val2017 mAP 20.6 @320, 23.5 @416",
                           "nanodet_m_ncnn/nanodet_m.param"),
    "gfl-r50": Reference(32_413_977, {SERVER_HW: 217_155_507_200},
                         "mmdetection GFL R-50: COCO val mAP 40.2 (1x), 42.9 (ms-2x)", trained_params=32_440_537),
    "gfl-r101": Reference(51_379_993, {SERVER_HW: 296_703_104_000}, "mmdetection GFL R-101: COCO val mAP 44.7 (ms-2x)",
                          trained_params=51_432_665),
    "gfl-x101-32x4d": Reference(50_992_281, {SERVER_HW: 300_299_596_800},
                                "mmdetection GFL X-101-32x4d: COCO val mAP 45.9 (ms-2x)", trained_params=51_061_209),
}
assert tuple(REFERENCES) == ARCH_NAMES

# GFLV2's quality predictor with its defaults (top 4 + mean per side, 64 channels): 20 * 64 + 64 + 64 + 1.
DGQP_PARAMS = 1_409
DGQP_MACS_PER_PRIOR = 20 * 64 + 64


def default_config(arch: str) -> Config:
    """A whole default config around the published variant ``arch`` (what the importer writes)."""
    return config_from_dict({"model": {"arch": arch}}, f"--arch {arch}")


def variant_config(arch: str) -> ModelConfig:
    """The model section of a config for the published variant ``arch``."""
    return default_config(arch).model


def build_variant(arch: str, num_classes: int = 80, with_aux: bool = True, detach_epoch: int = 10) -> GFLDetector:
    cfg = variant_config(arch)
    cfg.detach_epoch = detach_epoch
    return build_detector(cfg, num_classes, with_aux)


def nanodet_plus_m(num_classes: int = 80, with_aux: bool = True, detach_epoch: int = 10) -> GFLDetector:
    """NanoDet-Plus-m: ShuffleNetV2 1.0x, GhostPAN 96 channels, 4 levels (strides 8-64).

    >>> model = nanodet_plus_m(num_classes=80)
    >>> preds = model.eval()(torch.zeros(1, 3, 416, 416))  # [1, 3598, 112]
    """
    return build_variant("nanodet-plus-m", num_classes, with_aux, detach_epoch)


def nanodet_plus_m_1_5x(num_classes: int = 80, with_aux: bool = True, detach_epoch: int = 10) -> GFLDetector:
    """NanoDet-Plus-m-1.5x: ShuffleNetV2 1.5x, GhostPAN 128 channels."""
    return build_variant("nanodet-plus-m-1.5x", num_classes, with_aux, detach_epoch)


def nanodet_plus_m_0_5x(num_classes: int = 80, with_aux: bool = True, detach_epoch: int = 10) -> GFLDetector:
    """ShuffleNetV2 0.5x with a 96-channel GhostPAN: the smallest variant (no published weights)."""
    return build_variant("nanodet-plus-m-0.5x", num_classes, with_aux, detach_epoch)


def nanodet_m(num_classes: int = 80) -> GFLDetector:
    """The original NanoDet-m: ShuffleNetV2 1.0x, convolution-free PAN (3 levels, strides 8-32), 3x3 depthwise
    towers, ATSS assignment, priors at cell centres; no aux branch."""
    return build_variant("nanodet-m", num_classes, with_aux=False)


def gfl_r50(num_classes: int = 80) -> GFLDetector:
    """GFL (Li et al., 2020) with ResNet-50, FPN P3..P7 and the shared GroupNorm head, as mmdetection trains it
    (32,440,537 parameters with 80 classes).

    >>> model = gfl_r50(num_classes=80)
    >>> preds = model.eval()(torch.zeros(1, 3, 800, 1344))  # [1, 22400, 80 + 4 * 17]
    """
    return build_variant("gfl-r50", num_classes, with_aux=False)


def gfl_r101(num_classes: int = 80) -> GFLDetector:
    """GFL with ResNet-101 (51,432,665 parameters with 80 classes)."""
    return build_variant("gfl-r101", num_classes, with_aux=False)


def gfl_x101_32x4d(num_classes: int = 80) -> GFLDetector:
    """GFL with ResNeXt-101 32x4d (51,061,209 parameters with 80 classes)."""
    return build_variant("gfl-x101-32x4d", num_classes, with_aux=False)
