"""``nanogfl val --model M``: COCO evaluation of a checkpoint, ONNX or ncnn model."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..contract import DATASET_FORMATS
from .common import add_device, add_json, add_model, add_precision, add_size, add_threads


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("val", help="COCO evaluation of a checkpoint or an exported model")
    add_model(p, "checkpoint (.pt), ONNX (.onnx) or ncnn (.param); another family's model (YOLOX, "
                 "YOLO-FastestV2, PicoDet) with the json of `nanogfl peer-meta` beside it")
    p.add_argument("--ann", help="annotations: COCO json, VOC xml folder (or ImageSets list), YOLO txt folder "
                                 "(default: the val set of --config, else of the checkpoint's config)")
    p.add_argument("--images", help="image folder of --ann")
    p.add_argument("--format", default="coco", choices=DATASET_FORMATS, help="format of --ann")
    p.add_argument("--config", help="a training config whose data.val set (and eval settings) to use")
    p.add_argument("--out", help="folder for pr_curves.png and confusion_matrix.png (needs matplotlib)")
    add_size(p)
    add_json(p, "AP, AP50, AP75, APs, APm, APl and per-class AP")
    add_threads(p)
    add_precision(p)
    add_device(p)
    p.add_argument("--batch", type=int, default=1,
                   help="images per forward pass for a checkpoint (.pt), padded to the largest (default: %(default)s; "
                        "e.g. 16 on a GPU)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..config import EvalConfig
    from ..errors import UserError
    from ..evaluation import evaluate_coco
    from ..fileio import write_json
    from .common import input_size, open_model_file, require_torch

    model = Path(args.model)
    if not model.exists():
        raise UserError(f"model not found: {model}")
    settings, dataset, class_names = EvalConfig(), None, None
    cfg = None
    if args.config:
        from ..config import load_config
        cfg = load_config(args.config)
    elif model.suffix == ".pt":  # the checkpoint knows its val set and evaluation settings
        require_torch(model)
        from ..checkpoint import checkpoint_config, read_checkpoint

        cfg = checkpoint_config(read_checkpoint(model), model)
    if cfg is not None:
        settings = cfg.eval
        if cfg.data.val.ann:  # read as the training run read it
            dataset, class_names = (cfg.data.val.format, cfg.data.val.ann, cfg.data.val.images), cfg.data.class_names
    if args.ann:
        if not args.images:
            raise UserError("--ann needs --images (the folder of the images it lists)")
        dataset, class_names = (args.format, args.ann, args.images), None
    if dataset is None:
        raise UserError("no evaluation data: pass --ann FILE --images DIR")
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    backend = open_model_file(model, threads=args.threads, input_hw=input_size(args.size),
                              precision=args.precision, device=args.device)
    size = ("keep-ratio " + "x".join(map(str, backend.meta.keep_ratio_scale)) if backend.meta.keep_ratio_scale
            else f"{backend.meta.input_hw[0]}x{backend.meta.input_hw[1]}")
    print(f"evaluating {model} at {size} ({backend.name} {backend.precision}"
          f"{f' on {args.device}' if args.device != 'cpu' else ''}) on {dataset[1]}")
    if args.batch > 1 and backend.name == "torch":
        from ..engine.evaluate import evaluate_backend_batched
        metrics = evaluate_backend_batched(backend, dataset, class_names, settings, args.batch, bool(args.out))
        print("  ".join(f"{key} {metrics[key]:.4f}" for key in ("AP", "AP50", "AP75", "APs", "APm", "APl")))
    else:
        metrics = evaluate_coco(backend, dataset[1], dataset[2], dataset_format=dataset[0],
                                score_threshold=settings.score_threshold, iou_threshold=settings.iou_threshold,
                                max_detections=settings.max_detections, verbose=True, progress=True,
                                with_curves=bool(args.out), class_names=class_names)
    if args.out:
        from ..plots import save_evaluation_plots
        written = save_evaluation_plots(metrics, backend.meta.class_names, args.out)
        print(f"wrote {', '.join(str(p) for p in written)}")
    metrics["model"] = str(model)
    metrics["input_size"] = list(backend.meta.input_hw)
    metrics["backend"], metrics["precision"] = backend.name, backend.precision
    if args.json:
        write_json(args.json, metrics)
        if args.json != "-":
            print(f"wrote {args.json}")
    return 0
