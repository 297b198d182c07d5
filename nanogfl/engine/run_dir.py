"""Run folders: a new run never writes into the folder of a previous one.

A folder holds a run when it has any of ``RUN_MARKERS`` (a checkpoint, the metrics, the saved config or the
TensorBoard logs). A new run into such a folder goes to ``OUT-2``, ``OUT-3``, ... instead; ``--resume``
continues in place and ``--overwrite`` replaces the previous run's files.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from ..config import Config, save_config
from ..errors import UserError
from . import distributed as D

CONFIG_FILE = "config.yml"
RUN_FILES = ("last.pt", "best.pt", "metrics.csv", CONFIG_FILE)
RUN_FOLDERS = ("tensorboard",)
RUN_MARKERS = RUN_FILES + RUN_FOLDERS


def holds_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in RUN_MARKERS)


def _continues_in_place(out: Path, resume: Optional[str]) -> bool:
    """``--resume`` alone continues OUT; ``--resume CKPT`` does so only when CKPT lies in OUT."""
    if resume is None:
        return False
    return resume == "auto" or Path(resume).resolve().parent == out.resolve()


def choose_run_dir(out: Path, resume: Optional[str] = None, overwrite: bool = False) -> tuple[Path, Optional[str]]:
    """The folder this run writes to, and a one-line note when it is not ``out``.

    ``out`` itself when it holds no run, when the run continues there (``resume``) or with ``overwrite``;
    otherwise the first of ``out-2``, ``out-3``, ... that holds no run.
    """
    if resume is not None and overwrite:
        raise UserError("--resume continues a run and --overwrite replaces it: give one of them")
    if overwrite or _continues_in_place(out, resume) or not holds_run(out):
        return out, None
    number = 2
    while holds_run(out.with_name(f"{out.name}-{number}")):
        number += 1
    chosen = out.with_name(f"{out.name}-{number}")
    return chosen, (f"{out} holds a previous run: this run goes to {chosen} (--resume continues that run, "
                    f"--overwrite replaces it)")


def agree_on_run_dir(out: Path, info: D.DistInfo, resume: Optional[str] = None,
                     overwrite: bool = False) -> Path:
    """``choose_run_dir`` decided once, on rank 0, and broadcast: every rank of a DDP job uses one folder."""
    chosen, note = choose_run_dir(out, resume, overwrite) if info.is_main else (out, None)
    if note:
        print(note)
    return Path(D.broadcast_object(str(chosen), info))


def prepare_run_dir(folder: Path, cfg: Config, overwrite: bool = False) -> None:
    """Create the run folder (with ``overwrite``: remove the previous run's files first) and save the resolved
    config in it as ``config.yml``. Call on rank 0 only, once the run is known to start."""
    if overwrite:
        for name in RUN_FILES:
            (folder / name).unlink(missing_ok=True)
        for name in RUN_FOLDERS:
            shutil.rmtree(folder / name, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    save_config(cfg, folder / CONFIG_FILE)
