"""Peers side by side: COCO AP on the 206-image val subset and latency of the official NanoDet-Plus-m 416,
YOLOX-Nano (ONNX) and YOLO-FastestV2 (ncnn) through the same runtime, in one run.

The shared models are linked into a temp folder with `nanogfl peer-meta` jsons beside them (the NanoDet-Plus
file gets none: its metadata is inferred). AP is scored twice: with each peer's own settings from its
SOURCE.txt and with nanogfl's evaluation defaults (score > 0.05, NMS IoU 0.6, top 100).

    python3 -m benchmarks.bench_peers [--data ../shared/data] [--runs 30]   (from the repo root)
"""
from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

from nanogfl.apps.benchmark import benchmark, benchmark_image
from nanogfl.cli import main
from nanogfl.evaluation import evaluate_coco
from nanogfl.runtime.backends import open_model

# (file, peer-meta family or None, own (score threshold, NMS IoU) from SOURCE.txt)
MODELS = (("nanodet_plus_m_416_ncnn/nanodet-plus-m_416.param", None, (0.05, 0.6)),
          ("yolox_nano_onnx/yolox_nano.onnx", "yolox", (0.01, 0.65)),
          ("yolo_fastestv2_ncnn/yolo-fastestv2-opt.param", "yolo_fastestv2", (0.01, 0.6)))


def link_models(data: Path, folder: Path) -> list[tuple[Path, tuple[float, float]]]:
    models = []
    for relative, family, settings in MODELS:
        source = data / relative
        for sibling in (source, source.with_suffix(".bin")):
            if sibling.is_file():
                (folder / sibling.name).symlink_to(sibling)
        if family:
            main(["peer-meta", "--family", family, "--model", str(folder / source.name)])
        models.append((folder / source.name, settings))
    return models


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-ap", action="store_true")
    args = parser.parse_args()
    data = Path(args.data)
    ann = data / "coco_val2017_subset206" / "instances_val2017_subset.json"
    images = data / "coco_val2017_subset206" / "images"
    warnings.simplefilter("ignore", UserWarning)  # the inferred-metadata note of the official file
    with tempfile.TemporaryDirectory() as tmp:
        models = link_models(data, Path(tmp))
        backends = [(open_model(model, threads=args.threads), args.threads) for model, _ in models]
        if not args.skip_ap:
            for (backend, _), (model, (score, iou)) in zip(backends, models):
                own = evaluate_coco(backend, ann, images, score_threshold=score, iou_threshold=iou)
                default = evaluate_coco(backend, ann, images)
                print(f"{model.name}: own settings (score > {score}, NMS {iou}) AP {own['AP']:.4f} AP50 "
                      f"{own['AP50']:.4f}; nanogfl defaults AP {default['AP']:.4f} AP50 {default['AP50']:.4f}",
                      flush=True)
        image, name = benchmark_image(str(sorted(images.iterdir())[0]))
        benchmark(backends, image, name, warmup=5, runs=args.runs)


if __name__ == "__main__":
    main_bench()
