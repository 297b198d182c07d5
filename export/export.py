"""Export entry point: the same as ``nanogfl export`` (see export/README.md).

    python export/export.py --weights runs/coco/best.pt --format onnx ncnn --size 320 --out exported/
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from nanogfl.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
