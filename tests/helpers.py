"""Helpers shared by the tests: small real datasets cut out of ../shared/data, a tiny exported model, metadata
of the official model. (The fixtures built from them live in conftest.py.)"""
from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import warnings
from pathlib import Path

import numpy as np
import yaml

from nanogfl.runtime.coco_names import COCO_CLASSES
from nanogfl.runtime.metadata import ModelMeta

TINY_INPUT_HW = (128, 160)  # small and non-square, so a height/width mix-up shows


def tiny_coco(ann_file: Path, out_dir: Path, num_images: int = 8) -> Path:
    """The first ``num_images`` annotated images of a COCO json (all categories kept), written to out_dir."""
    data = json.loads(Path(ann_file).read_text())
    annotated = sorted({a["image_id"] for a in data["annotations"] if not a.get("iscrowd", 0)})
    keep = set(annotated[:num_images])
    subset = {**data, "images": [i for i in data["images"] if i["id"] in keep],
              "annotations": [a for a in data["annotations"] if a["image_id"] in keep]}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "tiny.json"
    path.write_text(json.dumps(subset))
    return path


def tiny_config(tmp_path: Path, ann: Path, images: Path, **train) -> Path:
    """A config for a seconds-long CPU run: 64x64 input, batch 4, no workers."""
    cfg = {
        "model": {"arch": "nanodet-plus-m", "input_size": [64, 64], "detach_epoch": 1},
        "data": {"train": {"format": "coco", "ann": str(ann), "images": str(images)},
                 "val": {"format": "coco", "ann": str(ann), "images": str(images)}, "workers": 0},
        "train": {"epochs": 2, "batch_size": 4, "warmup_steps": 2, "val_interval": 0, **train},
        "output_dir": str(tmp_path / "run"),
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def official_meta(input_hw=(416, 416)) -> ModelMeta:
    return ModelMeta(class_names=list(COCO_CLASSES), input_hw=tuple(input_hw), class_activation="none")


def export_tiny_onnx(folder: Path, input_hw=TINY_INPUT_HW, num_classes: int = 3) -> Path:
    """A randomly initialised NanoDet-Plus-m exported like the real exporter would (test fixture only), plus
    its metadata json and a matching checkpoint ``tiny.pt``."""
    import torch

    from nanogfl.checkpoint import Checkpoint, save_checkpoint
    from nanogfl.config import Config
    from nanogfl.model import deploy_model, nanodet_plus_m

    torch.manual_seed(0)
    model = nanodet_plus_m(num_classes, with_aux=False).eval()
    with torch.no_grad():  # random but non-trivial BN statistics, so folding BN is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    cfg = Config()
    cfg.model.input_size = list(input_hw)
    save_checkpoint(folder / "tiny.pt", Checkpoint(model=model.state_dict(), config=cfg.to_dict(),
                                                   class_names=[f"class{i}" for i in range(num_classes)],
                                                   aux_trained=True))
    onnx_path = folder / "tiny.onnx"
    deploy = deploy_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter announces its deprecation
        torch.onnx.export(deploy, torch.zeros(1, 3, *input_hw), str(onnx_path), dynamo=False, opset_version=11,
                          input_names=["data"], output_names=["output"])
    ModelMeta(class_names=[f"class{i}" for i in range(num_classes)], input_hw=tuple(input_hw)).save(
        onnx_path.with_suffix(".json"))
    return onnx_path


def read_json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ---- VOC / YOLO datasets written from real COCO annotations ------------------------------------------------
def coco_objects(ann_file: Path, count: int) -> list[tuple[dict, list[dict]]]:
    """The first ``count`` images that have non-crowd annotations, with those annotations."""
    data = json.loads(ann_file.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        if not ann["iscrowd"]:
            by_image.setdefault(ann["image_id"], []).append(dict(ann, name=names[ann["category_id"]]))
    images = [im for im in data["images"] if im["id"] in by_image][:count]
    return [(im, by_image[im["id"]]) for im in images]


def expected_xyxy(anns: list[dict]) -> np.ndarray:
    return np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                     for a in anns])


def write_voc(folder: Path, objects, difficult_first: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for image, anns in objects:
        parts = [f"<annotation><filename>{image['file_name']}</filename><size><width>{image['width']}</width>"
                 f"<height>{image['height']}</height><depth>3</depth></size>"]
        for k, (a, box) in enumerate(zip(anns, expected_xyxy(anns).tolist())):
            difficult = int(difficult_first and k == 0)
            parts.append(f"<object><name>{a['name']}</name><difficult>{difficult}</difficult><bndbox>"
                         f"<xmin>{box[0]!r}</xmin><ymin>{box[1]!r}</ymin><xmax>{box[2]!r}</xmax>"
                         f"<ymax>{box[3]!r}</ymax></bndbox></object>")
        parts.append("</annotation>")
        (folder / Path(image["file_name"]).with_suffix(".xml").name).write_text("".join(parts))


def write_yolo(root: Path, objects, image_dir: Path, class_names: list[str]) -> tuple[Path, Path]:
    labels, images = root / "labels", root / "images"
    labels.mkdir(parents=True)
    images.mkdir(parents=True)
    for image, anns in objects:
        shutil.copy(image_dir / image["file_name"], images / image["file_name"])
        lines = []
        for a in anns:
            x, y, w, h = a["bbox"]
            cx, cy = (x + w / 2) / image["width"], (y + h / 2) / image["height"]
            lines.append(f"{class_names.index(a['name'])} {cx:.10f} {cy:.10f} "
                         f"{w / image['width']:.10f} {h / image['height']:.10f}")
        (labels / Path(image["file_name"]).with_suffix(".txt").name).write_text("\n".join(lines) + "\n")
    return labels, images


def interrupt(process: subprocess.Popen, timeout: float = 30) -> None:
    """Ctrl+C a child process and wait for it to finish; kill it (and fail) if it does not within ``timeout``."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of a GET of ``path`` from a server on this machine's loopback ``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
