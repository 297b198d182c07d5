"""ncnn int8 from an fp32 ncnn export, without ncnn's C++ tools: activation ranges of every convolution's input
measured with ncnn itself on calibration images (preprocessed like inference), the range rule chosen by measured
output error, then the same per-layer sensitivity scan as for ONNX (int8_scan) keeps the layers that need it in
fp32; written in ncnn's int8 format (ncnn_int8_format)."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..runtime.ncnn_support import NCNN_PRECISION_OPTIONS, extract_blobs
from .int8_scan import FloatSelection, NodeGroup, OutputError, output_error, select_float_groups, sensitivity_scan
from .ncnn_int8_format import NcnnModel, read_ncnn, write_ncnn

HISTOGRAM_BINS = 2048
# Range rules tried (fraction of |x| samples inside the range; 1.0: the max). The best on NanoDet-Plus-m 416 is
# recorded in the README; all are measured again on every export (they share one pair of calibration passes).
RANGE_PERCENTILES = (1.0, 0.99999, 0.9999)


def open_ncnn(param_path: Path, threads: int = 1):
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    for option, value in NCNN_PRECISION_OPTIONS["fp32"].items():  # int8 layers stay int8 (use_int8_inference)
        setattr(net.opt, option, value)
    net.opt.num_threads = threads
    if net.load_param(str(param_path)) != 0 or net.load_model(str(param_path.with_suffix(".bin"))) != 0:
        raise RuntimeError(f"ncnn cannot load {param_path}")
    return net


def run_ncnn(net, blobs: Sequence[np.ndarray], input_name: str, names: Sequence[str]) -> list[list[np.ndarray]]:
    """For each blob, the arrays of the blobs ``names`` (one forward pass each: ncnn caches what it computed)."""
    import ncnn

    return [extract_blobs(ncnn, net, input_name, blob, names, "ncnn int8 calibration") for blob in blobs]


@dataclass
class InputRanges:
    """|x| statistics of each quantisable layer's input blob over the calibration images."""
    absmax: dict[str, float]
    histograms: dict[str, np.ndarray]  # HISTOGRAM_BINS counts of |x| over [0, absmax]

    def scales(self, layers: Sequence[str], percentile: float) -> dict[str, float]:
        """ncnn input scale (127 / range) per layer; the range holds ``percentile`` of the |x| samples."""
        scales = {}
        for name in layers:
            top, histogram = self.absmax[name], self.histograms[name]
            if percentile < 1.0 and histogram.sum() > 0:
                cumulative = np.cumsum(histogram) / histogram.sum()
                top = top * (int(np.searchsorted(cumulative, percentile)) + 1) / HISTOGRAM_BINS
            scales[name] = 127.0 / top if top > 0 else 1.0
        return scales


def measure_input_ranges(param_path: Path, model: NcnnModel, blobs: Sequence[np.ndarray],
                         input_name: str) -> InputRanges:
    """Two passes of the fp32 model over ``blobs``: the max |x| of each layer input, then its histogram."""
    layers = model.weighted
    names = [layer.inputs[0] for layer in layers]
    net = open_ncnn(param_path, threads=0)
    absmax = np.zeros(len(names))
    for outputs in run_ncnn(net, blobs, input_name, names):
        absmax = np.maximum(absmax, [np.abs(x).max() for x in outputs])
    histograms = np.zeros((len(names), HISTOGRAM_BINS))
    for outputs in run_ncnn(net, blobs, input_name, names):
        for i, x in enumerate(outputs):
            if absmax[i] > 0:  # bincount of bin indices: several times faster than np.histogram
                index = np.minimum((np.abs(x.ravel()) * (HISTOGRAM_BINS / absmax[i])).astype(np.int32),
                                   HISTOGRAM_BINS - 1)
                histograms[i] += np.bincount(index, minlength=HISTOGRAM_BINS)
    return InputRanges({layer.name: float(m) for layer, m in zip(layers, absmax)},
                       {layer.name: h for layer, h in zip(layers, histograms)})


class NcnnQuantizer:
    """Writes and measures int8 variants of one fp32 ncnn model."""

    def __init__(self, model: NcnnModel, ranges: InputRanges, references: Sequence[np.ndarray],
                 scan_blobs: Sequence[np.ndarray], input_name: str, output_name: str, num_classes: int,
                 reg_max: int, work: Path) -> None:
        self.model, self.ranges, self.references, self.scan_blobs = model, ranges, references, scan_blobs
        self.input_name, self.output_name = input_name, output_name
        self.num_classes, self.reg_max, self.work = num_classes, reg_max, work
        self.percentile = 1.0
        self.layers = [layer.name for layer in model.weighted]

    def write(self, param_path: Path, float_layers: Sequence[str] = ()) -> tuple[Path, Path]:
        keep = set(float_layers)
        scales = self.ranges.scales([name for name in self.layers if name not in keep], self.percentile)
        return write_ncnn(self.model, param_path, scales)

    def measure(self, float_layers: Sequence[str]) -> OutputError:
        param_path, _ = self.write(self.work / "trial.param", float_layers)
        net = open_ncnn(param_path)
        outputs = [out[0][0] if out[0].ndim == 3 else out[0]
                   for out in run_ncnn(net, self.scan_blobs, self.input_name, [self.output_name])]
        return output_error(self.references, outputs, self.num_classes, self.reg_max)


def quantize_ncnn_int8(fp32_param: Path, int8_param: Path, calib_blobs: Sequence[np.ndarray], scan_images: int,
                       input_name: str, output_name: str, num_classes: int, reg_max: int, max_float_layers: int,
                       float_target: float, log: Callable[[str], None] = print) -> tuple[float, FloatSelection | None]:
    """Write the int8 ncnn model; returns the chosen range percentile and the scan's selection."""
    model = read_ncnn(fp32_param)
    scan_blobs = list(calib_blobs[:scan_images])
    net = open_ncnn(fp32_param)
    references = [out[0] for out in run_ncnn(net, scan_blobs, input_name, [output_name])]
    ranges = measure_input_ranges(fp32_param, model, calib_blobs, input_name)
    with tempfile.TemporaryDirectory(prefix="nanogfl-ncnn-int8-") as work:
        quantizer = NcnnQuantizer(model, ranges, references, scan_blobs, input_name, output_name, num_classes,
                                  reg_max, Path(work))
        errors = {}
        for percentile in RANGE_PERCENTILES:
            quantizer.percentile = percentile
            errors[percentile] = quantizer.measure([])
            log(f"  ncnn ranges {'max' if percentile == 1.0 else f'percentile {percentile * 100:g}':<18} "
                f"probs {errors[percentile].probs:.4f}  box {errors[percentile].box_bins:.4f} bins")
        first = errors[RANGE_PERCENTILES[0]]
        quantizer.percentile = min(errors, key=lambda p: errors[p].relative_to(first))
        base = errors[quantizer.percentile]
        selection = None
        if max_float_layers > 0:
            groups = [NodeGroup(name, (name,)) for name in quantizer.layers]
            log(f"ncnn int8: sensitivity scan, {len(groups)} convolutions, each kept in fp32 alone")
            rows = sensitivity_scan(groups, quantizer.measure, base, log)
            log("ncnn int8: most sensitive: " + "; ".join(f"{r.group.label} {r.relative:.3f}" for r in rows[:8]))
            selection = select_float_groups(rows, quantizer.measure, base, float_target, max_float_layers, log)
        quantizer.write(int8_param, selection.nodes_to_exclude if selection else ())
    return quantizer.percentile, selection
