"""Fine-tuning the COCO model on a few of its classes, the way a user fine-tunes on a small custom set: the
recipe ``configs/finetune_nanodet-plus-m_320.yml`` on the 209-image COCO train subset restricted to person, car
and dog (``data.classes``), scored on the same classes of the 206-image val subset, on the CPU with a fixed small
budget. Prints the AP of the starting point (epoch 0: the imported model with its class rows kept by name), every
epoch's AP and the best, and checks that the final AP is at least the starting one.

    python benchmarks/finetune_custom.py [--weights nanodet-plus-m_224.pt] [--size 224] [--epochs 5] \\
        [--threads 2] [--new car] [--set train.lr=1e-4 ...]

``--new car`` renames car in a copy of the annotations ("car (new)"), so the checkpoint does not know it: its
outputs start fresh, as a class of your own would.

Without ``--weights`` it imports the official NanoDet-Plus-m (ncnn) at ``--size`` the plain way (no
``--bn-images``: the run measures the BatchNorm statistics on its training images first).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch

from nanogfl.config import load_config
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.train import Trainer
from nanogfl.importer.pipeline import import_model

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "finetune_nanodet-plus-m_320.yml"
DATA = REPO.parent / "shared" / "data"
TRAIN = DATA / "coco_train2017_subset209"
VAL = DATA / "coco_val2017_subset206"
OFFICIAL = DATA / "nanodet_plus_m_416_ncnn" / "nanodet-plus-m_416.param"
CLASSES = ["person", "car", "dog"]


def renamed(ann: Path, new: list[str], out: Path) -> Path:
    """``ann``, or a copy of it in which the categories ``new`` are called "NAME (new)"."""
    if not new:
        return ann
    data = json.loads(ann.read_text())
    for category in data["categories"]:
        if category["name"] in new:
            category["name"] = f"{category['name']} (new)"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="checkpoint to start from (default: import the official model)")
    parser.add_argument("--size", type=int, default=224, help="square input size (multiple of 32)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", default="runs/finetune_custom")
    parser.add_argument("--new", nargs="*", default=[], choices=CLASSES, help="classes to start fresh")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides (key.path=value)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.output_dir)
    start = time.time()
    weights = Path(args.weights) if args.weights else out / f"nanodet-plus-m_{args.size}.pt"
    if not weights.exists():
        import_model(OFFICIAL, weights, "nanodet-plus-m", (args.size, args.size))
    imported = time.time()
    classes = [f"{name} (new)" if name in args.new else name for name in CLASSES]
    train_ann = renamed(TRAIN / "instances_train2017_subset.json", args.new, out / "train.json")
    val_ann = renamed(VAL / "instances_val2017_subset.json", args.new, out / "val.json")
    overrides = [f"model.input_size=[{args.size},{args.size}]", f"train.pretrained={weights}",
                 f"train.epochs={args.epochs}", "data.workers=0", f"data.classes={json.dumps(classes)}",
                 "data.train.format=coco", f"data.train.ann={train_ann}", f"data.train.images={TRAIN / 'images'}",
                 "data.val.format=coco", f"data.val.ann={val_ann}", f"data.val.images={VAL / 'images'}",
                 f"output_dir={out / 'run'}", *args.set]
    cfg = load_config(CONFIG, overrides)
    metrics_csv = Path(cfg.output_dir) / "metrics.csv"
    if metrics_csv.exists():
        metrics_csv.unlink()
    final = Trainer(cfg, torch.device("cpu"), DistInfo()).fit()
    done = time.time()

    rows = list(csv.DictReader(open(metrics_csv)))
    print(f"\n{', '.join(classes)} at {args.size}x{args.size}, {args.epochs} epochs, batch {cfg.train.batch_size}, "
          f"lr {cfg.train.lr:g}, freeze {cfg.train.freeze or 'nothing'}")
    print("epoch  loss    val AP   AP50")
    for r in rows:
        loss = f"{float(r['loss']):.3f}" if r["loss"] else "  -  "
        print(f"{r['epoch']:>5}  {loss}   {float(r['AP']):.4f}   {float(r['AP50']):.4f}")
    aps = [float(r["AP"]) for r in rows]
    print(f"epoch 0 AP {aps[0]:.4f}, final AP {aps[-1]:.4f}, best AP {max(aps):.4f} (best.pt at epoch "
          f"{rows[aps.index(max(aps))]['epoch']})")
    if final.get("per_class"):
        print("final AP per class: " + ", ".join(f"{k} {v:.4f}" for k, v in final["per_class"].items()))
    print(f"time: import {imported - start:.0f} s, fine-tune + evaluation {done - imported:.0f} s "
          f"({args.threads} threads)")
    if aps[-1] < aps[0]:
        print(f"FAIL: the final AP {aps[-1]:.4f} is below the starting AP {aps[0]:.4f}")
        return 1
    print("ok: final AP >= epoch-0 AP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
