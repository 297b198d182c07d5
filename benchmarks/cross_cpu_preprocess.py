"""Do two machines preprocess the same images into the same bits? Hashes to write on one and compare on the other.

    python benchmarks/cross_cpu_preprocess.py --images DIR --out x86.json          # on the PC
    python benchmarks/cross_cpu_preprocess.py --images DIR --compare x86.json      # on the Pi: counts mismatches

Torch-free (numpy + OpenCV + ``nanogfl.runtime``), so it runs on a Raspberry Pi. For every image it hashes the
decoded pixels and the network input of ``nanogfl.runtime.preprocess`` for the stretch resizes (``--size``), the
keep-ratio resize of the server-size models (800x1333) and the letterbox of the peers (416). ``--baseline`` adds
the same hashes for a plain ``cv2.resize(..., INTER_LINEAR)`` stretch, the resize the runtime used before, to
show what the runtime's own resize avoids. The README's section "Same pixels on every CPU" has the numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nanogfl.contract import BGR_MEAN, BGR_STD  # noqa: E402
from nanogfl.image_io import list_images, load_image  # noqa: E402
from nanogfl.runtime.preprocess import letterbox, normalize, preprocess, preprocess_keep_ratio  # noqa: E402


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def plain_linear(image: np.ndarray, size: int) -> np.ndarray:
    return normalize(cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR), BGR_MEAN, BGR_STD)


def hashes(image: np.ndarray, sizes: list[int], baseline: bool) -> dict[str, str]:
    row = {"decoded": sha256(image)}
    for size in sizes:
        row[f"stretch {size}"] = sha256(preprocess(image, (size, size))[0])
        if baseline:
            row[f"plain INTER_LINEAR {size}"] = sha256(plain_linear(image, size))
    row["keep-ratio 800x1333"] = sha256(preprocess_keep_ratio(image, (800, 1333))[0])
    row["letterbox 416"] = sha256(letterbox(image, (416, 416), 114.0)[0])
    return row


def compare(mine: dict[str, dict[str, str]], theirs: dict[str, dict[str, str]]) -> int:
    """Prints the mismatches per kind of input; returns how many there are."""
    common = sorted(set(mine) & set(theirs))
    if not common:
        raise SystemExit("no image in common between the two hash files")
    kinds = sorted(
        {kind for name in common for kind in mine[name]}
        & {kind for name in common for kind in theirs[name]})
    failures = 0
    for kind in kinds:
        differing = [name for name in common if mine[name].get(kind) != theirs[name].get(kind)]
        expected = kind.startswith("plain")
        failures += 0 if expected else len(differing)
        note = " (the resize the runtime avoids)" if expected else ""
        print(f"  {kind:<28} {len(common) - len(differing):4d} of {len(common)} identical{note}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="image folder (e.g. the COCO val subset)")
    parser.add_argument("--size", type=int, nargs="+", default=[320, 416], help="stretch sizes (square)")
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    parser.add_argument("--baseline", action="store_true", help="also hash a plain cv2.resize INTER_LINEAR")
    parser.add_argument("--out", type=Path, help="write the hashes here")
    parser.add_argument("--compare", type=Path, help="hashes written on another machine: print the mismatches")
    args = parser.parse_args()
    files = list_images(args.images, "--images folder")[:args.limit or None]
    table = {}
    for path in files:
        image = load_image(path)
        if image is not None:
            table[path.name] = hashes(image, args.size, args.baseline)
    print(f"{len(table)} images, {platform.machine()}, OpenCV {cv2.__version__}, numpy {np.__version__}")
    if args.out:
        record = {"machine": platform.machine(), "opencv": cv2.__version__, "images": table}
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.compare:
        theirs = json.loads(args.compare.read_text())
        print(f"against {args.compare} ({theirs['machine']}, OpenCV {theirs['opencv']}):")
        return 1 if compare(table, theirs["images"]) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
