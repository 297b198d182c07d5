"""The parts of a run that only fine-tuning needs: the warmup measured in epochs, and scoring the starting point
(epoch 0) so that ``best.pt`` is never worse than the weights the run started from."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import TrainConfig
from .evaluate import evaluate_in_training

if TYPE_CHECKING:
    from .train import Trainer


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
