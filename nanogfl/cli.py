"""The ``nanogfl`` command. Each subcommand imports its implementation only when it runs, so the
deployment commands (predict, demo, benchmark) work on a device without torch."""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .errors import UserError

ARCH_CHOICES = ("nanodet-plus-m", "nanodet-plus-m-1.5x", "nanodet-plus-m-0.5x")


def _size(values: list[int]) -> tuple[int, int]:
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError("--size takes S or H W")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanogfl", description="Train, evaluate, export and run NanoDet-Plus-family detectors.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. train.epochs=10 data.workers=0")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="resume from CKPT, or from OUTPUT_DIR/last.pt when given without a path")
    p.add_argument("--output-dir", help="where checkpoints and logs go (default: the config's output_dir)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.set_defaults(target="nanogfl.engine.train:run_train")

    p = sub.add_parser("val", help="COCO evaluation of a checkpoint or an exported model")
    p.add_argument("--weights", required=True, help="checkpoint (.pt), ONNX (.onnx) or ncnn (.param)")
    p.add_argument("--ann", help="COCO json (default: the checkpoint config's val set)")
    p.add_argument("--images", help="image folder (default: the checkpoint config's val set)")
    p.add_argument("--size", nargs="+", type=int, help="input size S or H W (default: the model's)")
    p.add_argument("--json", dest="json_out", help="write AP, AP50, AP75, APs, APm, APl and per-class AP here")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: library default)")
    p.add_argument("--device", default=None, help="torch device for checkpoints")
    p.set_defaults(target="nanogfl.engine.evaluate:run_val")

    p = sub.add_parser("predict", help="detect objects in an image, folder, glob or video")
    p.add_argument("--model", required=True, help="checkpoint (.pt), ONNX (.onnx) or ncnn (.param)")
    p.add_argument("--source", required=True, help="image, folder, glob pattern or video file")
    p.add_argument("--save", metavar="DIR", help="write annotated images/videos here")
    p.add_argument("--json", action="store_true", help="print detections as JSON lines")
    p.add_argument("--score", type=float, default=0.35, help="score threshold")
    p.add_argument("--size", nargs="+", type=int, help="input size S or H W (default: the model's)")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(target="nanogfl.runtime.predict:run_predict")

    p = sub.add_parser("demo", help="live detection on a webcam, video, image or folder")
    p.add_argument("--model", required=True, help="checkpoint (.pt), ONNX (.onnx) or ncnn (.param)")
    p.add_argument("--source", default="0", help="camera index, video file, image or folder")
    p.add_argument("--save", metavar="FILE", help="write the annotated stream to this video file")
    p.add_argument("--serve", type=int, metavar="PORT", help="serve the annotated stream as MJPEG over HTTP")
    p.add_argument("--host", default="0.0.0.0", help="address for --serve")
    p.add_argument("--no-window", action="store_true", help="never open a window")
    p.add_argument("--score", type=float, default=0.35)
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: until the source ends)")
    p.add_argument("--size", nargs="+", type=int, help="input size S or H W (default: the model's)")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(target="nanogfl.runtime.demo:run_demo")

    p = sub.add_parser("benchmark", help="latency (and optional COCO AP) per model, backend, threads, size")
    p.add_argument("--model", nargs="+", required=True, help="one or more .onnx / .param / .pt models")
    p.add_argument("--backend", nargs="+", choices=("ncnn", "onnxruntime", "torch"),
                   help="backends to try (default: the one each model file implies)")
    p.add_argument("--threads", nargs="+", type=int, default=[1])
    p.add_argument("--size", nargs="+", type=int, action="append",
                   help="input size S or H W; repeat the flag for several sizes")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--image", help="image to time on (default: a synthetic frame)")
    p.add_argument("--ann", help="COCO json for optional AP")
    p.add_argument("--images", help="image folder for optional AP")
    p.add_argument("--json", dest="json_out", help="write the results here")
    p.set_defaults(target="nanogfl.runtime.benchmark:run_benchmark")

    p = sub.add_parser("export", help="export a checkpoint to ONNX and/or ncnn, verified")
    p.add_argument("--weights", required=True, help="training checkpoint (.pt)")
    p.add_argument("--format", nargs="+", default=["onnx", "ncnn"], choices=("onnx", "ncnn"))
    p.add_argument("--size", nargs="+", type=int, help="input size S or H W (default: the config's)")
    p.add_argument("--out", default="export_out", help="output folder")
    p.add_argument("--fp32", action="store_true", help="ncnn weights in fp32 (default fp16)")
    p.add_argument("--int8", action="store_true", help="also write an ONNX Runtime static int8 (QDQ) model")
    p.add_argument("--calib", help="folder of calibration images for --int8")
    p.add_argument("--calib-count", type=int, default=100)
    p.add_argument("--verify-images", help="images for the parity check (default: built-in sample)")
    p.add_argument("--no-verify", action="store_true", help="skip the PyTorch/ONNX/ncnn parity check")
    p.add_argument("--name", help="file name stem (default: ARCH_HxW)")
    p.add_argument("--ann", help="COCO json: with --int8, print AP before/after quantisation")
    p.add_argument("--images", help="image folder of --ann")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for the checks (0: library default)")
    p.set_defaults(target="nanogfl.exporter.cli:run_export")

    p = sub.add_parser("import", help="convert an official NanoDet-Plus ncnn/ONNX model into a checkpoint")
    p.add_argument("src", help=".param (with .bin beside it) or .onnx file")
    p.add_argument("--arch", choices=ARCH_CHOICES, default="nanodet-plus-m")
    p.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--size", nargs="+", type=int, default=[416], help="input size stored in the checkpoint")
    p.add_argument("--class-names", help="text file, one class name a line (default: COCO's 80)")
    p.add_argument("--bn-images", help="images used to rebuild BatchNorm statistics (default: none)")
    p.set_defaults(target="nanogfl.importer.cli:run_import")

    p = sub.add_parser("info", help="parameters and MACs of the deploy model (BN folded, aux dropped)")
    p.add_argument("config", help="YAML config or checkpoint")
    p.add_argument("--size", nargs="+", type=int, help="input size S or H W (default: the config's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(target="nanogfl.engine.info:run_info")
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    args = build_parser().parse_args(argv)
    if getattr(args, "size", None) and not isinstance(args.size[0], list):
        try:
            args.size = _size(args.size)
        except argparse.ArgumentTypeError as e:
            print(f"nanogfl {args.command}: error: {e}", file=sys.stderr)
            return 2
    module_name, func_name = args.target.split(":")
    run = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as e:
        print(f"nanogfl {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
