"""The calibration methods int8 export can use (onnxruntime.quantization's), importable without numpy (the CLI
lists their names)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Calibration:
    """One way of turning calibration activations into 8-bit ranges (onnxruntime.quantization's methods)."""
    name: str  # what --calib-method takes
    method: str  # CalibrationMethod member name
    options: tuple[tuple[str, object], ...] = ()  # quantize_static extra_options

    def describe(self) -> str:
        return self.name + "".join(f" {key}={value}" for key, value in self.options)


# Measured on NanoDet-Plus-m 416 (100 COCO train images, output error on 32 val images, everything int8):
# percentile 99.99 gave the smallest class-probability and box errors, then moving-average MinMax, then 99.999,
# then entropy (also the slowest), then plain MinMax. `--calib-method auto` measures them all again.
CALIBRATIONS = (
    Calibration("percentile", "Percentile", (("CalibPercentile", 99.99),)),
    Calibration("minmax-average", "MinMax", (("CalibMovingAverage", True),)),
    Calibration("minmax", "MinMax"),
    Calibration("entropy", "Entropy"),
)
CALIBRATION_NAMES = tuple(c.name for c in CALIBRATIONS) + ("auto",)


def calibration_named(name: str) -> Calibration:
    for calibration in CALIBRATIONS:
        if calibration.name == name:
            return calibration
    raise ValueError(f"unknown calibration {name!r}; one of {', '.join(CALIBRATION_NAMES)}")
