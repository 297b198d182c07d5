"""The parts of a run that only fine-tuning needs: real BatchNorm statistics for a checkpoint that has
placeholders, the warmup measured in epochs, and scoring the starting point (epoch 0) so that ``best.pt`` is never
worse than the weights the run started from."""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from ..checkpoint import AUX_PREFIXES
from ..config import Config, TrainConfig
from ..data.base import DetectionSource
from ..model.batchnorm_stats import normalised_batches, rebuild_batchnorm
from ..model.fuse import conv_batchnorm_pairs
from .evaluate import evaluate_in_training

if TYPE_CHECKING:
    from .train import Trainer


BN_IMAGES = 256  # training images that measure the statistics of a checkpoint with placeholder BatchNorm
BN_BATCH_SIZE = 16


def has_placeholder_batchnorm(model: nn.Module) -> bool:
    """Whether every BatchNorm the deploy model runs holds the importer's placeholders (mean 0, variance 1 - eps:
    an official model imported without ``--bn-images``). Exact in eval mode, but train mode normalises with batch
    statistics instead and computes something else entirely."""
    norms = [bn for name, (_, bn) in conv_batchnorm_pairs(model).items() if not name.startswith(AUX_PREFIXES)]
    return bool(norms) and all(bool((bn.running_mean == 0).all()) and bool((bn.running_var == 1 - bn.eps).all())
                               for bn in norms)


def measure_placeholder_batchnorm(model: nn.Module, source: DetectionSource, cfg: Config, verbose: bool) -> None:
    """Replace placeholder BatchNorm statistics by ones measured on the first training images (what
    ``nanogfl import --bn-images`` does); eval mode computes the same function before and after."""
    if not has_placeholder_batchnorm(model):
        return
    device = next(model.parameters()).device

    def images() -> Iterator[np.ndarray]:
        for index in range(min(len(source), BN_IMAGES)):
            sample = source.load(index)
            if sample is not None:
                yield sample.image

    batches = (b.to(device) for b in normalised_batches(images(), cfg.input_hw, cfg.data.mean, cfg.data.std,
                                                       BN_BATCH_SIZE))
    seen = rebuild_batchnorm(model, batches)
    if verbose:
        print(f"{cfg.train.pretrained}: placeholder BatchNorm statistics (imported without --bn-images); measured "
              f"on {seen} training images first")


def resolve_warmup(cfg: TrainConfig, steps_per_epoch: int) -> None:
    """``train.warmup_epochs`` > 0 sets ``warmup_steps`` to that many epochs of ``steps_per_epoch`` steps (the same
    number on a resume, which reads the same dataset)."""
    if cfg.warmup_epochs > 0:
        cfg.warmup_steps = max(1, round(cfg.warmup_epochs * steps_per_epoch))


def starts_from_pretrained(trainer: Trainer) -> bool:
    """A fresh fine-tuning run (not resumed) with a val set it evaluates on."""
    cfg = trainer.cfg.train
    return (bool(cfg.pretrained) and trainer.epoch == 0 and trainer.global_step == 0 and trainer.best_ap < 0
            and trainer.val_source is not None and cfg.val_interval > 0)


def evaluate_start(trainer: Trainer) -> dict:
    """Score the weights the run starts from as epoch 0: logged, and written as ``best.pt``."""
    metrics = evaluate_in_training(trainer.deployable, trainer.val_source, trainer.cfg, trainer.device, trainer.info)
    trainer.best_ap = metrics["AP"]
    trainer.save("best.pt", metrics)
    trainer.logger.log_epoch(0, {k: v for k, v in metrics.items() if k != "per_class"})
    if trainer.info.is_main:
        print(f"epoch 0 (the pretrained weights, before training): AP {metrics['AP']:.4f}")
    return metrics
