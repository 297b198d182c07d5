"""Deploy graph -> ncnn .param/.bin with pnnx, blobs renamed to ``data`` / ``output``.

pnnx writes many side files (TorchScript .pt, .pnnx.param/.bin, _pnnx.py, _ncnn.py, .pnnx.onnx); the conversion
runs in a private temporary folder and only the two ncnn files leave it.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from ..contract import INPUT_BLOB, OUTPUT_BLOB
from ..model.deploy import DeployModel
from .common import ExportError, require_module

PNNX_INPUT_BLOB = "in0"
PNNX_OUTPUT_BLOB = "out0"
PARAM_MAGIC = "7767517"


def export_ncnn(deploy: DeployModel, input_hw: tuple[int, int], param_path: str | Path,
                fp16: bool = True) -> tuple[Path, Path]:
    """Write ``param_path`` and the .bin beside it; ``fp16`` stores the weights as half floats."""
    pnnx = require_module("pnnx", "ncnn export")
    param_path = Path(param_path)
    bin_path = param_path.with_suffix(".bin")
    with tempfile.TemporaryDirectory(prefix="nanogfl-pnnx-") as work_dir:
        work = Path(work_dir)
        dummy = torch.zeros(1, 3, *input_hw)
        with torch.no_grad():
            torch.jit.trace(deploy, dummy, check_trace=False).save(str(work / "model.pt"))
        command = [pnnx.EXEC_PATH, str(work / "model.pt"), f"inputshape=[1,3,{input_hw[0]},{input_hw[1]}]f32",
                   "device=cpu", f"fp16={int(fp16)}"]
        command += [f"{key}={work / name}" for key, name in (
            ("pnnxparam", "model.pnnx.param"), ("pnnxbin", "model.pnnx.bin"), ("pnnxpy", "model_pnnx.py"),
            ("pnnxonnx", "model.pnnx.onnx"), ("ncnnparam", "model.ncnn.param"), ("ncnnbin", "model.ncnn.bin"),
            ("ncnnpy", "model_ncnn.py"))]
        result = subprocess.run(command, cwd=work, capture_output=True, text=True)
        produced_param, produced_bin = work / "model.ncnn.param", work / "model.ncnn.bin"
        if result.returncode != 0 or not produced_param.is_file() or not produced_bin.is_file():
            lines = (result.stderr or result.stdout).strip().splitlines()
            detail = lines[-1] if lines else f"exit status {result.returncode}"
            raise ExportError(f"pnnx failed to convert the model to ncnn: {detail}")
        renamed = rename_blobs(produced_param.read_text(), {PNNX_INPUT_BLOB: INPUT_BLOB,
                                                           PNNX_OUTPUT_BLOB: OUTPUT_BLOB})
        param_path.write_text(renamed)
        shutil.move(str(produced_bin), bin_path)
    return param_path, bin_path


def rename_blobs(param_text: str, renames: dict[str, str]) -> str:
    """Rename blobs (and the Input layer) in an ncnn .param text; every old name must exist, no new name may."""
    lines = param_text.splitlines()
    if not lines or lines[0].strip() != PARAM_MAGIC:
        raise ExportError("pnnx wrote an ncnn .param without the 7767517 magic line")
    out = lines[:2]
    seen: set[str] = set()
    for line in lines[2:]:
        tokens = line.split()
        if len(tokens) < 4:
            out.append(line)
            continue
        inputs, outputs = int(tokens[2]), int(tokens[3])
        blob_slots = range(4, 4 + inputs + outputs)
        for i in blob_slots:
            if tokens[i] in renames.values():
                raise ExportError(f"the ncnn graph already has a blob named {tokens[i]!r}")
            if tokens[i] in renames:
                seen.add(tokens[i])
                tokens[i] = renames[tokens[i]]
        if tokens[0] == "Input" and tokens[1] in renames:
            tokens[1] = renames[tokens[1]]
        out.append(f"{tokens[0]:<24} {tokens[1]:<24} " + " ".join(tokens[2:]))
    missing = sorted(set(renames) - seen)
    if missing:
        raise ExportError(f"the ncnn graph from pnnx has no blob {missing[0]!r} (expected one input and one output)")
    return "\n".join(out) + "\n"
