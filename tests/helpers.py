"""Small real datasets cut out of ../shared/data for fast training tests."""
from __future__ import annotations

import json
from pathlib import Path

import yaml


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
