"""The flag vocabulary every subcommand shares, and opening any model file (.pt, .onnx, .param).

``--model`` is every model file (``--weights`` is an alias), ``--out`` every output location, ``--json PATH``
writes the command's results as JSON to PATH (``-`` or no PATH: stdout), ``--size S`` or ``--size H W``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..contract import check_input_size
from ..errors import UserError
from ..runtime.backends import (
    INSTALL_HINTS,
    PRECISION_CHOICES,
    Backend,
    open_model,
    resolve_model_path,
    resolve_precision,
)
from ..runtime.track import TrackerSettings

PRECISION_HELP = ("ncnn arithmetic: fp32 (ncnn's fp16 storage/arithmetic off), fp16 (ncnn's fp16 where the CPU has "
                  "it: ARMv8.2, e.g. Raspberry Pi 5; faster, less exact), auto: the model metadata's ncnn_precision, "
                  "the one its export was verified in (default: auto); a checkpoint (.pt): fp16 runs it in half "
                  "precision, with --device cuda only")


def add_model(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--model", "--weights", dest="model", required=True, metavar="MODEL", help=help)


def add_size(parser: argparse.ArgumentParser, help: str = "input size S or H W (default: the model's)") -> None:
    parser.add_argument("--size", nargs="+", type=int, metavar="N", help=help)


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help=f"write {what} as JSON to PATH ('-' or no PATH: standard output)")


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: the library default)")


def add_precision(parser: argparse.ArgumentParser, several: bool = False) -> None:
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default=["auto"] if several else "auto",
                        nargs="+" if several else None,
                        help=PRECISION_HELP + ("; several values: one row each" if several else ""))


def add_track(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--track", action="store_true",
                        help="follow objects across video/camera frames (ByteTrack-style): each detection gets a "
                             "track_id and the end summary counts the distinct objects per class; detections "
                             f"down to {TrackerSettings.low_score} may continue a track, only those at --score or "
                             "above start one")


def tracker_settings(track: bool, score: float) -> TrackerSettings | None:
    """The tracker settings for ``--track`` (None without it) around the ``--score`` threshold."""
    if not track:
        return None
    if not 0.0 <= score <= 1.0:
        raise UserError(f"--score {score}: must be within [0, 1] with --track")
    return TrackerSettings.for_score(score)


def input_size(values: list[int] | None) -> tuple[int, int] | None:
    """``--size S`` or ``--size H W`` -> (height, width), checked; None when not given."""
    if not values:
        return None
    if len(values) not in (1, 2):
        raise UserError(f"--size {' '.join(map(str, values))}: give S or H W")
    return check_input_size((values[0], values[-1]), "--size")


def torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def require_torch(path: str | Path) -> None:
    """A one-line hint instead of a ModuleNotFoundError when a .pt meets a torch-free install."""
    if not torch_importable():
        raise UserError(f"{path}: {INSTALL_HINTS['torch']}")


def require_torch_for(command: str, extra: str) -> None:
    """The same hint for a command that always needs torch (train, info, import, export); the parser of such a
    command sets ``torch_extra``, the pip extra that brings torch and the rest it needs, and ``main`` calls this
    before the command runs."""
    if not torch_importable():
        raise UserError(f"nanogfl {command} needs PyTorch: pip install 'nanogfl[{extra}]' torch==2.13.0 "
                        f"(exported .onnx/.param models run without it: predict, demo, benchmark, val)")


def open_model_file(path: str | Path, threads: int = 0, backend: str | None = None,
                    input_hw: tuple[int, int] | None = None, precision: str = "auto", device: str = "cpu") -> Backend:
    """Any model file as a Backend: ONNX / ncnn through the torch-free runtime, a .pt checkpoint through PyTorch
    (on ``device``; fp16 on CUDA)."""
    resolved, kind = resolve_model_path(path, backend)
    if kind != "torch":
        if device != "cpu":
            raise UserError(f"{resolved}: --device {device} runs checkpoints (.pt); {kind} models run on the CPU")
        return open_model(resolved, threads=threads, input_hw=input_hw, precision=precision)
    half = resolve_precision(resolved, kind, precision) == "fp16"
    require_torch(resolved)
    from ..engine.torch_backend import TorchBackend

    return TorchBackend(resolved, threads, input_hw, device, half)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu",
                        help="where a checkpoint (.pt) runs: cpu, cuda or cuda:N (default: %(default)s; with cuda, "
                             "--precision fp16 runs it in half precision)")
