"""One optimiser step of the Trainer, in the stages ``benchmarks/train_speed.py`` times one by one.

The step reads two booleans back to the host: whether it is applied (loss and gradient norm finite; under DDP
all ranks agree through one all-reduce) and the criterion's check of the batch's labels. Loss terms stay tensors;
the epoch loop reads them at its logging interval.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..model.losses import reduce_mean
from .optim import clip_gradients

if TYPE_CHECKING:
    from .train import Trainer

# nanogfl's host reads in one step: whether to apply it, and the criterion's check of the batch's labels
HOST_READS_PER_STEP = 2


@dataclass(frozen=True)
class DeviceBatch:
    """A loader batch on the training device: images (channels_last on the CPU), per-image boxes and labels,
    each image's valid (height, width) inside the padded batch."""
    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    image_hw: list[tuple[int, int]]
    image_ids: list[Any]


def to_device(trainer: Trainer, batch: dict) -> DeviceBatch:
    device = trainer.device
    images = batch["images"].to(device, non_blocking=True)
    if device.type == "cpu":
        images = images.contiguous(memory_format=torch.channels_last)
    return DeviceBatch(images, [b.to(device, non_blocking=True) for b in batch["boxes"]],
                       [lb.to(device, non_blocking=True) for lb in batch["labels"]], batch["image_hw"],
                       batch["image_ids"])


def forward(trainer: Trainer, batch: DeviceBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Main and aux predictions, under the run's autocast (float16 on CUDA, bfloat16 on capable CPUs)."""
    with trainer.precision.autocast():
        return trainer.step_module(batch.images, trainer.epoch)


def compute_loss(trainer: Trainer, preds: torch.Tensor, aux_preds: torch.Tensor | None, batch: DeviceBatch
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Assignment and losses in float32, outside autocast."""
    return trainer.criterion(preds.float(), None if aux_preds is None else aux_preds.float(), batch.boxes,
                             batch.labels, tuple(batch.images.shape[2:]), trainer.assign_with_aux, batch.image_hw)


def backward(trainer: Trainer, loss: torch.Tensor) -> torch.Tensor:
    """Gradients of ``loss`` (unscaled, clipped); returns the global gradient norm before clipping."""
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.scaler.scale(loss).backward()
    trainer.scaler.unscale_(trainer.optimizer)
    return clip_gradients(trainer.model.parameters(), trainer.cfg.train.grad_clip)


def _agreed(trainer: Trainer, flag: torch.Tensor) -> bool:
    """``flag`` true on every rank (the one host read of a step)."""
    if trainer.info.enabled:  # every rank must take the same branch, or DDP's collectives fall out of step
        flag = reduce_mean(flag.float().reshape(1)) == 1.0
    return bool(flag)


def update(trainer: Trainer, loss: torch.Tensor, grad_norm: torch.Tensor, batch: DeviceBatch) -> bool:
    """Apply the step (optimiser, scaler, EMA) when loss and gradients are finite; returns whether it was.

    A non-finite loss skips the step with a warning and stops the run after ``train.max_bad_steps`` in a row; a
    non-finite gradient of a finite loss is skipped silently (with AMP the scaler skips it and lowers its scale).
    """
    applied = _agreed(trainer, torch.isfinite(loss) & torch.isfinite(grad_norm))
    if not applied:  # rare: read again which of the two it was (all ranks are here together)
        if not _agreed(trainer, torch.isfinite(loss)):
            _skip_bad_loss(trainer, batch)
            return False
        trainer.bad_in_a_row = 0
        if not trainer.precision.uses_grad_scaler:
            _discard_gradients(trainer)
            trainer.skipped_steps += 1
            trainer.global_step += 1
            return False
    trainer.bad_in_a_row = 0
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    if trainer.ema is not None:
        trainer.ema.update(trainer.model)
    trainer.global_step += 1
    return True


def _discard_gradients(trainer: Trainer) -> None:
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.scaler.update()  # AMP: closes the unscale_ of this step, lowering the scale as for an overflow


def _skip_bad_loss(trainer: Trainer, batch: DeviceBatch) -> None:
    _discard_gradients(trainer)
    trainer.skipped_steps += 1
    trainer.bad_in_a_row += 1
    if trainer.info.is_main:
        ids = ", ".join(map(str, batch.image_ids[:8]))
        warnings.warn(f"non-finite loss at step {trainer.global_step}: step skipped "
                      f"({trainer.skipped_steps} skipped so far; batch image ids {ids})")
    if trainer.bad_in_a_row >= trainer.cfg.train.max_bad_steps:
        raise RuntimeError(f"{trainer.bad_in_a_row} non-finite losses in a row: stopping. The last good "
                           f"checkpoint is {trainer.out / 'last.pt'}; try a lower train.lr")
    trainer.global_step += 1


def train_step(trainer: Trainer, batch: dict) -> tuple[bool, torch.Tensor, dict[str, torch.Tensor]]:
    """One step on a loader batch: (applied, loss, detached loss terms)."""
    on_device = to_device(trainer, batch)
    preds, aux_preds = forward(trainer, on_device)
    loss, terms = compute_loss(trainer, preds, aux_preds, on_device)
    grad_norm = backward(trainer, loss)
    return update(trainer, loss, grad_norm, on_device), loss.detach(), terms
