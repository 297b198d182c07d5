"""``nanogfl info``: parameters and MACs of the deploy model."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import load_config
from ..model.complexity import model_info
from .checkpoint import build_model, load_model


def run_info(args: argparse.Namespace) -> int:
    path = Path(args.config)
    if path.suffix == ".pt":
        model, cfg, class_names = load_model(path)
        num_classes = len(class_names)
    else:
        cfg = load_config(path)
        num_classes = len(cfg.data.class_names) if cfg.data.class_names else 80
        model = build_model(cfg, num_classes, with_aux=False)
    input_hw = tuple(args.size) if args.size else cfg.input_hw
    info = {"arch": cfg.model.arch, "num_classes": num_classes, **model_info(model, input_hw)}
    if args.json:
        print(json.dumps(info))
    else:
        print(f"{info['arch']} ({num_classes} classes) at {input_hw[0]}x{input_hw[1]}: "
              f"{info['params_m']:.3f}M parameters, {info['gmacs']:.3f} GMACs ({info['gflops']:.3f} GFLOPs), "
              f"BN folded, aux branch dropped")
    return 0
