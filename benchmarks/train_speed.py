"""Training speed of the real Trainer step, two precisions in the same run, same batch, steps interleaved.

CPU: float32 channels_last (``train.cpu_bf16=off``) against the fast path (bf16 autocast + fused optimiser,
``train.cpu_bf16=auto``; ``on`` where the CPU lacks native bf16). CUDA: float32 against AMP (``train.amp``).
Real images (the COCO train subset) through the real data loader, augmentation included. Per mode: images/s,
the share of each stage of a step (data loading, forward, assignment + loss, backward, optimiser + EMA), CPU
seconds per image (robust to a shared machine), peak memory, and the host reads per step made by nanogfl code.

    python benchmarks/train_speed.py [--config configs/nanodet-plus-m_320.yml] [--batch 16] [--threads 2] \\
        [--steps 20] [--device cpu|cuda] [--workers 0] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from nanogfl.config import load_config
from nanogfl.data.loader import set_epoch
from nanogfl.engine import step as S
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.host_reads import count_host_reads
from nanogfl.engine.train import Trainer

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO.parent / "shared" / "data" / "coco_train2017_subset209"
STAGES = ("data", "forward", "loss", "backward", "optimizer")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Mode:
    """One Trainer of the comparison and its per-stage timings over the measured steps."""

    def __init__(self, name: str, trainer: Trainer, device: torch.device) -> None:
        self.name, self.trainer, self.device = name, trainer, device
        self.batches = self._batches()
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.cpu = 0.0
        self.steps = 0
        self.value_reads = 0
        self.nonzero = 0
        self.torch_reads = 0
        self.peak_bytes = 0

    def _batches(self):
        epoch = 0
        while True:  # epoch after epoch of the real loader (a new shuffle and augmentation each)
            self.trainer.epoch = epoch
            set_epoch(self.trainer.loader, epoch)
            yield from self.trainer.loader
            epoch += 1

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def step(self, measure: bool) -> None:
        trainer = self.trainer
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        marks = [time.perf_counter()]
        cpu_start = cpu_seconds()
        batch = next(self.batches)
        marks.append(time.perf_counter())
        with count_host_reads() as reads:
            on_device = S.to_device(trainer, batch)
            preds, aux_preds = S.forward(trainer, on_device)
            self._sync()
            marks.append(time.perf_counter())
            loss, terms = S.compute_loss(trainer, preds, aux_preds, on_device)
            self._sync()
            marks.append(time.perf_counter())
            grad_norm = S.backward(trainer, loss)
            self._sync()
            marks.append(time.perf_counter())
            S.update(trainer, loss, grad_norm, on_device)
            self._sync()
            marks.append(time.perf_counter())
        if not measure:
            return
        for stage, start, end in zip(STAGES, marks, marks[1:]):
            self.seconds[stage] += end - start
        self.cpu += cpu_seconds() - cpu_start
        self.steps += 1
        self.value_reads += reads.value_reads()
        self.nonzero += reads.library["nonzero"]
        self.torch_reads += sum(reads.other.values())
        if self.device.type == "cuda":
            self.peak_bytes = max(self.peak_bytes, torch.cuda.max_memory_allocated(self.device))

    def images_per_second(self, batch: int) -> float:
        return self.steps * batch / sum(self.seconds.values())

    def cpu_per_image(self, batch: int) -> float:
        return self.cpu / (self.steps * batch)

    def report(self, batch: int) -> str:
        total = sum(self.seconds.values())
        shares = "  ".join(f"{s} {100 * self.seconds[s] / total:4.1f}%" for s in STAGES)
        memory = f", peak {self.peak_bytes / 2**20:.0f} MiB" if self.peak_bytes else ""
        return (f"{self.name:>5}: {self.images_per_second(batch):6.2f} img/s, {self.cpu_per_image(batch):.3f} CPU s/img"
                f"{memory} | {shares}\n       {self.trainer.precision.note}; host reads per step by nanogfl: "
                f"{self.value_reads / self.steps:.1f} (+ {self.nonzero / self.steps:.1f} nonzero; torch's own: "
                f"{self.torch_reads / self.steps:.0f})")


def build_trainer(args: argparse.Namespace, overrides: list[str], out: Path) -> Trainer:
    base = [f"train.batch_size={args.batch}", f"data.workers={args.workers}", "data.train.format=coco",
            f"data.train.ann={TRAIN / 'instances_train2017_subset.json'}", f"data.train.images={TRAIN / 'images'}",
            'data.val.ann=""', f"output_dir={out}", "train.warmup_steps=0"]
    if args.size:
        base.append(f"model.input_size=[{args.size},{args.size}]")
    cfg = load_config(args.config, base + args.set + overrides)
    return Trainer(cfg, torch.device(args.device), DistInfo(), overwrite=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "nanodet-plus-m_320.yml"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=0, help="square input size (default: the config's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="measured steps per mode (after 2 warm-up steps)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: data loading is timed "
                                                                "in the step)")
    parser.add_argument("--fast", default="auto", choices=["auto", "on"], help="CPU: train.cpu_bf16 of the fast "
                                                                              "mode (on: also without native bf16)")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides for both modes (key.path=value)")
    args = parser.parse_args()
    if not TRAIN.is_dir():
        print(f"{TRAIN} not found: the benchmark trains on the shared COCO train subset")
        return 1
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        pairs = [("fp32", ["train.amp=false"]), ("amp", ["train.amp=true"])]
    else:
        pairs = [("fp32", ["train.cpu_bf16=off"]), ("fast", [f"train.cpu_bf16={args.fast}"])]
    with tempfile.TemporaryDirectory() as tmp:
        modes = [Mode(name, build_trainer(args, overrides, Path(tmp) / name), device) for name, overrides in pairs]
        for mode in modes:
            mode.trainer.model.train()
        for warmup in range(2):
            for mode in modes:
                mode.step(measure=False)
        for i in range(args.steps):  # interleaved: a change in the machine's load hits both modes alike
            for mode in modes:
                mode.step(measure=True)
            print(f"step {i + 1}/{args.steps}: " + ", ".join(
                f"{m.name} {m.images_per_second(args.batch):.2f} img/s" for m in modes), flush=True)
    cfg = modes[0].trainer.cfg
    print(f"\n{cfg.model.arch} {cfg.input_hw[0]}x{cfg.input_hw[1]}, batch {args.batch}, {args.threads} threads, "
          f"{args.device}, {args.workers} workers, {args.steps} steps per mode")
    for mode in modes:
        print(mode.report(args.batch))
    fast, slow = modes[1], modes[0]
    print(f"{fast.name} / fp32: {fast.images_per_second(args.batch) / slow.images_per_second(args.batch):.2f}x "
          f"images/s, {slow.cpu_per_image(args.batch) / fast.cpu_per_image(args.batch):.2f}x CPU time per image")
    if device.type == "cpu":
        print(f"peak RSS of the process (both modes): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
              f" MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
