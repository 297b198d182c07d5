"""Speed of our exported ncnn model against the official NanoDet-Plus-m 416 ncnn model, same process, same ncnn
options and thread count, runs interleaved (order alternating) so machine noise hits both alike.

    python benchmarks/bench_ncnn_vs_official.py [--threads 1 2 4] [--runs 100] [--ours model.param]

Without ``--ours`` it imports the official weights into a checkpoint (``nanogfl import``'s library code) and exports
them with ``nanogfl export`` at 416 (fp16 weights, like the official file), so the two models have the same
weights and the outputs can be compared too. Prints per-thread medians, the ratio ours/official (target <= 1.05)
(bare networks, and with the class sigmoid the official graph lacks) and the layer types where the graphs differ.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nanogfl.runtime.backends import open_model  # noqa: E402
from nanogfl.runtime.coco_names import COCO_CLASSES  # noqa: E402
from nanogfl.runtime.metadata import ModelMeta  # noqa: E402
from nanogfl.runtime.preprocess import preprocess  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
OFFICIAL = SHARED / "nanodet_plus_m_416_ncnn" / "nanodet-plus-m_416.param"
SAMPLE_IMAGES = SHARED / "coco_val2017_subset206" / "images"
INPUT_HW = (416, 416)


def export_ours(work: Path) -> Path:
    """Official weights -> checkpoint -> our ncnn export (fp16) at 416; a random model if no importer/weights."""
    import torch

    from nanogfl.checkpoint import Checkpoint, save_checkpoint
    from nanogfl.config import Config
    from nanogfl.exporter.pipeline import ExportOptions, export_checkpoint
    from nanogfl.model import nanodet_plus_m

    torch.set_num_threads(1)
    try:
        from nanogfl.importer.convert import import_graph, read_source

        model = import_graph(read_source(OFFICIAL), "nanodet-plus-m")
        print("our model: the official weights imported with nanogfl import, exported with nanogfl export")
    except ImportError:
        model = nanodet_plus_m(80)
        print("our model: random weights (no importer); graph and speed are the same for any weights")
    cfg = Config()
    cfg.model.input_size = list(INPUT_HW)
    weights = work / "ours.pt"
    save_checkpoint(weights, Checkpoint(model=model.state_dict(), config=cfg.to_dict(),
                                        class_names=list(COCO_CLASSES), aux_trained=False))
    result = export_checkpoint(weights, work / "export", ExportOptions(formats=("ncnn",), verify=False),
                               log=lambda line: print("  " + line))
    return next(f for f in result.files if f.suffix == ".param")


def layer_types(param: Path) -> collections.Counter:
    lines = param.read_text().splitlines()[2:]
    return collections.Counter(line.split()[0] for line in lines if line.strip())


def sample_blob() -> np.ndarray:
    import cv2

    images = sorted(SAMPLE_IMAGES.glob("*.jpg")) if SAMPLE_IMAGES.is_dir() else []
    image = cv2.imread(str(images[0])) if images else None
    if image is None:
        return np.random.default_rng(0).standard_normal((1, 3, *INPUT_HW)).astype(np.float32)
    return preprocess(image, INPUT_HW)[0]


def interleaved_medians(calls: list, blob: np.ndarray, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        for call in calls:
            call(blob)
    times: list[list[float]] = [[] for _ in calls]
    for i in range(runs):
        order = range(len(calls)) if i % 2 == 0 else reversed(range(len(calls)))
        for k in order:
            started = time.perf_counter()
            calls[k](blob)
            times[k].append((time.perf_counter() - started) * 1e3)
    return [statistics.median(t) for t in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ours", type=Path, help="our exported .param at 416 (default: export one now)")
    parser.add_argument("--official", type=Path, default=OFFICIAL)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    if not args.official.is_file():
        print(f"official model not found: {args.official}")
        return 2
    with tempfile.TemporaryDirectory(prefix="nanogfl-bench-") as work:
        ours_param = args.ours or export_ours(Path(work))
        official_meta = ModelMeta(class_names=list(COCO_CLASSES), input_hw=INPUT_HW, class_activation="none")
        blob = sample_blob()
        ours_types, official_types = layer_types(ours_param), layer_types(args.official)
        print(f"layers: ours {sum(ours_types.values())}, official {sum(official_types.values())}")
        for kind in sorted(set(ours_types) | set(official_types)):
            if ours_types[kind] != official_types[kind]:
                print(f"  {kind:<22} ours {ours_types[kind]:>3}  official {official_types[kind]:>3}")
        for threads in args.threads:
            ours = open_model(ours_param, threads=threads)
            official = open_model(args.official, threads=threads, meta=official_meta)
            if threads == args.threads[0]:
                diff = np.abs(ours.forward(blob) - official.forward(blob))
                print(f"outputs (official with sigmoid applied): max |diff| probs {diff[:, :80].max():.1e}, "
                      f"box logits {diff[:, 80:].max():.1e}")
            # run: the bare networks; forward: the same output, probabilities (the runtime applies the sigmoid
            # the official graph lacks in numpy; ours has it in the graph)
            medians = interleaved_medians([ours.run, official.run, ours.forward, official.forward], blob,
                                          args.runs, args.warmup)
            for label, (ours_ms, official_ms) in (("network", medians[:2]), ("with sigmoid", medians[2:])):
                print(f"threads {threads}, {label:<12}: ours {ours_ms:6.2f} ms, official {official_ms:6.2f} ms "
                      f"(medians of {args.runs}), ratio {ours_ms / official_ms:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
