"""ncnn cost of GFLV2's DGQP: NanoDet-Plus-m's deploy graph with and without the quality branch fused in (output
``cat(sigmoid(cls) * sigmoid(quality), box logits)``, same width as the plain graph; the two shipped 416
configs), same weights, same ncnn options, runs interleaved (order alternating) so machine noise hits both alike.

    python benchmarks/bench_dgqp_ncnn.py [--size 416] [--threads 1 2] [--runs 100] [--fp32]

Prints per-thread min and median latency of both graphs, the DGQP overhead (target <= 5%) and the layers it adds.
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

FP16_OPTIONS = ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage")


def export_pair(work: Path, size: int, fp16: bool) -> dict[str, Path]:
    """The deploy graphs of configs/nanodet-plus-m_416.yml and configs/nanodet-plus-m-gflv2_416.yml with the same
    random weights (speed does not depend on them), exported to ncnn."""
    import torch

    from nanogfl.config import load_config
    from nanogfl.exporter.ncnn_export import export_ncnn
    from nanogfl.model import deploy_model
    from nanogfl.model.build import build_detector

    torch.manual_seed(0)
    torch.set_num_threads(1)
    plain = build_detector(load_config(REPO / "configs/nanodet-plus-m_416.yml").model, 80, with_aux=False)
    dgqp = build_detector(load_config(REPO / "configs/nanodet-plus-m-gflv2_416.yml").model, 80, with_aux=False)
    missing, unexpected = dgqp.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("head.quality.") for k in missing)
    return {name: export_ncnn(deploy_model(model), (size, size), work / f"{name}.param", fp16=fp16)[0]
            for name, model in (("plain", plain), ("dgqp", dgqp))}


def open_net(param: Path, threads: int, fp16: bool):
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    for option in FP16_OPTIONS:
        setattr(net.opt, option, fp16)
    assert net.load_param(str(param)) == 0 and net.load_model(str(param.with_suffix(".bin"))) == 0
    return net


def run_once(net, image: np.ndarray) -> float:
    import ncnn

    start = time.perf_counter()
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(image))
    status, _ = extractor.extract("output")
    assert status == 0
    return time.perf_counter() - start


def layer_types(param: Path) -> collections.Counter:
    return collections.Counter(line.split()[0] for line in param.read_text().splitlines()[2:] if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--fp32", action="store_true", help="fp32 weights and arithmetic (default: fp16 like deploy)")
    args = parser.parse_args()
    fp16 = not args.fp32
    image = np.ascontiguousarray(np.random.RandomState(0).randn(3, args.size, args.size).astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="bench-dgqp-") as work:
        params = export_pair(Path(work), args.size, fp16)
        added = layer_types(params["dgqp"]) - layer_types(params["plain"])
        print(f"NanoDet-Plus-m {args.size}x{args.size}, ncnn {'fp16' if fp16 else 'fp32'}; DGQP adds "
              f"{sum(added.values())} layers ({sum(v for k, v in added.items() if k != 'Split')} without Split): "
              f"{dict(sorted(added.items()))}")
        for threads in args.threads:
            nets = {name: open_net(param, threads, fp16) for name, param in params.items()}
            times: dict[str, list[float]] = {name: [] for name in nets}
            for net in nets.values():
                for _ in range(5):
                    run_once(net, image)
            for i in range(args.runs):
                for name in (list(nets) if i % 2 == 0 else list(nets)[::-1]):
                    times[name].append(run_once(nets[name], image) * 1e3)
            summary = {name: (min(t), statistics.median(t)) for name, t in times.items()}
            (plain_min, plain_med), (dgqp_min, dgqp_med) = summary["plain"], summary["dgqp"]
            print(f"threads {threads}: plain min {plain_min:.2f} / median {plain_med:.2f} ms, with DGQP min "
                  f"{dgqp_min:.2f} / median {dgqp_med:.2f} ms: {100 * (dgqp_min / plain_min - 1):+.1f}% (min), "
                  f"{100 * (dgqp_med / plain_med - 1):+.1f}% (median)")


if __name__ == "__main__":
    main()
