"""ONNX Runtime static int8 quantisation (QDQ) of the exported fp32 ONNX model: calibration on real images
preprocessed exactly like inference, the calibration method chosen by measured output error (``auto``), a
per-layer sensitivity scan that keeps only the layers that need it in float, and AP / latency before/after."""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..image_io import list_images
from ..runtime.metadata import ModelMeta, metadata_path
from .int8_methods import CALIBRATIONS, Calibration, calibration_named
from .int8_quant import Quantizer, load_blobs, prepare_for_quantization, run_onnx
from .int8_scan import FloatSelection, OutputError, candidate_groups, select_float_groups, sensitivity_scan

if TYPE_CHECKING:
    from .pipeline import ExportOptions


def choose_calibration(prepared: Path, blobs: list[np.ndarray], references: list[np.ndarray],
                       scan_blobs: list[np.ndarray], meta: ModelMeta, work: Path,
                       log: Callable[[str], None]) -> tuple[Quantizer, OutputError]:
    """Calibrate with every method, quantise everything, keep the method with the smallest output error."""
    measured: list[tuple[Quantizer, OutputError]] = []
    for calibration in CALIBRATIONS:
        started = time.perf_counter()
        quantizer = Quantizer(prepared, calibration, blobs, work)
        error = quantizer.measure([], references, scan_blobs, meta)
        measured.append((quantizer, error))
        log(f"  calibration {calibration.describe():<40} probs {error.probs:.4f}  box {error.box_bins:.4f} bins "
            f"({time.perf_counter() - started:.0f} s)")
    base = measured[0][1]
    return min(measured, key=lambda pair: pair[1].relative_to(base))


def quantize_int8(fp32_path: Path, int8_path: Path, calib_files: list[Path], meta: ModelMeta,
                  options: ExportOptions, log: Callable[[str], None] = print) -> tuple[int, Calibration,
                                                                                      FloatSelection | None]:
    """Write the QDQ int8 model (per-channel int8 weights, uint8 activations, the scan's layers in float);
    returns the number of calibration images used, the calibration and the scan's selection."""
    import onnx

    blobs = load_blobs(calib_files, meta)
    scan_blobs = blobs[:options.scan_images]
    references = run_onnx(fp32_path, scan_blobs)
    with tempfile.TemporaryDirectory(prefix="nanogfl-int8-") as work_dir:
        work = Path(work_dir)
        prepared = prepare_for_quantization(fp32_path, work / "prepared.onnx")
        log(f"int8: output error vs fp32 on {len(scan_blobs)} calibration images: mean |diff| of class "
            f"probabilities >= 0.05 and of box distances (bins)")
        if options.calib_method == "auto":
            quantizer, base = choose_calibration(prepared, blobs, references, scan_blobs, meta, work, log)
        else:
            quantizer = Quantizer(prepared, calibration_named(options.calib_method), blobs, work)
            base = quantizer.measure([], references, scan_blobs, meta)
        log(f"int8: calibration {quantizer.calibration.describe()}, everything int8: probs {base.probs:.4f}, "
            f"box {base.box_bins:.4f} bins")
        selection = None
        if options.max_float_layers > 0:
            def measure(nodes: list[str]) -> OutputError:
                return quantizer.measure(nodes, references, scan_blobs, meta)

            groups = candidate_groups(onnx.load(str(prepared)))
            log(f"int8: sensitivity scan, {len(groups)} groups, each kept in float alone (error relative to "
                f"everything int8; lower = that group matters more)")
            rows = sensitivity_scan(groups, measure, base, log)
            log("int8: most sensitive: " + "; ".join(f"{row.group.label} {row.relative:.3f}" for row in rows[:8]))
            selection = select_float_groups(rows, measure, base, options.float_target, options.max_float_layers,
                                            log)
        quantizer.quantize(int8_path, selection.nodes_to_exclude if selection else ())
    return len(blobs), quantizer.calibration, selection


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


def export_int8(fp32_path: Path, int8_path: Path, meta: ModelMeta, options: ExportOptions,
                log: Callable[[str], None]) -> dict:
    """Quantise, write the metadata beside the int8 model, and report AP (with ``options.ann``) and latency."""
    calib_files = list_images(options.calib)[:options.calib_count]
    started = time.perf_counter()
    used, calibration, selection = quantize_int8(fp32_path, int8_path, calib_files, meta, options, log)
    kept = [group.label for group in selection.kept] if selection else []
    replace(meta, extra={**meta.extra, "onnx_weights": "int8 (QDQ)", "int8_calibration": calibration.describe(),
                         "int8_float_layers": kept}).save(metadata_path(int8_path))
    log(f"int8: {int8_path.name}, calibrated on {used} images from {options.calib} "
        f"({time.perf_counter() - started:.1f} s); kept in float: {', '.join(kept) or 'nothing'}")
    report: dict = {"calibration_images": used, "calibration": calibration.describe(), "float_layers": kept}
    for label, path in (("fp32", fp32_path), ("int8", int8_path)):
        report[f"{label}_latency_ms"] = median_latency_ms(path, options.threads)
        report[f"{label}_size_mb"] = path.stat().st_size / 1e6
    if options.ann:
        from ..evaluation import evaluate_coco

        for label, path in (("fp32", fp32_path), ("int8", int8_path)):
            report[f"{label}_ap"] = evaluate_coco(path, options.ann, options.images, threads=options.threads)["AP"]
        log(f"int8: AP {report['fp32_ap']:.4f} -> {report['int8_ap']:.4f} "
            f"({report['int8_ap'] - report['fp32_ap']:+.4f}) on {options.ann}")
    threads = options.threads or "default"
    log(f"int8: ONNX Runtime latency {report['fp32_latency_ms']:.1f} -> {report['int8_latency_ms']:.1f} ms "
        f"({threads} threads), size {report['fp32_size_mb']:.1f} -> {report['int8_size_mb']:.1f} MB")
    return report
