"""Mixed precision of a training run: float16 autocast on CUDA (``train.amp``), bfloat16 autocast on CPUs with
native bf16 arithmetic (``train.cpu_bf16``), float32 everywhere else.

Weights, optimiser state and losses stay float32 in every case: only the model's forward runs under autocast;
the criterion casts the predictions to float32 and runs outside autocast.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import TrainConfig

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 dot products


def cpu_bf16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The native-bf16 flags this CPU reports (empty when it has none or the flags cannot be read)."""
    try:
        flags = set(cpuinfo.read_text(errors="replace").split())
    except OSError:  # no /proc/cpuinfo (not Linux): ask torch's own CPU feature probe, where it has one
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        return ["avx512_bf16"] if probe is not None and probe() else []
    return [flag for flag in CPU_BF16_FLAGS if flag in flags]


@dataclass(frozen=True)
class Precision:
    """What the forward of a training step runs in. ``dtype`` None: float32. ``note`` is the line the training
    log prints ("bf16 autocast on: CPU has avx512_bf16", "bf16 autocast off: ...")."""
    device_type: str
    dtype: torch.dtype | None
    note: str

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def uses_grad_scaler(self) -> bool:
        """float16 needs loss scaling; bfloat16 has float32's exponent range and does not."""
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def choose_precision(cfg: TrainConfig, device: torch.device, cpuinfo: Path = Path("/proc/cpuinfo")) -> Precision:
    """``train.amp`` on CUDA; ``train.cpu_bf16`` (auto: when the CPU has native bf16) on the CPU."""
    if device.type == "cuda":
        if cfg.amp:
            return Precision("cuda", torch.float16, "float16 autocast on (train.amp)")
        return Precision("cuda", None, "float16 autocast off (train.amp is false)")
    if device.type != "cpu":
        return Precision(device.type, None, f"mixed precision off: not supported on {device.type}")
    flags = cpu_bf16_flags(cpuinfo)
    if cfg.cpu_bf16 == "off":
        return Precision("cpu", None, "bf16 autocast off: train.cpu_bf16 is off")
    if flags:
        return Precision("cpu", torch.bfloat16, f"bf16 autocast on: CPU has {' and '.join(flags)}")
    if cfg.cpu_bf16 == "on":
        return Precision("cpu", torch.bfloat16, f"bf16 autocast on (train.cpu_bf16 on): CPU lacks "
                                                f"{' / '.join(CPU_BF16_FLAGS)}, bf16 is emulated and slow")
    return Precision("cpu", None, f"bf16 autocast off: CPU has neither {' nor '.join(CPU_BF16_FLAGS)}")
