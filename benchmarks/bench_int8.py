"""int8 against fp32, per backend and input size, all measured in this one run: COCO AP of the fp32 and the int8
file (same runtime, same val images), their latency (network only, same threads, same process) and the layers
the sensitivity scan kept in float. Each row is one ``nanogfl export --int8 --ann`` (the library call).

    python benchmarks/bench_int8.py [--model CKPT] [--sizes 320 416] [--format onnx ncnn] [--threads 1]

Without ``--model`` it imports the official NanoDet-Plus-m 416 ncnn weights from ../shared/data (``nanogfl
import``'s library code). Calibration: the first ``--calib-count`` images of the COCO train subset; AP: the
206-image COCO val subset. Target (issue 14): int8 AP within 0.005 of fp32 (ONNX), within 0.01 (ncnn).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
OFFICIAL = SHARED / "nanodet_plus_m_416_ncnn" / "nanodet-plus-m_416.param"
CALIB = SHARED / "coco_train2017_subset209" / "images"
VAL = SHARED / "coco_val2017_subset206"


def import_official(work: Path) -> Path:
    from nanogfl.checkpoint import Checkpoint, save_checkpoint
    from nanogfl.config import Config
    from nanogfl.importer.convert import import_graph, read_source
    from nanogfl.runtime.coco_names import COCO_CLASSES

    model = import_graph(read_source(OFFICIAL), "nanodet-plus-m")
    cfg = Config()
    cfg.model.input_size = [416, 416]
    weights = work / "nanodet-plus-m_416.pt"
    save_checkpoint(weights, Checkpoint(model=model.state_dict(), config=cfg.to_dict(),
                                        class_names=list(COCO_CLASSES), aux_trained=False))
    return weights


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint (default: the official NanoDet-Plus-m 416, imported)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 416])
    parser.add_argument("--format", nargs="+", default=["onnx", "ncnn"], choices=["onnx", "ncnn"])
    parser.add_argument("--calib-count", type=int, default=100)
    parser.add_argument("--calib-method", default="percentile")
    parser.add_argument("--max-float-layers", type=int, default=8)
    parser.add_argument("--float-target", type=float, default=0.4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from nanogfl.exporter.pipeline import ExportOptions, export_checkpoint

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nanogfl-bench-int8-") as work_dir:
        work = Path(work_dir)
        weights = Path(args.model) if args.model else import_official(work)
        for size in args.sizes:
            options = ExportOptions(formats=tuple(args.format), input_hw=(size, size), int8=True, calib=str(CALIB),
                                    calib_count=args.calib_count, calib_method=args.calib_method,
                                    max_float_layers=args.max_float_layers, float_target=args.float_target,
                                    threads=args.threads,
                                    ann=str(VAL / "instances_val2017_subset.json"), images=str(VAL / "images"),
                                    verify_images=str(VAL / "images"))
            result = export_checkpoint(weights, work / f"export{size}", options, log=lambda line: print("  " + line))
            assert result.int8 is not None
            for backend in args.format:
                rows.append((size, backend, result.int8[backend]))
    print(f"\nint8 vs fp32, {args.calib_count} calibration images, AP on {VAL.name}, {args.threads} thread(s)")
    print("| size | backend | calibration | fp32 AP | int8 AP | delta | fp32 ms | int8 ms | int8/fp32 time | "
          "kept in float |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, backend, r in rows:
        print(f"| {size} | {backend} | {r['calibration']} | {r['fp32_ap']:.4f} | {r['int8_ap']:.4f} | "
              f"{r['int8_ap'] - r['fp32_ap']:+.4f} | {r['fp32_latency_ms']:.1f} | {r['int8_latency_ms']:.1f} | "
              f"{r['int8_latency_ms'] / r['fp32_latency_ms']:.2f} | {len(r['float_layers'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
