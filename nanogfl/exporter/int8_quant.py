"""ONNX Runtime static QDQ quantisation with a cached calibration: calibration images preprocessed once, exactly like
inference; one calibration per method (its tensor ranges cached as json), then any number of quantisations with
different nodes kept in float, each measured against fp32 on a few images."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..contract import INPUT_BLOB
from ..image_io import load_image
from ..runtime.metadata import ModelMeta
from ..runtime.preprocess import preprocess
from .common import require_module
from .int8_methods import CALIBRATIONS, Calibration, calibration_named
from .int8_scan import (
    FloatSelection,
    OutputError,
    candidate_groups,
    output_error,
    select_float_groups,
    sensitivity_scan,
)

if TYPE_CHECKING:
    from .pipeline import ExportOptions


def load_blobs(image_files: Sequence[Path], meta: ModelMeta) -> list[np.ndarray]:
    """Preprocessed [1, 3, H, W] blobs of the readable images (unreadable ones skipped with a warning)."""
    blobs = []
    for file in image_files:
        image = load_image(file)
        if image is not None:
            blobs.append(preprocess(image, meta.input_hw, meta.mean, meta.std)[0])
    return blobs


def make_reader(blobs: Sequence[np.ndarray]):
    """A CalibrationDataReader over ``blobs`` with the ``__len__`` / ``set_range`` that strided calibration uses
    (ONNX Runtime then keeps one chunk of activations in memory at a time, not all of them)."""
    from onnxruntime.quantization import CalibrationDataReader

    class BlobReader(CalibrationDataReader):
        def __init__(self) -> None:
            self.start, self.end, self.next = 0, len(blobs), 0

        def __len__(self) -> int:
            return len(blobs)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.start, self.end, self.next = start_index, end_index, start_index

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.next >= self.end:
                return None
            self.next += 1
            return {INPUT_BLOB: blobs[self.next - 1]}

    return BlobReader()


def chunk_size(count: int, largest: int = 20) -> int:
    """The largest divisor of ``count`` not above ``largest`` (strided calibration needs equal chunks)."""
    return max(d for d in range(1, min(count, largest) + 1) if count % d == 0)


class Quantizer:
    """Quantises one prepared fp32 ONNX model with ``calibration``, calibrating once (cached in ``work``)."""

    def __init__(self, prepared: Path, calibration: Calibration, blobs: Sequence[np.ndarray], work: Path) -> None:
        self.prepared, self.calibration, self.blobs, self.work = prepared, calibration, blobs, work
        self.cache = work / f"calibration-{calibration.name}.json"
        self.count = 0

    def quantize(self, out_path: Path, nodes_to_exclude: Sequence[str] = ()) -> Path:
        """Per-channel int8 weights, uint8 activations, QDQ format; ``nodes_to_exclude`` stay in float."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        quantize_static(str(self.prepared), str(out_path), make_reader(self.blobs), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod[self.calibration.method],
                        nodes_to_exclude=list(nodes_to_exclude), calibration_cache_path=str(self.cache),
                        extra_options={**dict(self.calibration.options),
                                       "CalibStridedMinMax": chunk_size(len(self.blobs))})
        return out_path

    def measure(self, nodes_to_exclude: Sequence[str], references: Sequence[np.ndarray],
                blobs: Sequence[np.ndarray], meta: ModelMeta) -> OutputError:
        """Quantise with ``nodes_to_exclude`` in float and return its output error against ``references``."""
        self.count += 1
        path = self.quantize(self.work / f"trial-{self.calibration.name}-{self.count}.onnx", nodes_to_exclude)
        try:
            return output_error(references, run_onnx(path, blobs), meta.num_classes, meta.reg_max)
        finally:
            path.unlink(missing_ok=True)


def prepare_for_quantization(fp32_path: Path, prepared: Path) -> Path:
    """ONNX Runtime's pre-processing (shape inference, graph optimisation) before calibration."""
    require_module("onnxruntime", "int8 quantisation")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    return prepared


def run_onnx(path: Path, blobs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The [N, D] output of an ONNX model for each blob, one thread (the scan compares, it does not time)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [session.run(None, {INPUT_BLOB: blob})[0][0] for blob in blobs]


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


def quantize_onnx_int8(fp32_path: Path, int8_path: Path, blobs: list[np.ndarray], meta: ModelMeta,
                       options: ExportOptions, log: Callable[[str], None] = print) -> tuple[Calibration,
                                                                                           FloatSelection | None]:
    """Write the QDQ int8 model (per-channel int8 weights, uint8 activations, the scan's layers in float);
    returns the calibration and the scan's selection."""
    import onnx

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
    return quantizer.calibration, selection
