"""``nanogfl benchmark --model M [M ...]``: latency (and optional COCO AP) side by side."""
from __future__ import annotations

import argparse

from ..runtime.backends import BACKEND_SUFFIXES
from .common import add_json, add_precision


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="latency (and optional COCO AP) per model, backend, threads, size")
    p.add_argument("--model", "--weights", dest="model", nargs="+", required=True, metavar="MODEL",
                   help="one or more .onnx / .param / .pt models (other families' too, with the json of "
                        "`nanogfl peer-meta` beside them)")
    p.add_argument("--backend", nargs="+", choices=tuple(BACKEND_SUFFIXES),
                   help="backends to try (default: the one each model file implies)")
    p.add_argument("--threads", nargs="+", type=int, default=[1])
    add_precision(p, several=True)
    p.add_argument("--size", nargs="+", type=int, action="append", metavar="N",
                   help="input size S or H W; repeat the flag for several sizes")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--image", help="image to time on (default: a synthetic frame)")
    p.add_argument("--ann", help="COCO json for optional AP")
    p.add_argument("--images", help="image folder for optional AP")
    add_json(p, "the results")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.benchmark import benchmark, benchmark_image
    from ..runtime.backends import resolve_model_path
    from .common import input_size, open_model_file

    sizes = [input_size(values) for values in args.size] if args.size else [None]
    image, image_name = benchmark_image(args.image)
    precisions = list(dict.fromkeys(args.precision))

    def choices(model: str, backend: str | None) -> list[str]:  # only ncnn has a choice: one row for the others
        return precisions if resolve_model_path(model, backend)[1] == "ncnn" else ["auto"]

    backends = [(open_model_file(model, threads=threads, backend=backend, input_hw=size, precision=precision),
                 threads)
                for model in args.model for backend in args.backend or [None] for size in sizes
                for precision in choices(model, backend) for threads in args.threads]
    benchmark(backends, image, image_name, args.warmup, args.runs, args.ann, args.images, args.json)
    return 0
