"""``nanogfl train CONFIG``: train from a YAML config (one process, or one rank of ``torchrun``)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. train.epochs=10 data.workers=0")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="resume from CKPT, or from OUT/last.pt when given without a path")
    p.add_argument("--out", "--output-dir", dest="out", metavar="DIR",
                   help="where checkpoints and logs go (default: the config's output_dir)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.set_defaults(run=run, torch_extra="train")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..engine.train import train

    cfg = load_config(args.config, args.overrides)
    if args.out:
        cfg.output_dir = args.out
    train(cfg, device=args.device, resume=args.resume)
    return 0
