"""``nanogfl benchmark``: latency per model x backend x threads x input size (and optional COCO AP), in one run.

Every configuration is opened first, then timed in interleaved rounds, so a slow-down of the machine hits all of
them alike and the ratios between rows are fair. Per frame we time the three pipeline stages (preprocess,
inference, postprocess) and, separately, the bare network forward.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import write_json
from ..image_io import load_image
from ..runtime.backends import Backend
from ..runtime.detector import Detector
from ..runtime.ncnn_support import ncnn_has_fp16
from ..runtime.preprocess import prepare_input

STAGES = ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms", "bare_forward_ms")


@dataclass
class Setting:
    model: str
    backend: str
    threads: int
    precision: str  # the arithmetic asked for: "fp32" or "fp16" (ncnn); ONNX Runtime and PyTorch: "fp32"
    input_hw: tuple[int, int]
    size_mb: float


@dataclass
class Result:
    setting: Setting
    stats: dict[str, dict[str, float]]  # stage -> {"median", "p90"}
    fps: float
    postprocess_share: float  # postprocess (decode + NMS + box mapping) / inference
    pipeline_over_bare: float  # whole frame -> boxes / bare network forward
    detections: int
    accuracy: dict[str, float] = field(default_factory=dict)


class Run:
    """One configuration being measured."""

    def __init__(self, backend: Backend, threads: int) -> None:
        self.backend = backend
        self.detector = Detector(backend)
        self.setting = Setting(str(backend.path), backend.name, threads, backend.precision,
                               tuple(backend.meta.input_hw), backend.size_mb)
        self.samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
        self.detections = 0
        self.accuracy: dict[str, float] = {}

    def frame(self, image: np.ndarray, record: bool = True) -> None:
        detections = self.detector(image)
        blob, _ = prepare_input(image, self.backend.meta)
        bare_forward = self.backend.run if self.backend.meta.layout == "gfl" else self.backend.raw_outputs
        start = time.perf_counter()
        bare_forward(blob)
        bare_ms = (time.perf_counter() - start) * 1e3
        if record:
            timing = self.detector.last_timing.as_dict()
            for stage in STAGES[:4]:
                self.samples[stage].append(timing[stage])
            self.samples["bare_forward_ms"].append(bare_ms)
            self.detections = len(detections)

    def result(self) -> Result:
        stats = {stage: {"median": float(np.median(v)), "p90": float(np.percentile(v, 90))}
                 for stage, v in self.samples.items()}
        median = {stage: s["median"] for stage, s in stats.items()}
        return Result(self.setting, stats, 1000.0 / median["total_ms"],
                      median["postprocess_ms"] / median["inference_ms"],
                      median["total_ms"] / median["bare_forward_ms"], self.detections, dict(self.accuracy))


def benchmark_image(path: str | None) -> tuple[np.ndarray, str]:
    if path is None:
        # A synthetic 640x480 frame: smooth gradients plus a few flat shapes. A real photo (--image) gives a
        # realistic number of candidate boxes, and so a realistic postprocess time.
        ys, xs = np.mgrid[0:480, 0:640].astype(np.float32)
        image = np.stack((xs / 640 * 255, ys / 480 * 255, (xs + ys) / 1120 * 255), axis=2).astype(np.uint8)
        for i, (x, y) in enumerate(((80, 60), (300, 200), (450, 80))):
            image[y:y + 160, x:x + 120] = (40 * i, 200 - 50 * i, 90 + 60 * i)
        return image, "synthetic 640x480"
    image = load_image(path)
    if image is None:
        raise UserError(f"{path}: cannot read the benchmark image")
    return image, path


def measure(runs: list[Run], image: np.ndarray, warmup: int, frames: int, rounds: int = 5) -> None:
    """Warm every run up, then time ``frames`` frames per run in interleaved rounds."""
    for run in runs:
        for _ in range(warmup):
            run.frame(image, record=False)
    rounds = max(1, min(rounds, frames))
    for round_index in range(rounds):
        per_round = frames // rounds + (1 if round_index < frames % rounds else 0)
        for run in runs:
            if len(runs) > 1:
                run.frame(image, record=False)  # let caches and thread pools settle after the switch
            for _ in range(per_round):
                run.frame(image)


def evaluate_accuracy(runs: list[Run], ann: str, images: str) -> None:
    """COCO AP per (model, backend, precision, size) with the evaluation settings (score > 0.05, NMS 0.6,
    top 100)."""
    from ..evaluation import evaluate_coco

    done: dict[tuple, dict[str, float]] = {}
    for run in runs:
        key = (run.setting.model, run.setting.backend, run.setting.precision, run.setting.input_hw)
        if key not in done:
            metrics = evaluate_coco(run.backend, ann, images)  # its defaults are the evaluation settings
            done[key] = {k: float(metrics[k]) for k in ("AP", "AP50")}
        run.accuracy = done[key]


def format_table(results: list[Result]) -> str:
    header = ("model", "backend", "prec", "thr", "size", "pre ms", "infer ms (p90)", "post ms", "total ms (p90)", "FPS",
              "vs 1st", "bare ms", "post/inf", "pipe/bare", "MB", "AP", "AP50")
    rows = []
    for r in results:
        s, st = r.setting, r.stats
        rows.append((Path(s.model).name, s.backend, s.precision, str(s.threads or "dflt"),
                     f"{s.input_hw[0]}x{s.input_hw[1]}",
                     f"{st['preprocess_ms']['median']:.2f}",
                     f"{st['inference_ms']['median']:.2f} ({st['inference_ms']['p90']:.2f})",
                     f"{st['postprocess_ms']['median']:.2f}",
                     f"{st['total_ms']['median']:.2f} ({st['total_ms']['p90']:.2f})", f"{r.fps:.1f}",
                     f"{r.fps / results[0].fps:.2f}x", f"{st['bare_forward_ms']['median']:.2f}",
                     f"{100 * r.postprocess_share:.1f}%", f"{r.pipeline_over_bare:.3f}", f"{s.size_mb:.2f}",
                     f"{r.accuracy['AP']:.3f}" if r.accuracy else "-",
                     f"{r.accuracy['AP50']:.3f}" if r.accuracy else "-"))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def environment() -> dict:
    info = {"machine": platform.machine(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        info["cpus_allowed"] = sorted(os.sched_getaffinity(0))
    for package in ("numpy", "cv2", "onnxruntime", "ncnn"):
        module = sys.modules.get(package)
        if module is not None:
            info[package] = getattr(module, "__version__", "?")
    if "ncnn" in sys.modules:
        info["ncnn_fp16_arithmetic"] = ncnn_has_fp16()  # False: ncnn's fp16 rows compute in fp32 on this CPU
    return info


def precision_note(results: list[Result]) -> str | None:
    """What ncnn's fp16 rows really computed in on this CPU."""
    if not any(r.setting.backend == "ncnn" and r.setting.precision == "fp16" for r in results):
        return None
    if ncnn_has_fp16():
        return "prec fp16: ncnn stores and computes in fp16 on this CPU (ARMv8.2 asimdhp)"
    return "prec fp16: this CPU has no ARMv8.2 fp16 arithmetic, so ncnn computed in fp32 anyway"


def benchmark(backends: list[tuple[Backend, int]], image: np.ndarray, image_name: str, warmup: int = 10,
              runs: int = 50, ann: str | None = None, images: str | None = None,
              json_out: str | None = None) -> list[Result]:
    """Time every opened ``(backend, threads)`` pair on ``image`` in interleaved rounds, optionally score COCO AP
    on ``ann`` + ``images``, print the table and write the report to ``json_out`` (``-``: stdout)."""
    if runs < 1 or warmup < 0:
        raise UserError("--runs must be >= 1 and --warmup >= 0")
    if bool(ann) != bool(images):
        raise UserError("--ann and --images go together (COCO json and its image folder)")
    measured = [Run(backend, threads) for backend, threads in backends]
    print(f"timing {len(measured)} configuration(s) on {image_name}: {warmup} warm-up + {runs} timed frames "
          f"each, interleaved", file=sys.stderr, flush=True)
    measure(measured, image, warmup, runs)
    if ann and images:
        evaluate_accuracy(measured, ann, images)
    results = [run.result() for run in measured]
    table_out = sys.stderr if json_out == "-" else sys.stdout
    print(format_table(results), file=table_out)
    print("pre/infer/post: median ms per stage of frame -> boxes; bare: the network forward alone; "
          "post/inf: decode + NMS as a share of inference; pipe/bare: whole pipeline / bare forward; "
          "vs 1st: FPS relative to the first row", file=table_out)
    note = precision_note(results)
    if note:
        print(note, file=table_out)
    if json_out:
        report = {"environment": environment(), "image": image_name, "warmup": warmup, "runs": runs,
                  "results": [{**asdict(r.setting), **{k: v for k, v in asdict(r).items() if k != "setting"}}
                              for r in results]}
        write_json(json_out, report)
        if json_out != "-":
            print(f"wrote {json_out}", file=sys.stderr)
    return results
