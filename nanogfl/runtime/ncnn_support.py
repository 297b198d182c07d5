"""What the ncnn backend needs to know besides running a graph: the options behind each precision, what this
CPU does in fp16, and whether a graph runs only at the input size it was exported for. No ncnn import at load."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from .metadata import ModelMeta

# ncnn options per precision (contract.NcnnPrecision); "fp16" is ncnn's own default, each option taking effect
# only where the CPU supports it
NCNN_PRECISION_OPTIONS = {
    "fp32": {"use_fp16_packed": False, "use_fp16_storage": False, "use_fp16_arithmetic": False,
             "use_bf16_storage": False},
    "fp16": {"use_fp16_packed": True, "use_fp16_storage": True, "use_fp16_arithmetic": True,
             "use_bf16_storage": False},
}


def ncnn_has_fp16() -> bool:
    """Whether ncnn's fp16 options change anything on this CPU: its fp16 storage and arithmetic kernels need
    ARMv8.2 half-precision vector arithmetic (asimdhp: Cortex-A55/A76, the Pi 5). Not on the Pi 4's Cortex-A72,
    not on x86 (measured: fp16 and fp32 outputs bit-identical), so "fp16" computes in fp32 there."""
    import ncnn

    return bool(ncnn.cpu_support_arm_asimdhp())


def ncnn_fixed_size(param: Path) -> bool:
    """Whether an ncnn graph runs only at the size it was exported for: pnnx writes the number of priors of each
    level into its Reshape layers (``0=2704 1=112``), the official NanoDet-Plus files let ncnn infer it
    (``0=-1 1=112``)."""
    for line in param.read_text(errors="replace").splitlines()[2:]:
        fields = line.split()
        if len(fields) > 4 and fields[0] == "Reshape":
            count = int(fields[2]) + int(fields[3])
            shape = [value for key, value in (f.split("=", 1) for f in fields[4 + count:] if "=" in f)
                     if key in ("0", "1", "2", "11")]
            if shape and "-1" not in shape and "0" not in shape:
                return True
    return False


def check_ncnn_size(path: Path, meta: ModelMeta, input_hw: tuple[int, int]) -> None:
    """Refuse running a size-bound ncnn model at another size than its metadata's (one line, at open time).
    Per-level outputs (``split_outputs``, the official NanoDet-m) and inferred reshapes run at any size."""
    if tuple(input_hw) == tuple(meta.input_hw) or meta.split_outputs or not ncnn_fixed_size(path):
        return
    (h, w), (eh, ew) = input_hw, meta.input_hw
    raise UserError(f"{path}: this ncnn model was exported for {eh}x{ew} (height x width) and runs only at that "
                    f"size, not {h}x{w}; drop --size, or export again with --size {h} {w}")


def extract_blobs(ncnn: Any, net: Any, input_name: str, blob: np.ndarray, names: Sequence[str],
                  where: str) -> list[np.ndarray]:
    """One forward pass of an ncnn ``net`` on ``blob`` [1, 3, H, W]: the arrays of the blobs ``names``
    (``where`` names the model in an error)."""
    extractor = net.create_extractor()
    image = np.ascontiguousarray(blob[0])  # ncnn works on CHW; keep the array alive while the Mat refers to it
    extractor.input(input_name, ncnn.Mat(image))
    outputs = []
    for name in names:
        status, output = extractor.extract(name)
        if status != 0:
            raise RuntimeError(f"{where}: ncnn extract of {name!r} failed with status {status}")
        outputs.append(np.array(output))
    return outputs
