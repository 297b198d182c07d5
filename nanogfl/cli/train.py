"""``nanogfl train CONFIG``: train from a YAML config (one process, or one rank of ``torchrun``)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. train.epochs=10 data.workers=0")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue the run in OUT from OUT/last.pt, or from CKPT (in place when CKPT lies in OUT; "
                        "otherwise the run folder is chosen as for a new run)")
    p.add_argument("--out", "--output-dir", dest="out", metavar="DIR",
                   help="the run folder (default: the config's output_dir); when it holds another run, a new run "
                        "goes to DIR-2, DIR-3, ...")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in OUT (its checkpoints, metrics.csv, config.yml and TensorBoard logs) "
                        "instead of starting OUT-2")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.set_defaults(run=run, torch_extra="train")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..engine.train import train

    cfg = load_config(args.config, args.overrides)
    if args.out:
        cfg.output_dir = args.out
    train(cfg, device=args.device, resume=args.resume, overwrite=args.overwrite)
    return 0
