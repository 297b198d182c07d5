"""Preprocess time before and after the cross-CPU resize (``resize_image``), same run, interleaved.

    python benchmarks/bench_preprocess.py [--images DIR] [--size 416] [--rounds 5] [--limit 0] [--threads 1]

Times resize + normalise + HWC->CHW (what the runtime reports as "pre ms") on every image of the real COCO val
subset, decoded once beforehand, in three versions:

* ``before``: the preprocess before the change, ``cv2.resize(image, (w, h), INTER_LINEAR)`` + ``normalize``;
* ``now``: ``nanogfl.runtime.preprocess.preprocess`` as it is;
* ``INTER_LINEAR_EXACT``: OpenCV's bit-exact resize + ``normalize``, the alternative that was measured first.

The versions alternate image by image, in an order that flips every round, so a machine slow-down hits all
alike. Prints the median time per version, the ratio now / before (target <= 1.10) and how many resized pixel
values differ from ``before`` on this machine (0 on x86).
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
from nanogfl.runtime.preprocess import normalize, preprocess, resize_image  # noqa: E402

DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "coco_val2017_subset206" / "images"


def preprocess_with(interpolation: int) -> Callable[[np.ndarray, tuple[int, int]], np.ndarray]:
    """A preprocess that resizes with a plain ``cv2.resize`` call (the reference versions)."""
    def run(image: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
        resized = cv2.resize(image, (input_hw[1], input_hw[0]), interpolation=interpolation)
        return normalize(resized, BGR_MEAN, BGR_STD)[None]
    return run


VERSIONS: dict[str, Callable[[np.ndarray, tuple[int, int]], object]] = {
    "before": preprocess_with(cv2.INTER_LINEAR),
    "now": lambda image, hw: preprocess(image, hw)[0],
    "INTER_LINEAR_EXACT": preprocess_with(cv2.INTER_LINEAR_EXACT),
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
    """Share of resized values that differ between ``before``'s resize and the runtime's, and the largest
    difference."""
    changed = total = largest = 0
    for image in images:
        plain = cv2.resize(image, (input_hw[1], input_hw[0]), interpolation=cv2.INTER_LINEAR).astype(np.int16)
        ours = resize_image(image, input_hw).astype(np.int16)
        changed += int(np.count_nonzero(plain != ours))
        largest = max(largest, int(np.abs(plain - ours).max()))
        total += plain.size
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
    print(f"ratio INTER_LINEAR_EXACT / before: {medians['INTER_LINEAR_EXACT'] / medians['before']:.3f}")
    share, largest = differing_pixels(images, input_hw)
    print(f"resized pixel values that differ between before and now: {100 * share:.4f}% (at most by {largest})")


if __name__ == "__main__":
    main()
