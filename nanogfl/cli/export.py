"""``nanogfl export --model CKPT``: ONNX and/or ncnn (optionally int8) files, each verified against PyTorch."""
from __future__ import annotations

import argparse

from ..contract import EXPORT_FORMATS
from ..exporter.int8_methods import CALIBRATION_NAMES
from .common import add_model, add_size, add_threads


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX and/or ncnn, verified")
    add_model(p, "training checkpoint (.pt)")
    p.add_argument("--format", nargs="+", default=list(EXPORT_FORMATS), choices=EXPORT_FORMATS)
    add_size(p, "input size S or H W (default: the config's)")
    p.add_argument("--out", default="export_out", metavar="DIR", help="output folder")
    p.add_argument("--fp32", action="store_true", help="ncnn weights in fp32 (default fp16)")
    p.add_argument("--int8", action="store_true",
                   help="also write int8 models of each --format (ONNX Runtime QDQ / ncnn int8)")
    p.add_argument("--calib", help="folder of calibration images for --int8")
    p.add_argument("--calib-count", type=int, default=100, help="calibration images used (default 100)")
    p.add_argument("--calib-method", default="percentile", choices=CALIBRATION_NAMES,
                   help="ONNX int8: how activation ranges are calibrated (default percentile, the best measured "
                        "on NanoDet-Plus-m; auto: each method is tried and the one with the smallest output error "
                        "vs fp32 is kept, slow)")
    p.add_argument("--max-float-layers", type=int, default=8, metavar="N",
                   help="layer groups the int8 sensitivity scan may keep in float (default 8; 0: no scan)")
    p.add_argument("--verify-images", help="images for the parity check (default: the checkpoint's val images "
                                           "when they are here, else a synthetic frame)")
    p.add_argument("--no-verify", action="store_true", help="skip the PyTorch/ONNX/ncnn parity check")
    p.add_argument("--name", help="file name stem (default: ARCH_HxW, ARCH-gflv2_HxW with DGQP)")
    p.add_argument("--dynamic", action="store_true",
                   help="ONNX with a free input size, for keep-ratio models (the server-size GFL): each image is "
                        "resized keep-ratio and padded to a multiple of 32, as in training (ONNX only)")
    p.add_argument("--ann", help="COCO json: with --int8, print AP before/after quantisation")
    p.add_argument("--images", help="image folder of --ann")
    add_threads(p)
    p.set_defaults(run=run, torch_extra="export")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..exporter.pipeline import ExportOptions, export_checkpoint
    from .common import input_size

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    formats = ["onnx"] if args.dynamic and args.format == list(EXPORT_FORMATS) else args.format
    options = ExportOptions(formats=tuple(dict.fromkeys(formats)), input_hw=input_size(args.size),
                            fp16=not args.fp32, name=args.name, verify=not args.no_verify,
                            verify_images=args.verify_images, int8=args.int8, calib=args.calib,
                            calib_count=args.calib_count, calib_method=args.calib_method,
                            max_float_layers=args.max_float_layers, ann=args.ann, images=args.images,
                            threads=args.threads, dynamic=args.dynamic)
    result = export_checkpoint(args.model, args.out, options)
    print("wrote " + ", ".join(str(f) for f in result.files))
    return 0
