#!/usr/bin/env python3
"""Latency (and optional COCO AP) per model, backend, thread count and input size: a thin wrapper over
``nanogfl benchmark``.

    python demo/benchmark.py --model m_416.param m-1.5x_416.param --threads 1 2 4 --image photo.jpg --json out.json

Run ``python demo/benchmark.py --help`` for every option; demo/README.md explains the columns.
"""
import sys
from pathlib import Path

try:
    import nanogfl  # noqa: F401
except ImportError:  # running from a source checkout that was not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nanogfl.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
