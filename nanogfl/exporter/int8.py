"""int8 export: the fp32 ONNX and/or ncnn model quantised (ONNX Runtime static QDQ: int8_quant; ncnn int8
format: ncnn_int8) on calibration images preprocessed exactly like inference, with a per-layer sensitivity scan
keeping only the layers that need it in float, and AP / latency fp32 vs int8 measured in the same run."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import UserError
from ..image_io import list_images
from ..runtime.metadata import ModelMeta, metadata_path
from .int8_quant import load_blobs, quantize_onnx_int8
from .ncnn_int8 import quantize_ncnn_int8

if TYPE_CHECKING:
    from .pipeline import ExportOptions


def median_latency_ms(model_path: Path, threads: int = 0, runs: int = 30, warmup: int = 5) -> float:
    """Median wall time of one forward pass (network only) on a random blob."""
    from ..runtime.backends import open_model

    backend = open_model(model_path, threads=threads)
    blob = np.random.default_rng(0).standard_normal((1, 3, *backend.meta.input_hw)).astype(np.float32)
    for _ in range(warmup):
        backend.forward(blob)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        backend.forward(blob)
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


@dataclass(frozen=True)
class Int8Pair:
    """One backend's int8 file and the fp32 file it is made from and compared with."""
    backend: str  # "onnx" or "ncnn"
    fp32_path: Path
    int8_path: Path


def export_int8(pairs: list[Int8Pair], meta: ModelMeta, options: ExportOptions, log: Callable[[str], None]) -> dict:
    """Quantise each pair's fp32 model, write the metadata beside the int8 models (one .int8.json for both), and
    report AP (with ``options.ann``) and latency fp32 vs int8 per backend, measured in this run."""
    calib_files = list_images(options.calib)[:options.calib_count]
    blobs = load_blobs(calib_files, meta)
    if not blobs:
        raise UserError(f"--calib {options.calib}: none of the images could be read")
    extra: dict = {}
    report: dict = {"calibration_images": len(blobs)}
    for pair in pairs:
        started = time.perf_counter()
        if pair.backend == "onnx":
            calibration, selection = quantize_onnx_int8(pair.fp32_path, pair.int8_path, blobs, meta, options, log)
            method = calibration.describe()
            extra["onnx_weights"] = "int8 (QDQ)"
        else:
            percentile, selection = quantize_ncnn_int8(
                pair.fp32_path, pair.int8_path, blobs, options.scan_images, meta.input_name, meta.output_name,
                meta.num_classes, meta.reg_max, options.max_float_layers, options.float_target, log)
            method = "max" if percentile == 1.0 else f"percentile {percentile * 100:g}"
            extra["ncnn_weights"] = "int8"
        kept = [group.label for group in selection.kept] if selection else []
        extra[f"{pair.backend}_int8"] = {"calibration": method, "float_layers": kept}
        report[pair.backend] = {"calibration": method, "float_layers": kept}
        log(f"{pair.backend} int8: {pair.int8_path.name}, calibrated on {len(blobs)} images from {options.calib} "
            f"({method}; {time.perf_counter() - started:.1f} s); kept in float: {', '.join(kept) or 'nothing'}")
    replace(meta, extra={**meta.extra, **extra}).save(metadata_path(pairs[0].int8_path))
    for pair in pairs:
        _measure(pair, report[pair.backend], options, log)
    return report


def _measure(pair: Int8Pair, report: dict, options: ExportOptions, log: Callable[[str], None]) -> None:
    """Latency, size and (with --ann) AP of the fp32 and the int8 file, same run, same threads."""
    for label, path in (("fp32", pair.fp32_path), ("int8", pair.int8_path)):
        report[f"{label}_latency_ms"] = median_latency_ms(path, options.threads)
        weights = path.with_suffix(".bin") if path.suffix == ".param" else path
        report[f"{label}_size_mb"] = weights.stat().st_size / 1e6
    if options.ann:
        from ..evaluation import evaluate_coco

        for label, path in (("fp32", pair.fp32_path), ("int8", pair.int8_path)):
            report[f"{label}_ap"] = evaluate_coco(path, options.ann, options.images, threads=options.threads)["AP"]
        log(f"{pair.backend} int8: AP {report['fp32_ap']:.4f} -> {report['int8_ap']:.4f} "
            f"({report['int8_ap'] - report['fp32_ap']:+.4f}) on {options.ann}")
    threads = options.threads or "default"
    runtime = "ONNX Runtime" if pair.backend == "onnx" else "ncnn"
    log(f"{pair.backend} int8: {runtime} latency {report['fp32_latency_ms']:.1f} -> {report['int8_latency_ms']:.1f} "
        f"ms ({threads} threads), weights {report['fp32_size_mb']:.1f} -> {report['int8_size_mb']:.1f} MB")
