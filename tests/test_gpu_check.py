"""``scripts/gpu_check.sh`` runs end to end; here on the CPU at a tiny size (``TINY=1``). On a machine with CUDA
the same script, without TINY, is the GPU check of the README."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_script_runs_tiny_on_the_cpu(shared_data):
    env = {**os.environ, "TINY": "1", "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for line in ("gfl-r50: written on cpu", "nanodet-plus-m: written on cpu", "img/s"):
        assert line in result.stdout, result.stdout[-2000:]

