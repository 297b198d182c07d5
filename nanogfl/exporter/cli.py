"""``nanogfl export``: argparse namespace -> ExportOptions -> export_checkpoint, with a short summary."""
from __future__ import annotations

import argparse

from .pipeline import ExportOptions, export_checkpoint


def options_from_args(args: argparse.Namespace) -> ExportOptions:
    return ExportOptions(formats=tuple(dict.fromkeys(args.format)), input_hw=args.size, fp16=not args.fp32,
                         name=args.name, verify=not args.no_verify,
                         verify_images=args.verify_images, int8=args.int8, calib=args.calib,
                         calib_count=args.calib_count, ann=args.ann,
                         images=args.images, threads=args.threads)


def run_export(args: argparse.Namespace) -> int:
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    result = export_checkpoint(args.weights, args.out, options_from_args(args))
    print("wrote " + ", ".join(str(f) for f in result.files))
    return 0
