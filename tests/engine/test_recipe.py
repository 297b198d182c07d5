"""The legacy NanoDet-m recipe as config options: SGD, multistep lr, no EMA, no grad clip, keep-ratio warp."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_coco, tiny_config
from torch import nn

from nanogfl.checkpoint import load_model, read_checkpoint
from nanogfl.config import AugmentConfig, Config, ConfigError, TrainConfig, config_from_dict, load_config
from nanogfl.contract import BGR_MEAN, BGR_STD
from nanogfl.data.transforms import TrainTransform, random_warp_matrix
from nanogfl.engine import train as train_module
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.optim import build_optimizer, clip_gradients
from nanogfl.engine.schedule import epoch_learning_rate, learning_rate
from nanogfl.engine.train import Trainer
from nanogfl.errors import UserError
from nanogfl.runtime.postprocess import warp_boxes

LEGACY_TRAIN = {"optimizer": "sgd", "lr": 0.14, "momentum": 0.9, "weight_decay": 1.0e-4, "warmup_steps": 300,
                "warmup_ratio": 0.1, "epochs": 280, "schedule": "multistep", "milestones": [240, 260, 275],
                "gamma": 0.1, "batch_size": 192, "ema_decay": 0, "grad_clip": 0}
LEGACY_AUGMENT = {"keep_ratio": True, "stretch": [1.0, 1.0]}


# ---- schedule and optimiser ---------------------------------------------------------------------------------
def test_multistep_lr_around_the_milestones_and_in_warmup():
    cfg = TrainConfig(**LEGACY_TRAIN)
    assert learning_rate(cfg, 0, 0) == pytest.approx(0.014)  # warmup starts at lr * ratio
    assert learning_rate(cfg, 0, 150) == pytest.approx(0.14 * (0.1 + 0.9 * 0.5))
    assert learning_rate(cfg, 0, 300) == pytest.approx(0.14)  # warmup done: the base lr
    expected = {0: 0.14, 239: 0.14, 240: 0.014, 259: 0.014, 260: 1.4e-3, 274: 1.4e-3, 275: 1.4e-4, 279: 1.4e-4}
    for epoch, lr in expected.items():
        assert learning_rate(cfg, epoch, 10 ** 6) == pytest.approx(lr), epoch
    # the same numbers as torch's MultiStepLR stepped once per epoch (what NanoDet runs)
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.milestones, gamma=cfg.gamma)
    for epoch in range(cfg.epochs):
        assert epoch_learning_rate(cfg, epoch) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
        optimizer.step()
        scheduler.step()


def test_warmup_scales_the_multistep_lr_of_its_epoch():
    cfg = TrainConfig(**{**LEGACY_TRAIN, "milestones": [1], "warmup_steps": 10})
    assert learning_rate(cfg, 1, 5) == pytest.approx(0.014 * (0.1 + 0.9 * 0.5))


def test_sgd_optimizer_is_torch_sgd_over_all_parameters():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    optimizer = build_optimizer(model, TrainConfig(**LEGACY_TRAIN))
    assert type(optimizer) is torch.optim.SGD and len(optimizer.param_groups) == 1
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.14, 0.9, 1e-4)
    assert group["nesterov"] is False and group["dampening"] == 0
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]  # norms decay too
    weight = model[0].weight
    before = weight.detach().clone()
    weight.grad = torch.ones_like(weight)
    optimizer.step()  # first step: the momentum buffer is the gradient plus the L2 term
    torch.testing.assert_close(weight.detach(), before - 0.14 * (1.0 + 1e-4 * before))
    adamw = build_optimizer(model, TrainConfig())
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["weight_decay"] == 0.05


def test_grad_clip_zero_leaves_the_gradients_alone():
    weight = nn.Parameter(torch.zeros(4))
    weight.grad = torch.full((4,), 10.0)
    assert float(clip_gradients([weight], 0.0)) == pytest.approx(20.0)
    assert torch.equal(weight.grad, torch.full((4,), 10.0))
    clip_gradients([weight], 1.0)
    assert float(weight.grad.norm()) == pytest.approx(1.0, rel=1e-5)


# ---- config ---------------------------------------------------------------------------------------------
def test_the_legacy_recipe_loads():
    cfg = config_from_dict({"train": LEGACY_TRAIN, "augment": LEGACY_AUGMENT})
    assert cfg.train.optimizer == "sgd" and cfg.train.milestones == [240, 260, 275]
    assert cfg.train.ema_decay == 0 and cfg.augment.keep_ratio is True
    defaults = config_from_dict({})
    assert (defaults.train.optimizer, defaults.train.schedule, defaults.augment.keep_ratio) == ("adamw", "cosine",
                                                                                               False)


@pytest.mark.parametrize("train, words", [
    ({"schedule": "multistep"}, "train.milestones: schedule multistep needs at least one milestone epoch"),
    ({"milestones": [10]}, "only used by schedule multistep"),
    ({"schedule": "multistep", "milestones": [260, 240]}, "strictly increasing epochs from 1 on, got [260, 240]"),
    ({"schedule": "multistep", "milestones": [240, 240]}, "strictly increasing"),
    ({"schedule": "multistep", "milestones": [0, 240]}, "strictly increasing epochs from 1 on"),
    ({"gamma": 0}, "train.gamma must be positive"),
    ({"momentum": 1.0}, "train.momentum must be in [0, 1)"),
    ({"ema_decay": -0.1}, "train.ema_decay must be in [0, 1) (0: no EMA), got -0.1"),
    ({"ema_decay": 1.0}, "train.ema_decay must be in [0, 1)"),
    ({"grad_clip": -1}, "train.grad_clip must be 0 (no clipping) or positive, got -1.0"),
    ({"optimizer": "adam"}, "train.optimizer: 'adam' is not one of adamw, sgd"),
    ({"schedule": "step"}, "train.schedule: 'step' is not one of cosine, multistep"),
])
def test_inconsistent_recipes_are_one_line_errors(train, words):
    with pytest.raises(ConfigError) as error:
        config_from_dict({"train": train})
    assert words in str(error.value) and "\n" not in str(error.value)


# ---- keep-ratio warp ------------------------------------------------------------------------------------
def _old_warp_matrix(src_hw, input_hw, augment, rng):
    """The stretch warp as it was before keep_ratio existed (the reference for keep_ratio=False)."""
    src_h, src_w = src_hw
    dst_h, dst_w = input_hw
    to_origin = np.array([[1, 0, -src_w / 2], [0, 1, -src_h / 2], [0, 0, 1]], np.float64)
    scale = rng.uniform(*augment.scale)
    scale_x = scale * rng.uniform(*augment.stretch) * dst_w / src_w
    scale_y = scale * rng.uniform(*augment.stretch) * dst_h / src_h
    if rng.random() < augment.flip:
        scale_x = -scale_x
    shift_x = rng.uniform(0.5 - augment.translate, 0.5 + augment.translate) * dst_w
    shift_y = rng.uniform(0.5 - augment.translate, 0.5 + augment.translate) * dst_h
    return np.array([[scale_x, 0, shift_x], [0, scale_y, shift_y], [0, 0, 1]], np.float64) @ to_origin


def _official_keep_ratio_matrix(src_hw, input_hw, augment, rng):
    """NanoDet's warp_and_resize composition, ResizeM @ T @ F @ Str @ Scl @ C, with our draws."""
    (h, w), (dst_h, dst_w) = src_hw, input_hw
    scale = rng.uniform(*augment.scale)
    stretch = np.diag([rng.uniform(*augment.stretch), rng.uniform(*augment.stretch), 1.0])
    flip = np.diag([-1.0 if rng.random() < augment.flip else 1.0, 1.0, 1.0])
    translate = np.eye(3)
    translate[:2, 2] = [rng.uniform(0.5 - augment.translate, 0.5 + augment.translate) * w,
                        rng.uniform(0.5 - augment.translate, 0.5 + augment.translate) * h]
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    ratio = dst_h / h if w / h < dst_w / dst_h else dst_w / w
    resize = np.array([[1, 0, dst_w / 2], [0, 1, dst_h / 2], [0, 0, 1]]) @ np.diag([ratio, ratio, 1.0]) @ centre
    return resize @ translate @ flip @ stretch @ np.diag([scale, scale, 1.0]) @ centre


@pytest.mark.parametrize("src_hw, input_hw, rect", [
    ((100, 200), (64, 64), [0, 16, 64, 48]),  # landscape into a square: full width, centred vertically
    ((100, 50), (128, 160), [48, 0, 112, 128]),  # portrait into a landscape input: full height, centred
])
def test_keep_ratio_fits_the_image_centred(src_hw, input_hw, rect):
    augment = AugmentConfig(scale=[1, 1], stretch=[1, 1], translate=0.0, flip=0.0, keep_ratio=True,
                            brightness=0.0, contrast=[1, 1], saturation=[1, 1])
    matrix = random_warp_matrix(src_hw, input_hw, augment, np.random.default_rng(0))
    full = np.array([[0, 0, src_hw[1], src_hw[0]]], np.float64)
    np.testing.assert_allclose(warp_boxes(full, matrix, input_hw[1], input_hw[0])[0], rect, atol=1e-9)
    image = np.full((*src_hw, 3), 200, np.uint8)  # on real pixels: grey inside the rectangle, black around it
    chw, _, _, _ = TrainTransform(input_hw, augment)(image, full, np.array([0]), np.random.default_rng(0))
    pixels = chw.transpose(1, 2, 0) * np.array(BGR_STD, np.float32) + np.array(BGR_MEAN, np.float32)
    x1, y1, x2, y2 = rect
    np.testing.assert_allclose(pixels[y1 + 1:y2 - 1, x1 + 1:x2 - 1], 200, atol=0.5)
    near = np.zeros(input_hw, bool)  # (one pixel around the rectangle blends the image edge with black)
    near[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1] = True
    np.testing.assert_allclose(pixels[~near], 0, atol=1e-3)


def test_keep_ratio_follows_nanodet_and_stretch_is_unchanged():
    augment = AugmentConfig(keep_ratio=True, flip=0.5, translate=0.2, stretch=[0.8, 1.2])
    for seed in range(20):
        src_hw = (int(np.random.default_rng(seed).integers(50, 500)), 333)
        ours = random_warp_matrix(src_hw, (320, 416), augment, np.random.default_rng(seed))
        official = _official_keep_ratio_matrix(src_hw, (320, 416), augment, np.random.default_rng(seed))
        np.testing.assert_allclose(ours, official, rtol=1e-12, atol=1e-9)
        stretch = AugmentConfig(flip=0.5, translate=0.2)
        assert np.array_equal(random_warp_matrix(src_hw, (320, 416), stretch, np.random.default_rng(seed)),
                              _old_warp_matrix(src_hw, (320, 416), stretch, np.random.default_rng(seed)))


# ---- training without EMA -------------------------------------------------------------------------------
@pytest.fixture()
def legacy_run(tmp_path, coco_train):
    ann, images = coco_train
    ann = tiny_coco(ann, tmp_path / "data")
    train = {**LEGACY_TRAIN, "epochs": 2, "batch_size": 4, "warmup_steps": 2, "milestones": [1], "val_interval": 1}

    def make(name: str) -> Config:
        overrides = [f"augment.{k}={v}" for k, v in LEGACY_AUGMENT.items()]
        return load_config(tiny_config(tmp_path / name, ann, images, **train), overrides)
    return make


def test_no_ema_trains_saves_and_resumes(tmp_path, legacy_run, monkeypatch):
    evaluated = []
    original = train_module.evaluate_in_training
    monkeypatch.setattr(train_module, "evaluate_in_training",
                        lambda model, *args, **kwargs: evaluated.append(model) or original(model, *args, **kwargs))
    first = Trainer(legacy_run("b"), torch.device("cpu"), DistInfo())
    assert first.ema is None and isinstance(first.optimizer, torch.optim.SGD)
    first.fit(stop_epoch=1)
    assert first.global_step == 2 and first.skipped_steps == 0
    assert evaluated == [first.model]  # evaluation scores the trained model
    last = read_checkpoint(tmp_path / "b/run/last.pt")
    assert "ema" not in last.train_state and last.epoch == 1
    for name, value in first.model.state_dict().items():  # the deployable weights are the model's own
        torch.testing.assert_close(last.model[name], value, msg=name)
    model, _, _ = load_model(tmp_path / "b/run/best.pt")
    assert model.aux_head is None

    resumed = Trainer(legacy_run("b"), torch.device("cpu"), DistInfo(), resume="auto")
    resumed.fit()
    straight = Trainer(legacy_run("a"), torch.device("cpu"), DistInfo())
    straight.fit()
    assert resumed.global_step == straight.global_step == 4
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.014)  # past the milestone
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)

    with_ema = load_config(tmp_path / "b/tiny.yml", ["train.ema_decay=0.9998"] +
                           [f"augment.{k}={v}" for k, v in LEGACY_AUGMENT.items()])
    with pytest.raises(UserError, match="has no EMA state but train.ema_decay is 0.9998; cannot resume"):
        Trainer(with_ema, torch.device("cpu"), DistInfo(), resume="auto")
    adamw = load_config(tmp_path / "b/tiny.yml", ["train.optimizer=adamw"])
    with pytest.raises(UserError, match="trained with train.optimizer sgd, the config says adamw"):
        Trainer(adamw, torch.device("cpu"), DistInfo(), resume="auto")
