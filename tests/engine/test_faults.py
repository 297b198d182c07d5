"""A run survives: SIGKILL + resume, non-finite losses, failed checkpoint writes, a new class count."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import tiny_coco, tiny_config

from nanogfl import checkpoint as ckpt
from nanogfl.config import load_config
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.train import Trainer
from nanogfl.errors import UserError


@pytest.fixture()
def tiny(tmp_path, coco_train):
    ann, images = coco_train
    return tiny_coco(ann, tmp_path / "data", num_images=12), images


def _cli(*args):
    return [sys.executable, "-m", "nanogfl", *args]


def test_sigkill_mid_run_then_resume(tmp_path, tiny):
    ann, images = tiny
    cfg = tiny_config(tmp_path, ann, images, epochs=4)
    last = tmp_path / "run" / "last.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cli("train", str(cfg)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not last.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert last.exists(), "no checkpoint was written before the kill"
        time.sleep(0.3)  # into the next epoch
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = ckpt.read_checkpoint(last).epoch  # the checkpoint survived the kill intact
    assert 1 <= done < 4
    result = subprocess.run(_cli("train", str(cfg), "--resume"), env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resumed from {last}: {done} epochs done" in result.stdout
    assert ckpt.read_checkpoint(last).epoch == 4
    epochs = [int(r["epoch"]) for r in csv.DictReader(open(tmp_path / "run" / "metrics.csv"))]
    assert epochs[-1] == 4 and set(range(done + 1, 5)) <= set(epochs)


def _trainer(tmp_path, tiny, **train):
    ann, images = tiny
    return Trainer(load_config(tiny_config(tmp_path, ann, images, **train)), torch.device("cpu"), DistInfo())


def test_non_finite_loss_is_skipped_and_counted(tmp_path, tiny):
    trainer = _trainer(tmp_path, tiny, epochs=1)
    real = trainer.criterion
    calls = {"n": 0}

    def sometimes_nan(*args, **kwargs):
        calls["n"] += 1
        loss, terms = real(*args, **kwargs)
        return (loss * float("nan"), terms) if calls["n"] == 2 else (loss, terms)

    trainer.criterion = sometimes_nan
    with pytest.warns(UserWarning, match="non-finite loss at step 1: step skipped"):
        trainer.fit()
    assert trainer.skipped_steps == 1 and trainer.global_step == 3
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_persistent_non_finite_loss_stops_with_a_message(tmp_path, tiny):
    trainer = _trainer(tmp_path, tiny, epochs=1, max_bad_steps=2)
    real = trainer.criterion
    trainer.criterion = lambda *a, **k: (real(*a, **k)[0] * float("inf"), real(*a, **k)[1])
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="2 non-finite losses in a row: stopping"):
        trainer.fit()


def test_failed_checkpoint_write_keeps_previous(tmp_path, tiny, monkeypatch):
    trainer = _trainer(tmp_path, tiny, epochs=2)
    trainer.fit(stop_epoch=1)
    last = tmp_path / "run" / "last.pt"
    before = last.read_bytes()

    def broken_save(obj, path):
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        trainer.fit()
    assert last.read_bytes() == before
    assert ckpt.read_checkpoint(last).epoch == 1
    assert [p.name for p in last.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_finetune_to_a_new_class_count(tmp_path, tiny):
    ann, images = tiny
    source = _trainer(tmp_path / "src", tiny, epochs=1)
    source.fit()
    data = json.loads(ann.read_text())
    keep = {1: "person", 3: "car"}
    data["categories"] = [c for c in data["categories"] if c["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] in keep]
    two = tmp_path / "two.json"
    two.write_text(json.dumps(data))
    cfg = load_config(tiny_config(tmp_path / "dst", two, images, epochs=1,
                                  pretrained=str(tmp_path / "src/run/last.pt")))
    with pytest.warns(UserWarning, match=r"80 classes in the checkpoint, 2 in this run; box outputs kept; class "
                                         r"outputs kept by name for 2 \(person, car\)"):
        target = Trainer(cfg, torch.device("cpu"), DistInfo())
    assert target.model.head.predictors[0].out_channels == 2 + 32
    torch.testing.assert_close(target.model.backbone.stem[0].weight, source.ema.module.backbone.stem[0].weight)
    source_rows = source.ema.module.head.predictors[0].weight[[0, 2, *range(80, 112)]]  # person, car, boxes
    torch.testing.assert_close(target.model.head.predictors[0].weight, source_rows)
    target.fit()


def test_resume_refuses_weights_only_checkpoint(tmp_path, tiny):
    trainer = _trainer(tmp_path, tiny, epochs=1)
    weights = ckpt.Checkpoint(model=trainer.model.state_dict(), config=trainer.cfg.to_dict(),
                              class_names=trainer.class_names, aux_trained=True)
    ckpt.save_checkpoint(tmp_path / "weights.pt", weights)
    with pytest.raises(UserError, match="holds weights only"):
        Trainer(trainer.cfg, torch.device("cpu"), DistInfo(), resume=str(tmp_path / "weights.pt"))
