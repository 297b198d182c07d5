"""Issue 12: the fine-tuning options. ``train.freeze`` keeps parts (weights and BatchNorm statistics) exactly as
they were; a fine-tune scores its starting point as epoch 0 and ``best.pt`` starts as that state; the warmup can
be measured in epochs; ``data.classes`` trains on some of the dataset's classes; placeholder BatchNorm statistics
(an official model imported without ``--bn-images``) are measured before training."""
import csv

import pytest
import torch
from helpers import tiny_coco, tiny_config

from nanogfl.checkpoint import read_checkpoint
from nanogfl.config import Config, ConfigError, TrainConfig, config_from_dict, load_config
from nanogfl.data import CocoSource
from nanogfl.engine import finetune as finetune_module
from nanogfl.engine import train as train_module
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.finetune import has_placeholder_batchnorm, measure_placeholder_batchnorm, resolve_warmup
from nanogfl.engine.train import Trainer
from nanogfl.model.build import build_detector
from nanogfl.model.fuse import conv_batchnorm_pairs


@pytest.fixture()
def tiny(tmp_path, coco_train):
    ann, images = coco_train
    return tiny_coco(ann, tmp_path / "data", num_images=8), images


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_frozen_backbone_and_its_batchnorm_do_not_change(tmp_path, tiny):
    cfg = load_config(tiny_config(tmp_path, *tiny, epochs=1, freeze=["backbone"]))
    trainer = Trainer(cfg, torch.device("cpu"), DistInfo())
    backbone, neck = _state(trainer.model.backbone), _state(trainer.model.neck)
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert len(trainer.optimizer.param_groups[0]["params"]) == len(trainable) < len(list(trainer.model.parameters()))
    trainer.fit()
    for name, value in trainer.model.backbone.state_dict().items():  # weights and running statistics
        torch.testing.assert_close(value, backbone[name], rtol=0, atol=0, msg=name)
    assert not trainer.model.backbone.training and trainer.model.neck.training
    changed = [n for n, v in trainer.model.neck.state_dict().items() if not torch.equal(v, neck[n])]
    assert any(n.endswith("running_mean") for n in changed) and any(n.endswith("weight") for n in changed)


def test_freeze_names_are_checked():
    with pytest.raises(ConfigError, match=r"train.freeze\[1\]: 'backbon' is not one of backbone, neck, head, aux"):
        config_from_dict({"train": {"freeze": ["neck", "backbon"]}})
    with pytest.raises(ConfigError, match="data.classes must name each class once"):
        config_from_dict({"data": {"classes": ["dog", "dog"]}})


def test_warmup_in_epochs_follows_the_dataset_size():
    cfg = TrainConfig(warmup_epochs=1.5, warmup_steps=500)
    resolve_warmup(cfg, 14)
    assert cfg.warmup_steps == 21
    unchanged = TrainConfig(warmup_steps=500)
    resolve_warmup(unchanged, 14)
    assert unchanged.warmup_steps == 500


def test_fine_tune_scores_epoch_0_and_best_never_falls_below_it(tmp_path, tiny, monkeypatch):
    source = Trainer(load_config(tiny_config(tmp_path / "src", *tiny, epochs=1)), torch.device("cpu"), DistInfo())
    source.fit()
    scores = iter([0.5, 0.2])  # the start, then a worse epoch 1

    def fake_evaluate(*args, **kwargs):
        ap = next(scores)
        return {"AP": ap, "AP50": ap, "per_class": {}}

    monkeypatch.setattr(train_module, "evaluate_in_training", fake_evaluate)
    monkeypatch.setattr(finetune_module, "evaluate_in_training", fake_evaluate)
    cfg = load_config(tiny_config(tmp_path / "dst", *tiny, epochs=1, val_interval=1, warmup_epochs=0.5,
                                  pretrained=str(tmp_path / "src/run/last.pt")), ["data.classes=[car, person]"])
    with pytest.warns(UserWarning, match=r"class outputs kept by name for 2 \(car, person\)"):
        trainer = Trainer(cfg, torch.device("cpu"), DistInfo())
    assert trainer.class_names == ["car", "person"] and cfg.train.warmup_steps == 1  # 2 batches of 4
    start = _state(trainer.deployable)
    trainer.fit()
    rows = list(csv.DictReader(open(tmp_path / "dst/run/metrics.csv")))
    assert [(r["epoch"], r["AP"]) for r in rows] == [("0", "0.5"), ("1", "0.2")]
    assert rows[0]["loss"] == "" and float(rows[1]["loss"]) > 0
    best = read_checkpoint(tmp_path / "dst/run/best.pt")
    assert best.epoch == 0 and best.metrics["AP"] == 0.5 and best.class_names == ["car", "person"]
    for name, value in best.model.items():
        torch.testing.assert_close(value, start[name], rtol=0, atol=0, msg=name)
    assert read_checkpoint(tmp_path / "dst/run/last.pt").epoch == 1


def test_placeholder_batchnorm_is_measured_on_training_images_first(tiny, capsys):
    """An official model imported without --bn-images: eval mode is exact, train mode would not be."""
    cfg = Config()
    cfg.model.input_size = [64, 64]
    cfg.train.pretrained = "imported.pt"
    torch.manual_seed(0)
    model = build_detector(cfg.model, 3, with_aux=False).eval()
    with torch.no_grad():
        for _, bn in conv_batchnorm_pairs(model).values():  # what the importer writes without --bn-images
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.normal_(0, 0.1)
    assert has_placeholder_batchnorm(model)
    probe = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(probe)
    measure_placeholder_batchnorm(model, CocoSource(*tiny), cfg, verbose=True)
    assert "placeholder BatchNorm statistics (imported without --bn-images); measured on 8 training images" in \
        capsys.readouterr().out
    assert not has_placeholder_batchnorm(model)
    with torch.no_grad():
        torch.testing.assert_close(model(probe), before, rtol=1e-4, atol=1e-4)  # the same function in eval mode
