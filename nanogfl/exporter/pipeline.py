"""One export run: checkpoint -> staged ONNX / ncnn / int8 files + metadata -> parity check -> files moved into
the output folder. Everything is written to a staging folder inside the output folder first, so a failure at any
step (converter error, failed parity check, Ctrl-C) leaves no model behind, and a success replaces files whole."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..checkpoint import load_model, model_meta
from ..contract import EXPORT_FORMATS, check_input_size
from ..errors import UserError
from ..image_io import list_images
from ..model.deploy import DeployModel, deploy_model
from ..model.detector import GFLDetector
from ..runtime.metadata import ModelMeta, metadata_path
from .common import ExportError, require_module
from .int8_methods import CALIBRATION_NAMES
from .verify import FP16_TOLERANCE, FP32_TOLERANCE, ParityResult, Tolerance, load_verify_images, verify_exports


@dataclass
class ExportOptions:
    """What ``export_checkpoint`` writes and how it checks it (the ``nanogfl export`` flags)."""
    formats: tuple[str, ...] = EXPORT_FORMATS
    input_hw: tuple[int, int] | None = None  # None: the checkpoint config's size
    fp16: bool = True  # ncnn weights stored as half floats
    name: str | None = None  # file stem; default "<arch>_<H>x<W>"
    verify: bool = True
    verify_images: str | None = None  # None: the checkpoint's val images if they are here, else a synthetic frame
    int8: bool = False
    calib: str | None = None
    calib_count: int = 100
    calib_method: str = "percentile"  # int8_methods.CALIBRATION_NAMES; auto: each tried, smallest error kept
    scan_images: int = 32  # calibration images the int8 output error is measured on
    max_float_layers: int = 8  # layer groups the sensitivity scan may keep in float (0: no scan, all int8)
    # stop keeping layers in float once the error is this fraction of all-int8's: on NanoDet-Plus-m 416 (ONNX) 0.48
    # (stem + output tail) gave AP -0.008, 0.43 (one more) +0.000, 0.38 (10 groups) -0.001
    float_target: float = 0.4
    ann: str | None = None  # COCO json + image folder: AP before/after int8
    images: str | None = None
    threads: int = 0  # for the parity check and the int8 latency numbers (0: library default)
    dynamic: bool = False  # ONNX with any input size: a keep-ratio model takes each image at its own size


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)  # installed files, models first
    parity: list[ParityResult] = field(default_factory=list)
    # --int8: calibration_images, and per format ("onnx", "ncnn") the calibration, float_layers, AP and latency
    int8: dict | None = None


def _check_options(options: ExportOptions) -> None:
    """Fail before any work: unknown format, missing converter packages, missing calibration images."""
    unknown = [f for f in options.formats if f not in EXPORT_FORMATS]
    if unknown or not options.formats:
        raise UserError(f"--format must be one or more of {', '.join(EXPORT_FORMATS)}, got {list(options.formats)}")
    if options.input_hw is not None:
        check_input_size(options.input_hw, "--size")
    if "onnx" in options.formats:
        require_module("onnx", "ONNX export")
        require_module("onnxsim", "ONNX export (graph simplification)")
    if "ncnn" in options.formats:
        require_module("pnnx", "ncnn export")
    if (options.verify and "onnx" in options.formats) or options.int8:
        require_module("onnxruntime", "checking the ONNX model")
    if options.verify and "ncnn" in options.formats:
        require_module("ncnn", "checking the ncnn model")
    if options.name is not None and (not options.name or Path(options.name).name != options.name):
        raise UserError(f"--name must be a plain file name stem (no folders), got {options.name!r}")
    if options.int8:
        if options.calib_count < 1:
            raise UserError(f"--calib-count must be at least 1, got {options.calib_count}")
        if options.calib_method not in CALIBRATION_NAMES:
            raise UserError(f"--calib-method must be one of {', '.join(CALIBRATION_NAMES)}, "
                            f"got {options.calib_method!r}")
        if options.max_float_layers < 0:
            raise UserError(f"--max-float-layers must be 0 or more, got {options.max_float_layers}")
        if not options.calib:
            raise UserError("--int8 needs --calib DIR, a folder of images like the ones the model will see")
        list_images(options.calib)
    if options.dynamic and (options.formats != ("onnx",) or options.int8 or options.input_hw):
        raise UserError("--dynamic exports ONNX only (pnnx fixes ncnn's input size), without --int8 or --size")
    if bool(options.ann) != bool(options.images):
        raise UserError("--ann and --images go together (COCO json and its image folder)")


def export_checkpoint(weights: str | Path, out_dir: str | Path, options: ExportOptions | None = None,
                      log: Callable[[str], None] = print) -> ExportResult:
    """Export the checkpoint ``weights`` into ``out_dir``: the deploy graph (BN folded, aux dropped, sigmoid on
    the class columns) as ONNX and/or ncnn plus one metadata json, each file checked against PyTorch on real
    images before anything is moved into place.

    >>> result = export_checkpoint("runs/x/best.pt", "export_out", ExportOptions(formats=("onnx", "ncnn")))
    >>> [p.name for p in result.files]  # ['nanodet-plus-m_320x320.bin', '...onnx', '...param', '...json']
    >>> result.parity[0].line()         # "onnxruntime  probs 7.6e-07  box logits ... ok"
    """
    options = options or ExportOptions()
    _check_options(options)
    model, cfg, class_names = load_model(weights)
    input_hw = check_input_size(options.input_hw or cfg.input_hw, "--size")
    variant = cfg.model.arch + ("-gflv2" if cfg.model.head.quality == "dgqp" else "")
    if options.dynamic and not cfg.model.keep_ratio_scale:
        raise UserError(f"{weights}: --dynamic is for keep-ratio models (model.keep_ratio_scale); this one takes "
                        f"{input_hw[0]}x{input_hw[1]}")
    name = options.name or f"{variant}_{'dynamic' if options.dynamic else f'{input_hw[0]}x{input_hw[1]}'}"
    meta = model_meta(cfg, class_names, None if options.dynamic else input_hw)  # dynamic: keep-ratio inputs
    # The parity check opens the ncnn file through the metadata, so it verifies this precision, and the runtime
    # uses it unless told otherwise. fp32: on x86, where exports are made, ncnn has no fp16 arithmetic to verify.
    meta.ncnn_precision = "fp32"
    meta.extra = {"source": Path(weights).name, **({"ncnn_weights": "fp16" if options.fp16 else "fp32"}
                                                   if "ncnn" in options.formats else {})}
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; give a folder")
    created_out_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".nanogfl-export-", dir=out_dir))
    try:
        result = _export_staged(model, meta, name, staging, options, cfg.data.val.images, log)
        result.files = _install(staging, out_dir)
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created_out_dir and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()


def _export_staged(model: GFLDetector, meta: ModelMeta, name: str, staging: Path, options: ExportOptions,
                   val_images: str, log: Callable[[str], None]) -> ExportResult:
    deploy = deploy_model(model)
    input_hw = meta.input_hw
    checks: list[tuple[str, Path, Tolerance | None]] = []
    if "onnx" in options.formats:
        from .onnx_export import export_onnx

        started = time.perf_counter()
        onnx_path = export_onnx(deploy, input_hw, staging / f"{name}.onnx", dynamic=options.dynamic)
        log(f"onnx: {onnx_path.name} ({time.perf_counter() - started:.1f} s)")
        checks.append(("onnxruntime", onnx_path, FP32_TOLERANCE))
    if "ncnn" in options.formats:
        from .ncnn_export import export_ncnn

        started = time.perf_counter()
        param_path, _ = export_ncnn(deploy, input_hw, staging / f"{name}.param", fp16=options.fp16)
        precision = "fp16" if options.fp16 else "fp32"
        log(f"ncnn: {param_path.name} + .bin, {precision} weights ({time.perf_counter() - started:.1f} s)")
        checks.append((f"ncnn {precision}", param_path, FP16_TOLERANCE if options.fp16 else FP32_TOLERANCE))
    meta.save(metadata_path(staging / f"{name}.onnx"))  # one file serves model.onnx and model.param

    result = ExportResult()
    # BN not folded, so the check covers the folding too; ``deploy`` is a copy, so the loaded model itself serves
    reference = deploy_model(model, fold_batchnorm=False, inplace=True)
    images = None
    if options.verify:
        images, where = load_verify_images(options.verify_images, val_images)
        at = "each image's keep-ratio size" if meta.keep_ratio_scale else f"{input_hw[0]}x{input_hw[1]}"
        log(f"verify on {where} at {at}: max |diff| vs PyTorch (probs / box logits)"
            + (f"; ncnn in {meta.ncnn_precision} arithmetic (the metadata's ncnn_precision)"
               if "ncnn" in options.formats else ""))
        result.parity = _check(reference, checks, images, options.threads, log)
    if options.int8:
        with tempfile.TemporaryDirectory(prefix="nanogfl-int8-") as work:
            result.int8 = _export_int8(deploy, meta, name, staging, Path(work), options, log)
        if images is not None:
            int8_checks = [(f"{fmt} int8", staging / f"{name}.int8{suffix}", None)
                           for fmt, suffix in (("onnx", ".onnx"), ("ncnn", ".param")) if fmt in options.formats]
            result.parity += _check(reference, int8_checks, images, options.threads, log)
    return result


def _export_int8(deploy: DeployModel, meta: ModelMeta, name: str, staging: Path, work: Path, options: ExportOptions,
                 log: Callable[[str], None]) -> dict:
    """int8 of each exported format: ONNX from the staged fp32 ONNX; ncnn from an fp32-weight ncnn export made in
    ``work`` (the staged one may hold fp16 weights), each compared with the fp32 file it came from."""
    from .int8 import Int8Pair, export_int8

    pairs = []
    if "onnx" in options.formats:
        pairs.append(Int8Pair("onnx", staging / f"{name}.onnx", staging / f"{name}.int8.onnx"))
    if "ncnn" in options.formats:
        from .ncnn_export import export_ncnn

        fp32_param, _ = export_ncnn(deploy, meta.input_hw, work / f"{name}.fp32.param", fp16=False)
        meta.save(metadata_path(fp32_param))
        pairs.append(Int8Pair("ncnn", fp32_param, staging / f"{name}.int8.param"))
    return export_int8(pairs, meta, options, log)


def _check(reference: DeployModel, checks: list[tuple[str, Path, Tolerance | None]], images: list,
           threads: int, log: Callable[[str], None]) -> list[ParityResult]:
    parity = verify_exports(reference, checks, images, threads)
    for line in parity:
        log(line.line())
    failed = [p for p in parity if not p.ok]
    if failed:
        worst = failed[0]
        raise ExportError(f"verification failed: {worst.label} differs from PyTorch by {worst.probs_diff:.1e} "
                          f"on probabilities / {worst.box_logits_diff:.1e} on box logits (tolerance "
                          f"{worst.tolerance}); nothing was written (--no-verify keeps the files)")
    return parity


def _install(staging: Path, out_dir: Path) -> list[Path]:
    """Move the staged files into ``out_dir``: weights before the graph that names them, metadata last."""
    order = {".bin": 0, ".onnx": 1, ".param": 2, ".json": 3}
    installed = []
    for staged in sorted(staging.iterdir(), key=lambda p: (order.get(p.suffix, 4), p.name)):
        target = out_dir / staged.name
        os.replace(staged, target)
        installed.append(target)
    return sorted(installed, key=lambda p: (p.suffix == ".json", p.name))
