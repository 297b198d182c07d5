"""Preprocess time before and after the switch to cv2.INTER_LINEAR_EXACT, same run, interleaved.

    python benchmarks/bench_preprocess.py [--images DIR] [--size 416] [--rounds 5] [--limit 0] [--threads 1]

Times three versions of resize + normalise + HWC->CHW (what the runtime reports as "pre ms") on every image of
the real COCO val subset, decoded once beforehand:

* ``before``: INTER_LINEAR and the previous normalise (a strided numpy transpose and a divide), copied here;
* ``now, INTER_LINEAR``: ``nanogfl.runtime.preprocess.preprocess`` with the old interpolation;
* ``now``: ``preprocess`` as it is (INTER_LINEAR_EXACT).

The versions alternate image by image, in an order that flips every round, so a machine slow-down hits all
alike. Prints the summed time per version, the ratios now / before (target <= 1.10) and exact / linear with the
same normalise (the resize's own cost), and how many resized pixel values differ between the interpolations.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nanogfl.contract import BGR_MEAN, BGR_STD  # noqa: E402
from nanogfl.image_io import list_images, load_image  # noqa: E402
from nanogfl.runtime.preprocess import preprocess, resize  # noqa: E402

DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "coco_val2017_subset206" / "images"


def preprocess_before(image: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """The preprocess this replaced (reference for the timing only)."""
    resized = cv2.resize(image, (input_hw[1], input_hw[0]), interpolation=cv2.INTER_LINEAR)
    chw = np.empty((3, *input_hw), np.float32)
    chw[:] = resized.transpose(2, 0, 1)
    chw -= np.asarray(BGR_MEAN, np.float32)[:, None, None]
    chw /= np.asarray(BGR_STD, np.float32)[:, None, None]
    return chw[None]


VERSIONS: dict[str, Callable[[np.ndarray, tuple[int, int]], object]] = {
    "before": preprocess_before,
    "now, INTER_LINEAR": lambda image, hw: preprocess(image, hw, interpolation=cv2.INTER_LINEAR),
    "now": lambda image, hw: preprocess(image, hw),
}


def load_all(folder: Path, limit: int) -> list[np.ndarray]:
    files = list_images(folder, "--images folder")
    images = [image for image in (load_image(f) for f in files[:limit or None]) if image is not None]
    if not images:
        raise SystemExit(f"{folder}: no readable images")
    return images


def time_once(image: np.ndarray, input_hw: tuple[int, int], name: str) -> float:
    start = time.perf_counter()
    VERSIONS[name](image, input_hw)
    return time.perf_counter() - start


def measure(images: list[np.ndarray], input_hw: tuple[int, int], rounds: int) -> dict[str, list[float]]:
    """Per version, the summed preprocess seconds over all images, one entry per round."""
    names = list(VERSIONS)
    for image in images[:5]:  # warm-up: OpenCV's thread pool and the allocator
        for name in names:
            time_once(image, input_hw, name)
    totals: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        sums = dict.fromkeys(names, 0.0)
        for image in images:
            for name in order:
                sums[name] += time_once(image, input_hw, name)
        for name in names:
            totals[name].append(sums[name])
    return totals


def differing_pixels(images: list[np.ndarray], input_hw: tuple[int, int]) -> tuple[float, int]:
    """Share of resized values that differ between the two interpolations, and the largest difference."""
    changed = total = largest = 0
    for image in images:
        linear = resize(image, input_hw, cv2.INTER_LINEAR)[0].astype(np.int16)
        exact = resize(image, input_hw, cv2.INTER_LINEAR_EXACT)[0].astype(np.int16)
        changed += int(np.count_nonzero(linear != exact))
        largest = max(largest, int(np.abs(linear - exact).max()))
        total += linear.size
    return changed / total, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--size", type=int, nargs="+", default=[416], help="S or H W")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    parser.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads (the runtime leaves OpenCV's "
                                                             "default; 1 gives steadier numbers)")
    args = parser.parse_args()
    input_hw = (args.size[0], args.size[-1])
    if args.threads > 0:
        cv2.setNumThreads(args.threads)
    images = load_all(args.images, args.limit)
    print(f"{len(images)} images from {args.images}, preprocess to {input_hw[0]}x{input_hw[1]}, {args.rounds} "
          f"interleaved rounds, OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV thread(s)")
    totals = measure(images, input_hw, args.rounds)
    medians = {name: float(np.median(values)) for name, values in totals.items()}
    for name, median in medians.items():
        print(f"  {name:<19} median round {median * 1e3:8.1f} ms  = {median / len(images) * 1e3:.3f} ms per image")
    print(f"ratio now / before: {medians['now'] / medians['before']:.3f} (target <= 1.10)")
    print(f"ratio INTER_LINEAR_EXACT / INTER_LINEAR, same normalise: "
          f"{medians['now'] / medians['now, INTER_LINEAR']:.3f}")
    share, largest = differing_pixels(images, input_hw)
    print(f"resized pixel values that differ between the two: {100 * share:.1f}% (at most by {largest})")


if __name__ == "__main__":
    main()
