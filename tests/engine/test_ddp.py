"""DDP on CPU (gloo, 2 processes) follows the same loss curve as one process with the same global batch."""
import csv
import os
import subprocess
import sys

import pytest
from helpers import tiny_coco, tiny_config


def _losses(run_dir):
    return [float(r["loss"]) for r in csv.DictReader(open(run_dir / "metrics.csv"))]


def test_two_process_gloo_matches_single_process(tmp_path, coco_train):
    ann, images = coco_train
    tiny = tiny_coco(ann, tmp_path / "data", num_images=16)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tiny_config(tmp_path / "single", tiny, images, epochs=3, batch_size=8, val_interval=3)
    double = tiny_config(tmp_path / "ddp", tiny, images, epochs=3, batch_size=8, val_interval=3)
    one = subprocess.run([sys.executable, "-m", "nanogfl", "train", str(single)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", "-m", "nanogfl", "train", str(double)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 process(es)" in two.stdout and two.stdout.count("training nanodet-plus-m") == 1  # rank 0 logs
    curve_one, curve_two = _losses(tmp_path / "single/run"), _losses(tmp_path / "ddp/run")
    assert len(curve_one) == len(curve_two) == 3
    # BatchNorm sees 4 images per rank instead of 8: the curves agree closely, not bit for bit
    for a, b in zip(curve_one, curve_two):
        assert b == pytest.approx(a, rel=0.05)
    assert (tmp_path / "ddp/run/best.pt").exists()  # evaluation gathered over both ranks
