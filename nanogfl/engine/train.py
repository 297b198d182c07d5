"""The training loop: AdamW or SGD, warmup + cosine or multistep, grad clipping, EMA (optional), AMP on CUDA,
bf16 autocast on capable CPUs, DDP, checkpoints, resume, run folders."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import Checkpoint, deployable_only, read_checkpoint, save_checkpoint
from ..config import Config
from ..data.loader import DetectionDataset, build_loader, set_epoch
from ..data.sources import open_datasets
from ..data.summary import check_datasets
from ..data.transforms import train_transform
from ..errors import UserError
from ..model.build import build_criterion, build_detector
from ..model.losses import reduce_mean
from ..model.server_weights import load_torchvision_backbone
from . import distributed as D
from .ema import ModelEMA
from .evaluate import evaluate_in_training
from .finetune import evaluate_start, measure_placeholder_batchnorm, resolve_warmup, starts_from_pretrained
from .freeze import freeze, train_mode
from .logger import MetricLogger
from .optim import build_optimizer
from .precision import choose_precision
from .pretrained import load_pretrained
from .report import split_curves, write_run_report
from .resume import resumable_state
from .run_dir import agree_on_run_dir, prepare_run_dir
from .schedule import learning_rate
from .step import train_step

LOG_EVERY_STEPS = 10  # the progress bar's loss readout (a host read of the running sums)


class TrainStep(nn.Module):
    """Routes DDP's forward through ``forward_train`` so gradient sync hooks see it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, epoch: int):
        return self.model.forward_train(images, epoch)


class Trainer:
    """One training run of ``cfg`` on ``device``: data, model, optimiser, EMA, checkpoints, logs.

    >>> trainer = Trainer(load_config("configs/coco-subset_nanodet-plus-m_320.yml"), torch.device("cpu"), DistInfo())
    >>> metrics = trainer.fit()          # trains to train.epochs, writes last.pt / best.pt in the run folder
    >>> Trainer(cfg, device, info, resume="auto").fit()   # continue from OUTPUT_DIR/last.pt exactly

    The run folder (``cfg.output_dir`` is set to it) is OUTPUT_DIR, or OUTPUT_DIR-2, ... when that holds another run
    (run_dir.py); ``overwrite`` replaces that run instead.
    """

    def __init__(self, cfg: Config, device: torch.device, info: D.DistInfo, resume: str | None = None,
                 overwrite: bool = False) -> None:
        self.cfg = cfg
        self.device = device
        self.info = info
        self.out = agree_on_run_dir(Path(cfg.output_dir), info, resume, overwrite)
        cfg.output_dir = str(self.out)
        D.seed_everything(cfg.train.seed)

        self.train_source, self.val_source = open_datasets(cfg)
        self.class_names = list(self.train_source.class_names)
        check_datasets(cfg, self.train_source, self.val_source, show=info.is_main)  # stops when there are no boxes
        if info.world_size > cfg.train.batch_size or cfg.train.batch_size % info.world_size:
            raise UserError(f"train.batch_size {cfg.train.batch_size} must be a multiple of the number of "
                            f"processes ({info.world_size})")
        transform = train_transform(cfg)
        dataset = DetectionDataset(self.train_source, transform, seed=cfg.train.seed)
        self.loader = build_loader(dataset, cfg.train.batch_size // info.world_size, shuffle=True,
                                   workers=cfg.data.workers, distributed=info.enabled, seed=cfg.train.seed,
                                   drop_last=len(dataset) >= cfg.train.batch_size)
        if len(self.loader) == 0:
            raise UserError(f"{cfg.data.train.ann}: not enough images for one batch of {cfg.train.batch_size}")
        resolve_warmup(cfg.train, len(self.loader))

        self.model = build_detector(cfg.model, len(self.class_names)).to(device)
        if device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)  # depthwise backward is faster
        if cfg.train.backbone_weights and not cfg.train.pretrained and not resume:
            load_torchvision_backbone(self.model.backbone, cfg.train.backbone_weights)
        if cfg.train.pretrained and not resume:
            aux_trained = load_pretrained(self.model, cfg.train.pretrained, self.class_names)
            measure_placeholder_batchnorm(self.model, self.train_source, cfg, info.is_main)
            if cfg.model.assign_guidance == "auto" and not aux_trained:
                # A fresh aux head would hand out near-random targets and wreck the pretrained main head.
                cfg.model.assign_guidance = "main"  # saved in the checkpoint config, so a resume keeps it
                if info.is_main:
                    print(f"{cfg.train.pretrained} has no trained aux branch: the main head guides assignment")
        freeze(self.model, cfg.train.freeze)
        self.assign_with_aux = cfg.model.assign_guidance != "main"
        self.criterion = build_criterion(cfg.model, len(self.class_names))
        self.precision = choose_precision(cfg.train, device)
        # The bf16 path also takes the fused CPU optimiser (same update, other rounding); fp32 keeps the for-loop.
        self.optimizer = build_optimizer(self.model, cfg.train, fused=self.precision.dtype == torch.bfloat16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision.uses_grad_scaler)
        self.ema = ModelEMA(self.model, cfg.train.ema_decay, cfg.train.ema_ramp) if cfg.train.ema_decay > 0 else None
        self.step_module: nn.Module = TrainStep(self.model)
        if info.enabled:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=[device.index] if device.type == "cuda" else None)
        self.epoch = 0
        self.global_step = 0
        self.best_ap = -1.0
        self.curves: dict = {}  # of the last evaluation, for the run's pictures
        self.skipped_steps = 0
        self.bad_in_a_row = 0  # non-finite losses in a row (step.py)
        self._announced = False
        if resume:
            self._resume(self.out / "last.pt" if resume == "auto" else Path(resume))
        if info.is_main:
            prepare_run_dir(self.out, cfg, overwrite)
        self.logger = MetricLogger(self.out, enabled=info.is_main)

    @property
    def deployable(self) -> nn.Module:
        """What checkpoints deploy and evaluation scores: the EMA module, or the model itself without EMA."""
        return self.model if self.ema is None else self.ema.module

    # ---- checkpoints -------------------------------------------------------------------------------------
    def _checkpoint(self, metrics: dict | None = None) -> Checkpoint:
        ema = {} if self.ema is None else {"ema": self.ema.state_dict()}
        return Checkpoint(
            model=self.deployable.state_dict(),
            config=self.cfg.to_dict(),
            class_names=self.class_names,
            aux_trained=True,  # the aux losses train the aux branch whichever head guides the assignment
            epoch=self.epoch,
            metrics=metrics or {},
            train_state={
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                **ema,
                "global_step": self.global_step,
                "best_ap": self.best_ap,
                "skipped_steps": self.skipped_steps,
            },
        )

    def _resume(self, path: Path) -> None:
        checkpoint = read_checkpoint(path)
        state = resumable_state(checkpoint, path, self.cfg, self.class_names)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.global_step = int(state["global_step"])
        self.best_ap = float(state["best_ap"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.epoch = checkpoint.epoch  # the number of finished epochs
        if self.info.is_main:
            print(f"resumed from {path}: {self.epoch} epochs done, step {self.global_step}")

    def save(self, name: str, metrics: dict | None = None, resumable: bool = True) -> None:
        """``resumable``: with the training state (last.pt); otherwise the deployable weights only (best.pt)."""
        if self.info.is_main:
            checkpoint = self._checkpoint(metrics)
            save_checkpoint(self.out / name, checkpoint if resumable else deployable_only(checkpoint))

    # ---- training ----------------------------------------------------------------------------------------
    def train_one_epoch(self) -> dict:
        from tqdm import tqdm

        cfg = self.cfg.train
        train_mode(self.model, cfg.freeze)
        set_epoch(self.loader, self.epoch)
        sums: torch.Tensor | None = None  # float64 running sums of the loss terms over the applied steps
        names: list[str] = []
        count = 0
        self.bad_in_a_row = 0
        bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=not self.info.is_main,
                   dynamic_ncols=True, leave=False)
        for batch in bar:
            lr = learning_rate(cfg, self.epoch, self.global_step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            applied, loss, terms = train_step(self, batch)
            if not applied:
                continue
            count += 1
            step_values = torch.stack([*terms.values(), loss]).double()  # summed as tensors: no host read
            sums = step_values if sums is None else sums + step_values
            names = [*terms, "loss"]
            if count % LOG_EVERY_STEPS == 1 or count == len(self.loader):
                means = dict(zip(names, (sums / count).tolist()))
                bar.set_postfix(lr=f"{lr:.2e}", **{k: f"{means[k]:.3f}" for k in ("loss", "qfl", "giou", "dfl")})
        bar.close()
        means = {} if sums is None else dict(zip(names, (sums / count).tolist()))
        if self.info.enabled and means:  # log the mean over all ranks, not rank 0's share
            keys = sorted(means)
            reduced = reduce_mean(torch.tensor([means[k] for k in keys], dtype=torch.float64))
            means = dict(zip(keys, reduced.tolist()))
        means["lr"] = learning_rate(cfg, self.epoch, self.global_step)
        means["skipped_steps"] = self.skipped_steps
        return means

    def should_validate(self) -> bool:
        interval = self.cfg.train.val_interval
        finished = self.epoch  # epochs done after the increment
        return (self.val_source is not None and interval > 0
                and (finished % interval == 0 or finished == self.cfg.train.epochs))

    def fit(self, stop_epoch: int | None = None) -> dict:
        """Train until ``train.epochs`` (or until ``stop_epoch`` epochs are done, to run in chunks)."""
        cfg = self.cfg.train
        stop = min(cfg.epochs, stop_epoch) if stop_epoch is not None else cfg.epochs
        if self.info.is_main and not self._announced:
            self._announced = True
            self.out.mkdir(parents=True, exist_ok=True)
            scale = self.cfg.model.keep_ratio_scale
            size = f"keep-ratio within {scale[0]}x{scale[1]}" if scale else "x".join(map(str, self.cfg.input_hw))
            print(f"training {self.cfg.model.arch} on {len(self.train_source)} images, {len(self.class_names)} "
                  f"classes, input {size}, {self.info.world_size} "
                  f"process(es) on {self.device}; output in {self.out}")
            print(self.precision.note)
        metrics: dict = {}
        if starts_from_pretrained(self):
            evaluate_start(self)
        while self.epoch < stop:
            start = time.time()
            stats = self.train_one_epoch()
            self.epoch += 1
            stats["epoch_seconds"] = time.time() - start
            stats["images_per_second"] = len(self.loader) * cfg.batch_size / max(stats["epoch_seconds"], 1e-9)
            metrics = {}
            if self.should_validate():
                metrics, self.curves = split_curves(evaluate_in_training(
                    self.deployable, self.val_source, self.cfg, self.device, self.info, with_curves=True))
                stats.update({k: v for k, v in metrics.items() if k != "per_class"})
            self.save("last.pt", metrics)
            if metrics and metrics["AP"] > self.best_ap:
                self.best_ap = metrics["AP"]
                self.save("best.pt", metrics, resumable=False)
                self.save("last.pt", metrics)  # keep best_ap in the resumable state
            self.logger.log_epoch(self.epoch, stats)
            if self.info.is_main:
                ap = f", AP {metrics['AP']:.4f}" if metrics else ""
                print(f"epoch {self.epoch}/{cfg.epochs}: loss {stats.get('loss', float('nan')):.4f}, "
                      f"lr {stats['lr']:.2e}, {stats['images_per_second']:.1f} img/s{ap}")
            D.barrier(self.info)
        self.logger.close()
        if self.info.is_main and self.epoch >= cfg.epochs:
            write_run_report(self.out, self.curves, self.class_names)
        return metrics


def train(cfg: Config, device: str | None = None, resume: str | None = None, overwrite: bool = False) -> dict:
    """Train ``cfg`` in this process, or as one rank of a ``torchrun`` job; returns the last metrics.

    ``device`` is cpu, cuda, cuda:1, ... (default: cuda if available); ``resume`` is a checkpoint path or
    "auto" for OUTPUT_DIR/last.pt; ``overwrite`` replaces a previous run in OUTPUT_DIR instead of writing to
    OUTPUT_DIR-2, ...
    """
    info = D.init_distributed("cuda" if (device or "").startswith("cuda") or
                              (device is None and torch.cuda.is_available()) else "cpu")
    torch_device = D.pick_device(device, info)
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    try:
        return Trainer(cfg, torch_device, info, resume=resume, overwrite=overwrite).fit()
    finally:
        D.cleanup(info)
