"""COCO evaluation: in-process during training (batched, sharded over DDP ranks) and ``nanogfl val`` for any
model file (checkpoint, ONNX, ncnn) through the runtime."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..config import Config, DatasetConfig
from ..errors import UserError
from .coco_eval import detections_to_coco, evaluate_detections


def evaluate_model(detector, source, verbose: bool = True, progress: bool = True) -> dict:
    """Run a runtime ``Detector`` (score threshold 0.05 for COCO numbers) over a dataset source and score it."""
    from tqdm import tqdm

    results: list[dict] = []
    image_ids = []
    for i in tqdm(range(len(source)), desc="evaluating", disable=not progress, leave=False):
        info = source.image_info(i)
        sample = source.load(i)
        image_ids.append(info.image_id)
        if sample is None:
            continue
        dets = detector(sample.image)
        results += detections_to_coco(info.image_id, dets.boxes, dets.scores, dets.labels, source.category_ids)
    return evaluate_detections(source.coco_gt(), results, image_ids, verbose=verbose)


def evaluate_in_training(model, source, cfg: Config, device, info) -> dict:
    """Evaluate the (EMA) model on ``source``: every rank takes a shard, rank 0 scores the gathered results."""
    import torch

    from ..model import DeployModel
    from ..runtime.postprocess import postprocess
    from ..runtime.preprocess import preprocess
    from . import distributed as D
    from .checkpoint import model_meta

    meta = model_meta(cfg, source.class_names)
    deploy = DeployModel(model).eval()
    indices = list(range(info.rank, len(source), info.world_size))
    batch_size = 16
    results: list[dict] = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            blobs, pending = [], []
            for i in indices[start:start + batch_size]:
                sample = source.load(i)
                if sample is None:
                    continue
                image = sample.image
                blob, matrix = preprocess(image, cfg.input_hw, cfg.data.mean, cfg.data.std)
                blobs.append(blob)
                pending.append((source.image_info(i), matrix, image.shape[:2]))
            if not blobs:
                continue
            outputs = deploy(torch.from_numpy(np.concatenate(blobs)).to(device)).float().cpu().numpy()
            for output, (image_info, matrix, image_hw) in zip(outputs, pending):
                dets = postprocess(output, meta, matrix, image_hw, cfg.eval.score_threshold,
                                   cfg.eval.iou_threshold, cfg.eval.max_detections)
                results += detections_to_coco(image_info.image_id, dets.boxes, dets.scores, dets.labels,
                                              source.category_ids)
    gathered = D.all_gather_objects(results, info)
    metrics = None
    if info.is_main:
        all_results = [r for part in gathered for r in part]
        image_ids = [source.image_info(i).image_id for i in range(len(source))]
        metrics = evaluate_detections(source.coco_gt(), all_results, image_ids, verbose=False)
    return D.broadcast_object(metrics, info)


def _checkpoint_config(weights: Path) -> Config | None:
    if weights.suffix != ".pt":
        return None
    from ..config import config_from_dict
    from .checkpoint import read_checkpoint

    return config_from_dict(read_checkpoint(weights)["config"], str(weights))


def run_val(args: argparse.Namespace) -> int:
    from ..data.sources import build_source
    from ..runtime.backends import open_model
    from ..runtime.detector import Detector

    weights = Path(args.weights)
    if not weights.exists():
        raise UserError(f"model not found: {weights}")
    cfg = _checkpoint_config(weights)
    if args.ann:
        dataset = DatasetConfig(format="coco", ann=args.ann, images=args.images or "")
        if not args.images:
            raise UserError("--ann needs --images (the folder of the images it lists)")
    elif cfg is not None and cfg.data.val.ann:
        dataset = cfg.data.val
    else:
        raise UserError("no evaluation data: pass --ann FILE --images DIR")
    backend = open_model(weights, threads=args.threads, input_hw=args.size)
    eval_cfg = cfg.eval if cfg is not None else Config().eval
    detector = Detector(backend, score_threshold=eval_cfg.score_threshold, iou_threshold=eval_cfg.iou_threshold,
                        max_detections=eval_cfg.max_detections)
    source = build_source(dataset, list(backend.meta.class_names))
    print(f"evaluating {weights} at {backend.meta.input_hw[0]}x{backend.meta.input_hw[1]} on "
          f"{len(source)} images of {dataset.ann}")
    metrics = evaluate_model(detector, source)
    metrics["model"] = str(weights)
    metrics["input_size"] = list(backend.meta.input_hw)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(metrics, indent=2))
        print(f"wrote {args.json_out}")
    return 0
