"""``nanogfl peer-meta --family F --model FILE``: write a published peer model's metadata json beside it."""
from __future__ import annotations

import argparse

from ..runtime.peers.templates import FAMILY_METAS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("peer-meta", help="write the metadata json another detector family's model needs "
                                         "(YOLOX, YOLO-FastestV2, PicoDet), so val / benchmark / predict run it")
    p.add_argument("--family", required=True, choices=tuple(FAMILY_METAS),
                   help="yolox: YOLOX-Nano ONNX (416, letterbox); yolo_fastestv2: the author's ncnn files (352); "
                        "picodet: PaddleDetection PicoDet-S ncnn (320)")
    p.add_argument("--model", required=True, help="the .onnx / .param file; the json is written beside it")
    p.add_argument("--size", nargs="+", type=int, metavar="N", help="input size S or H W, if not the family's")
    p.add_argument("--force", action="store_true", help="overwrite an existing json")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from ..errors import UserError
    from ..runtime.metadata import metadata_path
    from .common import input_size

    model = Path(args.model)
    if not model.is_file():
        raise UserError(f"model not found: {model}")
    target = metadata_path(model)
    if target.exists() and not args.force:
        raise UserError(f"{target} exists; pass --force to overwrite it")
    meta = FAMILY_METAS[args.family]()
    if args.size:
        meta = dataclasses.replace(meta, input_hw=input_size(args.size))
    meta.save(target)
    print(f"wrote {target} ({meta.arch}, layout {meta.layout}, input {meta.input_hw[0]}x{meta.input_hw[1]})")
    return 0
