"""``nanogfl export``: argparse namespace -> ExportOptions -> export_checkpoint, with a short summary.
Imports torch only when it runs, so the command reports a missing PyTorch in one line."""
from __future__ import annotations

import argparse

from ..errors import UserError


def run_export(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        raise UserError("nanogfl export needs PyTorch: pip install torch==2.13.0 'nanogfl[export]'") from None
    from .pipeline import ExportOptions, export_checkpoint

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    options = ExportOptions(formats=tuple(dict.fromkeys(args.format)), input_hw=args.size, fp16=not args.fp32,
                            name=args.name, verify=not args.no_verify, verify_images=args.verify_images,
                            int8=args.int8, calib=args.calib, calib_count=args.calib_count, ann=args.ann,
                            images=args.images, threads=args.threads)
    result = export_checkpoint(args.weights, args.out, options)
    print("wrote " + ", ".join(str(f) for f in result.files))
    return 0
