"""The learning-rate schedule and the EMA update, checked against their formulas."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nanogfl.config import TrainConfig
from nanogfl.engine.ema import ModelEMA
from nanogfl.engine.schedule import learning_rate


def test_warmup_then_cosine():
    cfg = TrainConfig(epochs=10, lr=1e-3, min_lr=5e-5, warmup_steps=100, warmup_ratio=1e-4)
    assert learning_rate(cfg, 0, 0) == pytest.approx(1e-3 * 1e-4)  # warmup starts at lr * ratio
    assert learning_rate(cfg, 0, 50) == pytest.approx(1e-3 * (1e-4 + (1 - 1e-4) * 0.5))
    assert learning_rate(cfg, 0, 100) == pytest.approx(1e-3)  # warmup done, cosine at epoch 0
    half = 5e-5 + 0.5 * (1e-3 - 5e-5) * (1 + math.cos(math.pi * 5 / 10))
    assert learning_rate(cfg, 5, 10_000) == pytest.approx(half)
    assert learning_rate(cfg, 10, 10_000) == pytest.approx(5e-5)  # the floor at the last epoch
    epochs = [learning_rate(cfg, e, 10_000) for e in range(11)]
    assert all(a > b for a, b in zip(epochs, epochs[1:]))  # strictly decreasing over the run


def test_warmup_scales_the_cosine_of_its_epoch():
    cfg = TrainConfig(epochs=4, lr=1e-2, min_lr=0.0, warmup_steps=1000, warmup_ratio=0.1)
    cosine_epoch_1 = 0.5 * 1e-2 * (1 + math.cos(math.pi / 4))
    assert learning_rate(cfg, 1, 500) == pytest.approx(cosine_epoch_1 * (0.1 + 0.9 * 0.5))


def test_ema_follows_the_nanodet_plus_formula():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = ModelEMA(model, decay=0.9998, ramp=2000.0)
    expected = 1.0
    for step in range(3):
        with torch.no_grad():
            model.weight.fill_(float(step + 2))
        weight = 0.9998 * math.exp(-(step + 1) / 2000.0) + (1 - 0.9998)
        assert ema.update_weight() == pytest.approx(weight)
        ema.update(model)
        expected = expected * (1 - weight) + (step + 2) * weight
        assert ema.module.weight[0, 0].item() == pytest.approx(expected, rel=1e-6)
    # late in training the update weight settles at 1 - decay
    ema.updates = 10 ** 6
    assert ema.update_weight() == pytest.approx(2e-4)


def test_ema_copies_integer_buffers():
    model = nn.BatchNorm1d(3)
    ema = ModelEMA(model)
    model.num_batches_tracked.fill_(7)
    ema.update(model)
    assert ema.module.num_batches_tracked.item() == 7
