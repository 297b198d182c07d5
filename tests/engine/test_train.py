import csv

import pytest
import torch
from helpers import tiny_coco, tiny_config

from nanogfl.checkpoint import load_model, read_checkpoint
from nanogfl.config import load_config
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.train import Trainer


@pytest.fixture()
def tiny(tmp_path, coco_train):
    ann, images = coco_train
    return tiny_coco(ann, tmp_path / "data"), images


def _train(cfg, stop_epoch=None, resume=None):
    trainer = Trainer(cfg, torch.device("cpu"), DistInfo(), resume=resume)
    trainer.fit(stop_epoch)
    return trainer


def test_resume_continues_exactly(tmp_path, tiny):
    ann, images = tiny
    straight = load_config(tiny_config(tmp_path / "a", ann, images, epochs=3))
    split = load_config(tiny_config(tmp_path / "b", ann, images, epochs=3))
    full = _train(straight)
    first = _train(split, stop_epoch=1)
    assert first.epoch == 1 and read_checkpoint(tmp_path / "b/run/last.pt").epoch == 1
    resumed = _train(split, resume="auto")
    assert resumed.epoch == 3 and resumed.global_step == full.global_step
    for name, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    for name, value in full.ema.module.state_dict().items():
        torch.testing.assert_close(resumed.ema.module.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert resumed.optimizer.param_groups[0]["lr"] == full.optimizer.param_groups[0]["lr"]
    rows = list(csv.DictReader(open(tmp_path / "b/run/metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]


def test_checkpoint_is_self_describing(tmp_path, tiny):
    ann, images = tiny
    cfg = load_config(tiny_config(tmp_path, ann, images, epochs=1, val_interval=1))
    trainer = _train(cfg)
    model, loaded_cfg, class_names = load_model(tmp_path / "run/best.pt")
    assert class_names == trainer.class_names and len(class_names) == 80
    assert loaded_cfg.input_hw == (64, 64) and model.aux_head is None
    for name, value in model.state_dict().items():  # the deployable weights are the EMA weights
        torch.testing.assert_close(value, trainer.ema.module.state_dict()[name])
    row = next(csv.DictReader(open(tmp_path / "run/metrics.csv")))
    assert float(row["loss"]) > 0 and row["AP"] != ""
    assert (tmp_path / "run/tensorboard").is_dir()
