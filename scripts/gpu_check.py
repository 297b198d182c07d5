"""The GPU half of ``scripts/gpu_check.sh``: a checkpoint written on the device evaluates identically on the CPU,
and inference latency of GFL R-50 and NanoDet-Plus-m on the device (fp32 and fp16 on CUDA).

    python scripts/gpu_check.py [--device cuda] [--tiny] [--images N]

``--tiny`` runs small inputs and reduced image counts (what the test suite runs on the CPU).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nanogfl.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from nanogfl.config import load_config
from nanogfl.engine.torch_backend import TorchBackend
from nanogfl.evaluation import evaluate_coco
from nanogfl.image_io import load_image
from nanogfl.importer.pipeline import import_model
from nanogfl.model.build import build_detector
from nanogfl.runtime.coco_names import COCO_CLASSES
from nanogfl.runtime.preprocess import prepare_input

REPO = Path(__file__).resolve().parents[1]
VAL = REPO.parent / "shared" / "data" / "coco_val2017_subset206"
OFFICIAL = REPO.parent / "shared" / "data" / "nanodet_plus_m_416_ncnn" / "nanodet-plus-m_416.param"
MODELS = {"gfl-r50": "configs/gfl_r50_fpn_1x.yml", "nanodet-plus-m": "configs/nanodet-plus-m_416.yml"}
TINY_OVERRIDES = {"gfl-r50": ["model.keep_ratio_scale=[96, 160]", "model.input_size=[96, 160]"],
                  "nanodet-plus-m": ["model.input_size=[96, 96]"]}


def write_checkpoint(name: str, device: torch.device, tiny: bool, folder: Path, official: Path | None) -> Path:
    """A model stepped once on ``device`` (its weights come from device arithmetic), saved. NanoDet-Plus-m starts
    from the official weights (imported) when they are here, so its AP means something."""
    cfg = load_config(REPO / MODELS[name], TINY_OVERRIDES[name] if tiny else [])
    torch.manual_seed(0)
    model = build_detector(cfg.model, 80)
    if name == "nanodet-plus-m" and official is not None:
        imported = folder / "imported.pt"
        import_model(official, imported, "nanodet-plus-m", cfg.input_hw, log=lambda _: None)
        model.load_state_dict(read_checkpoint(imported).model)
    model.to(device)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    main, aux = model.train().forward_train(torch.randn(2, 3, *cfg.input_hw, device=device), epoch=0)
    (main.float().square().mean() + (aux.float().square().mean() if aux is not None else 0)).backward()
    optimizer.step()
    path = folder / f"{name}.pt"
    save_checkpoint(path, Checkpoint(model={k: v.cpu() for k, v in model.state_dict().items()},
                                     config=cfg.to_dict(), class_names=list(COCO_CLASSES), aux_trained=True))
    return path


def output_difference(path: Path, device: str, frames: list[np.ndarray]) -> float:
    """Max |device - cpu| of the raw outputs on ``frames``, relative to the output range."""
    on_cpu, on_device = TorchBackend(path), TorchBackend(path, device=device)
    worst = 0.0
    for frame in frames:
        blob, _ = prepare_input(frame, on_cpu.meta)
        expected = on_cpu.forward(blob)
        worst = max(worst, float(np.abs(on_device.forward(blob) - expected).max() / np.ptp(expected)))
    return worst


def latency_ms(backend: TorchBackend, frame: np.ndarray, runs: int) -> float:
    from nanogfl.runtime.detector import Detector

    detector = Detector(backend)
    for _ in range(3):
        detector(frame)
    times = []
    for _ in range(runs):
        if backend.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        detector(frame)
        if backend.device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="small inputs, few images (the CPU test)")
    parser.add_argument("--images", type=int, default=0, help="val images scored (default: 206, tiny: 4)")
    args = parser.parse_args()
    device = torch.device(args.device)
    count = args.images or (4 if args.tiny else 206)
    ann, images = VAL / "instances_val2017_subset.json", VAL / "images"
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    official = OFFICIAL if OFFICIAL.is_file() else None
    frames = [load_image(p) for p in sorted(images.glob("*.jpg"))[:4]]
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        for name in MODELS:
            path = write_checkpoint(name, device, args.tiny, Path(folder), official)
            difference = output_difference(path, args.device, frames)
            failed |= difference > 1e-3
            line = f"{name}: written on {args.device}; outputs on {args.device} vs cpu differ by {difference:.1e}"
            if name == "nanodet-plus-m" and official is not None:
                scores = {where: evaluate_coco(TorchBackend(path, device=where), ann, images, max_images=count)["AP"]
                          for where in ("cpu", args.device)}
                failed |= abs(scores["cpu"] - scores[args.device]) > 1e-3
                line += f"; AP on {count} val images {scores[args.device]:.4f} vs cpu {scores['cpu']:.4f}"
            print(line)
            runs = 5 if args.tiny else 50
            rows = [("fp32", TorchBackend(path, device=args.device))]
            if device.type == "cuda":
                rows.append(("fp16", TorchBackend(path, device=args.device, half=True)))
            for precision, backend in rows:
                print(f"  {name} inference on {args.device} ({precision}, 640x480 frame, pre/postprocess "
                      f"included): median {latency_ms(backend, frame, runs):.1f} ms")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
