#!/usr/bin/env python3
"""Live detection on a camera, video, image or folder: a thin wrapper over ``nanogfl demo``.

    python demo/webcam.py --model model.param --source 0 --serve 8080      # headless: watch in a browser
    python demo/webcam.py --model model.onnx --source clip.mp4 --save out.mp4

Run ``python demo/webcam.py --help`` for every option (it prints ``nanogfl demo --help``).
"""
import sys
from pathlib import Path

try:
    import nanogfl  # noqa: F401
except ImportError:  # running from a source checkout that was not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nanogfl.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
