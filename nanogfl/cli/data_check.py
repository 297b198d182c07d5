"""``nanogfl data-check CONFIG``: what training would see of the config's datasets, and a class histogram."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data-check", help="summarise the config's train/val data and plot a class histogram",
                       description="Print what training prints at start for the train and val sets (images, "
                                   "boxes, images without boxes, missing images, label files without an image, "
                                   "boxes smaller than the finest stride at the input size, boxes per class) and "
                                   "write class_histogram.png. Exit status 2 when the training set has no box.")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. data.train.ann=labels/")
    p.add_argument("--out", metavar="DIR", help="where class_histogram.png goes (default: the config's output_dir)")
    add_json(p, "the summaries")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.data_check import data_check
    from ..config import load_config
    from ..data.summary import require_boxes
    from ..fileio import write_json

    cfg = load_config(args.config, args.overrides)
    summaries = data_check(cfg, Path(args.out) if args.out else None, show=args.json != "-")
    if args.json:
        write_json(args.json, [s.to_dict() for s in summaries])
    require_boxes(summaries[0])  # the line training would stop with
    return 0
