"""COCO box evaluation with pycocotools. Torch-free, so the runtime benchmark can report AP on a device."""
from __future__ import annotations

import contextlib
import io

import numpy as np

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
                        verbose: bool = True) -> dict:
    """AP, AP50, AP75, APs, APm, APl and per-class AP (by category name) for COCO-format detections."""
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
        return {**{k: 0.0 for k in METRIC_NAMES}, "per_class": {n: 0.0 for n in names.values()}}
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
    if verbose:
        print(summary.getvalue().rstrip())
        print(format_per_class(per_class))
    return metrics


def format_per_class(per_class: dict[str, float], columns: int = 3) -> str:
    cells = [f"{name[:16]:<16} {'  n/a' if np.isnan(ap) else f'{ap:.3f}'}" for name, ap in per_class.items()]
    rows = [" | ".join(cells[i:i + columns]) for i in range(0, len(cells), columns)]
    header = " | ".join(["class            AP   "] * min(columns, len(cells)))
    return "\n".join([header, "-" * len(header), *rows])
