"""COCO evaluation of a model on a dataset, torch-free (pycocotools), so a device without torch can score too.

``evaluate_coco`` is the one entry point for a model file or an opened backend: ``nanogfl val``,
``nanogfl benchmark --ann`` and the exporter's accuracy check all call it. Training scores its own batched
predictions with ``evaluate_detections``.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Optional

import numpy as np

from .confusion import ConfusionMatrix
from .contract import EVAL_IOU_THRESHOLD, EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD
from .runtime.backends import Backend, open_model
from .runtime.detector import Detector

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def detections_to_coco(image_id: int, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                       category_ids: list[int]) -> list[dict]:
    """Boxes x1,y1,x2,y2 in original pixels -> COCO result dicts (x, y, w, h)."""
    results = []
    for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
        results.append({"image_id": int(image_id), "category_id": int(category_ids[int(label)]),
                        "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                        "score": round(float(score), 5)})
    return results


def evaluate_detections(coco_gt: dict, detections: list[dict], image_ids: list[int] | None = None,
                        verbose: bool = True, with_curves: bool = False) -> dict:
    """AP, AP50, AP75, APs, APm, APl and per-class AP (by category name) for COCO-format detections;
    ``with_curves`` adds ``pr_curves``: per class, the precision at pycocotools' 101 recall points at IoU 0.5
    (-1 where the class has no ground truth)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = coco_gt
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    names = {c["id"]: c["name"] for c in coco_gt["categories"]}
    if not detections:
        if verbose:
            print("no detections: every AP is 0")
        empty = {**{k: 0.0 for k in METRIC_NAMES}, "per_class": {n: 0.0 for n in names.values()}}
        if with_curves:
            empty["pr_curves"] = {n: [0.0] * 101 for n in names.values()}
        return empty
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(detections)
    evaluator = COCOeval(gt, dt, "bbox")
    if image_ids is not None:
        evaluator.params.imgIds = sorted(image_ids)
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    metrics = {k: float(v) for k, v in zip(METRIC_NAMES, evaluator.stats[:6])}
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, maxdet]
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_class[names[cat_id]] = float(p.mean()) if p.size else float("nan")
    metrics["per_class"] = per_class
    if with_curves:  # iouThrs[0] is 0.5
        metrics["pr_curves"] = {names[cat_id]: precision[0, :, k, 0, -1].round(5).tolist()
                                for k, cat_id in enumerate(evaluator.params.catIds)}
    if verbose:
        print(summary.getvalue().rstrip())
        print(format_per_class(per_class))
    return metrics


def format_per_class(per_class: dict[str, float], columns: int = 3) -> str:
    cells = [f"{name[:16]:<16} {'  n/a' if np.isnan(ap) else f'{ap:.3f}'}" for name, ap in per_class.items()]
    rows = [" | ".join(cells[i:i + columns]) for i in range(0, len(cells), columns)]
    header = " | ".join(["class            AP   "] * min(columns, len(cells)))
    return "\n".join([header, "-" * len(header), *rows])


def evaluate_coco(model: Backend | str | Path, ann: str | Path, images: str | Path, dataset_format: str = "coco",
                  threads: int = 0, score_threshold: float = EVAL_SCORE_THRESHOLD,
                  iou_threshold: float = EVAL_IOU_THRESHOLD, max_detections: int = EVAL_MAX_DETECTIONS,
                  max_images: Optional[int] = None, verbose: bool = False, progress: bool = False,
                  with_curves: bool = False, class_names: Optional[list[str]] = None) -> dict:
    """AP, AP50, AP75, APs, APm, APl and per-class AP of ``model`` on a dataset; ``with_curves`` adds the
    per-class precision-recall curves (``pr_curves``) and the ``confusion_matrix`` (see nanogfl.confusion).

    ``model`` is an opened backend (any, the torch one included) or an ONNX / ncnn file. The dataset is read in
    ``dataset_format`` (coco, voc or yolo) with its own classes (``class_names``, e.g. the training config's
    ``data.class_names``, else the files'), and the model's classes are picked from them by name: a model trained
    on some classes (``data.classes``) is scored on those classes of the full dataset. ``max_images``
    scores the first N images only. ``verbose`` prints the COCO tables, ``progress`` a progress bar.
    """
    from tqdm import tqdm

    from .data.sources import source_for_model

    backend = model if isinstance(model, Backend) else open_model(model, threads=threads)
    detector = Detector(backend, score_threshold, iou_threshold, max_detections)
    source = source_for_model(dataset_format, ann, images, list(backend.meta.class_names), class_names)
    count = len(source) if max_images is None else min(max_images, len(source))
    results: list[dict] = []
    image_ids = []
    confusion = ConfusionMatrix(len(backend.meta.class_names))
    for i in tqdm(range(count), desc="evaluating", disable=not progress, leave=False):
        info = source.image_info(i)
        sample = source.load(i)
        image_ids.append(info.image_id)
        if sample is None:
            continue
        dets = detector(sample.image)
        results += detections_to_coco(info.image_id, dets.boxes, dets.scores, dets.labels, source.category_ids)
        confusion.update(sample.boxes, sample.labels, dets.boxes, dets.scores, dets.labels)
    metrics = evaluate_detections(source.coco_gt(), results, image_ids, verbose=verbose, with_curves=with_curves)
    if with_curves:
        metrics["confusion_matrix"] = confusion.matrix.tolist()
    return metrics
