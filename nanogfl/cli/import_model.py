"""``nanogfl import --model SRC --out CKPT``: a published NanoDet ncnn/ONNX model, or an mmdetection GFL
checkpoint (.pth), -> a nanogfl checkpoint."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..contract import ARCH_NAMES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="convert an official NanoDet ncnn/ONNX model or an mmdetection GFL .pth "
                                      "into a checkpoint")
    p.add_argument("src", nargs="?", help=argparse.SUPPRESS)  # the old positional form, same as --model
    p.add_argument("--model", "--weights", dest="model", metavar="SRC",
                   help=".param (with .bin beside it) or .onnx file (NanoDet), or an mmdetection 3.x GFL .pth")
    p.add_argument("--arch", choices=ARCH_NAMES, default="nanodet-plus-m",
                   help="the architecture of the file (a .pth: gfl-r50, gfl-r101 or gfl-x101-32x4d)")
    p.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write (.pt)")
    p.add_argument("--size", nargs="+", type=int, metavar="N",
                   help="input size S or H W stored in the checkpoint (default 416; a .pth: 800 1344)")
    p.add_argument("--class-names", help="text file, one class name a line (default: COCO's 80)")
    p.add_argument("--bn-images", help="images used to rebuild BatchNorm statistics (default: none)")
    p.set_defaults(run=run, torch_extra="export")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..importer.pipeline import import_model, read_class_names
    from .common import input_size

    src = args.model or args.src
    if not src or (args.model and args.src):
        raise UserError("give the source model once: --model FILE.param or FILE.onnx")
    class_names = read_class_names(args.class_names) if args.class_names else None
    if Path(src).suffix in (".pth", ".pt"):
        from ..importer.mmdet import import_mmdet
        import_mmdet(src, args.out, args.arch, input_size(args.size) or (800, 1344), class_names)
        return 0
    import_model(src, args.out, args.arch, input_size(args.size) or (416, 416), class_names, args.bn_images)
    return 0
