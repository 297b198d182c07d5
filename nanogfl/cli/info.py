"""``nanogfl info CONFIG`` or ``--model CKPT``: parameters and MACs of the deploy model."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_json, add_size


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameters and MACs of the deploy model (BN folded, aux dropped)")
    p.add_argument("config", nargs="?", help="YAML config (a .pt checkpoint here works like --model)")
    p.add_argument("--model", "--weights", dest="model", metavar="CKPT", help="checkpoint (.pt)")
    add_size(p, "input size S or H W (default: the config's)")
    add_json(p, "the counts")
    p.set_defaults(run=run, torch_extra="train")


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_model
    from ..config import load_config
    from ..errors import UserError
    from ..fileio import write_json
    from ..model.build import build_detector
    from ..model.complexity import model_info
    from ..model.variants import SERVER_HW
    from .common import input_size

    path = args.model or args.config
    if not path or (args.model and args.config):
        raise UserError("give one of CONFIG or --model CKPT")
    if Path(path).suffix == ".pt":
        model, cfg, class_names = load_model(path)
        num_classes = len(class_names)
    else:
        cfg = load_config(path)
        names = cfg.data.classes or cfg.data.class_names  # the classes the model would be trained on
        num_classes = len(names) if names else 80
        model = build_detector(cfg.model, num_classes, with_aux=False)
    # the server-size detectors' MACs are published at their test scale, 1333x800 (not a multiple of 32)
    default_hw = SERVER_HW if cfg.model.backbone.name == "resnet" else cfg.input_hw
    input_hw = input_size(args.size) or default_hw
    info = {"arch": cfg.model.arch, "num_classes": num_classes, **model_info(model, input_hw)}
    if args.json:
        write_json(args.json, info)
    else:
        print(f"{info['arch']} ({num_classes} classes) at {input_hw[0]}x{input_hw[1]}: "
              f"{info['params_m']:.3f}M parameters, {info['gmacs']:.3f} GMACs ({info['gflops']:.3f} GFLOPs), "
              f"BN folded, aux branch dropped; {info['trained_params']:,} parameters as trained (BN unfolded)")
    return 0
