"""Run a PyTorch checkpoint (.pt) like an exported model: the same Backend interface as ONNX Runtime and ncnn,
on the same deploy graph the exporter writes. Outside the torch-free core (it needs torch)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_model, model_meta
from ..contract import check_input_size
from ..model.deploy import deploy_model
from ..runtime.backends import Backend


class TorchBackend(Backend):
    """A checkpoint's deploy graph (BN folded, aux dropped, sigmoid on the class columns) on the CPU."""

    name = "torch"

    def __init__(self, path: Path, threads: int = 0, input_hw: tuple[int, int] | None = None) -> None:
        self.threads = threads
        if threads > 0:
            torch.set_num_threads(threads)
        model, cfg, class_names = load_model(path)
        self.model = deploy_model(model, inplace=True)
        hw = check_input_size(input_hw) if input_hw is not None else None
        super().__init__(Path(path), model_meta(cfg, class_names, hw), [Path(path)])

    def run(self, blob: np.ndarray) -> np.ndarray:
        if self.threads > 0 and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # the setting is process-wide; another backend may have changed it
        with torch.inference_mode():
            return self.model(torch.from_numpy(blob))[0].numpy()
