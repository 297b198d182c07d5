"""Run a PyTorch checkpoint (.pt) like an exported model: the same Backend interface as ONNX Runtime and ncnn,
on the same deploy graph the exporter writes. Outside the torch-free core (it needs torch)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_model, model_meta
from ..contract import check_input_size
from ..errors import UserError
from ..model.deploy import deploy_model
from ..runtime.backends import Backend


class TorchBackend(Backend):
    """A checkpoint's deploy graph (BN folded, aux dropped, sigmoid on the class columns) on ``device`` (the CPU,
    or a CUDA GPU; ``half``: fp16 weights and arithmetic, CUDA only)."""

    name = "torch"

    def __init__(self, path: Path, threads: int = 0, input_hw: tuple[int, int] | None = None,
                 device: str = "cpu", half: bool = False) -> None:
        self.threads = threads
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA GPU here (torch {torch.__version__}, CUDA "
                            f"{torch.version.cuda or 'not in this build'})")
        if half and self.device.type != "cuda":
            raise UserError(f"{path}: --precision fp16 runs a checkpoint on CUDA only (--device cuda); the CPU "
                            f"runs it in fp32")
        model, cfg, class_names = load_model(path)
        self.model = deploy_model(model, inplace=True).to(self.device)
        self.dtype = torch.float16 if half else torch.float32
        if half:
            self.model.half()
        self.precision = "fp16" if half else "fp32"
        hw = check_input_size(input_hw) if input_hw is not None else None
        super().__init__(Path(path), model_meta(cfg, class_names, hw), [Path(path)])
        self.config = cfg

    def run(self, blob: np.ndarray) -> np.ndarray:
        if self.threads > 0 and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # the setting is process-wide; another backend may have changed it
        with torch.inference_mode():
            inputs = torch.from_numpy(blob).to(self.device, self.dtype)
            return self.model(inputs)[0].float().cpu().numpy()
