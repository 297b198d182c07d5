"""Does it learn? Train NanoDet-Plus-m 320 from scratch on the 209-image COCO train subset on the CPU and print
train-set mAP per evaluated epoch plus training throughput (images/s at batch 16, 320x320).

    python benchmarks/train_convergence.py [--epochs 60] [--val-interval 5] [--minutes 60] [--threads 2] [--resume]
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from nanogfl.config import load_config
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.train import Trainer

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "coco-subset_nanodet-plus-m_320.yml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--val-interval", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=0, help="stop after the epoch that passes this budget")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", default="runs/convergence")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output-dir")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = [f"train.epochs={args.epochs}", f"train.val_interval={args.val_interval}", "train.batch_size=16",
                 f"output_dir={args.output_dir}"]
    cfg = load_config(CONFIG, overrides)
    # a fresh run replaces the previous one in --output-dir
    trainer = Trainer(cfg, torch.device("cpu"), DistInfo(), resume="auto" if args.resume else None,
                      overwrite=not args.resume)
    metrics_csv = trainer.out / "metrics.csv"
    start = time.time()
    while trainer.epoch < cfg.train.epochs:
        trainer.fit(stop_epoch=trainer.epoch + 1)
        if args.minutes and time.time() - start > 60 * args.minutes:
            print(f"time budget of {args.minutes} min reached after {trainer.epoch} epochs")
            break
    rows = list(csv.DictReader(open(metrics_csv)))
    print("\nepoch  loss    train-set AP  AP50    img/s")
    for r in rows:
        ap = f"{float(r['AP']):.4f}        {float(r['AP50']):.4f}" if r["AP"] else "   -            -   "
        print(f"{r['epoch']:>5}  {float(r['loss']):.3f}   {ap}  {float(r['images_per_second']):.1f}")
    speeds = sorted(float(r["images_per_second"]) for r in rows)
    print(f"\ntraining throughput (CPU, {args.threads} threads, batch 16, 320x320): "
          f"median {speeds[len(speeds) // 2]:.1f} images/s (includes data loading)")


if __name__ == "__main__":
    main()
