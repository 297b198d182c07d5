"""COCO evaluation inside training: the (EMA) model in PyTorch, batched, sharded over DDP ranks."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..checkpoint import model_meta
from ..config import Config, EvalConfig
from ..confusion import ConfusionMatrix
from ..data.base import DetectionSource
from ..data.sources import source_for_model
from ..evaluation import detections_to_coco, evaluate_detections
from ..model.deploy import DeployModel
from ..runtime.metadata import ModelMeta
from ..runtime.postprocess import postprocess
from ..runtime.preprocess import pad_bottom_right, prepare_input
from . import distributed as D

if TYPE_CHECKING:
    from .torch_backend import TorchBackend

BATCH_SIZE = 16


def evaluate_backend_batched(backend: "TorchBackend", dataset: tuple[str, str, str], class_names: list[str] | None,
                             settings: EvalConfig, batch_size: int, with_curves: bool) -> dict:
    """``nanogfl val --batch N`` of a checkpoint: the batched evaluation below, on the backend's device and
    precision, with its metadata (input size, ``--size`` included) and ``settings`` (the model's classes picked
    from the dataset's by name)."""
    source = source_for_model(*dataset, list(backend.meta.class_names), class_names)
    cfg = dataclasses.replace(backend.config, eval=settings)
    return evaluate_in_training(backend.model.detector, source, cfg, backend.device, D.DistInfo(), with_curves,
                                batch_size, backend.meta)


def evaluate_in_training(model: nn.Module, source: DetectionSource, cfg: Config, device: torch.device,
                         info: D.DistInfo, with_curves: bool = False, batch_size: int = BATCH_SIZE,
                         meta: ModelMeta | None = None) -> dict:
    """Evaluate ``model`` on ``source`` with the runtime's preprocess and postprocess: every rank takes a shard,
    rank 0 scores the gathered results, every rank gets the metrics (``with_curves``: also the per-class
    precision-recall curves and the confusion matrix, as ``evaluate_coco`` gives them). ``meta`` (default: the
    one of ``cfg``) says how to prepare the input and decode the output."""
    meta = meta or model_meta(cfg, source.class_names)
    deploy = DeployModel(model).eval()  # the export's output head on the module itself: no copy per evaluation
    indices = list(range(info.rank, len(source), info.world_size))
    results: list[dict] = []
    confusion = ConfusionMatrix(len(source.class_names))
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            blobs, pending = [], []
            for i in indices[start:start + batch_size]:
                sample = source.load(i)
                if sample is None:
                    continue
                blob, matrix = prepare_input(sample.image, meta)
                blobs.append(blob[0])
                pending.append((source.image_info(i), matrix, sample.image.shape[:2], sample))
            if not blobs:
                continue
            batch_hw = tuple(max(b.shape[i] for b in blobs) for i in (1, 2))  # keep-ratio inputs differ in size
            batch = np.stack([pad_bottom_right(b, batch_hw) for b in blobs])
            inputs = torch.from_numpy(batch).to(device, next(model.parameters()).dtype)  # fp16 when the model is
            outputs = deploy(inputs).float().cpu().numpy()
            for output, (image_info, matrix, image_hw, sample) in zip(outputs, pending):
                dets = postprocess(output, meta, matrix, image_hw, cfg.eval.score_threshold,
                                   cfg.eval.iou_threshold, cfg.eval.max_detections, input_hw=batch_hw)
                results += detections_to_coco(image_info.image_id, dets.boxes, dets.scores, dets.labels,
                                              source.category_ids)
                confusion.update(sample.boxes, sample.labels, dets.boxes, dets.scores, dets.labels)
    gathered = D.all_gather_objects((results, confusion.matrix), info)
    metrics = None
    if info.is_main:
        all_results = [r for part, _ in gathered for r in part]
        image_ids = [source.image_info(i).image_id for i in range(len(source))]
        metrics = evaluate_detections(source.coco_gt(), all_results, image_ids, verbose=False,
                                      with_curves=with_curves)
        if with_curves:
            metrics["confusion_matrix"] = sum(matrix for _, matrix in gathered).tolist()
    return D.broadcast_object(metrics, info)
