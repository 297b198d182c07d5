#!/usr/bin/env bash
# The GPU check (issue 13): on a machine with CUDA, 30 AMP training steps of GFL R-50 at 1333x800, batch 8, and
# of NanoDet-Plus-m 416, batch 96 (images/s, peak memory, AMP against fp32 in the same run); a checkpoint written
# on the GPU that evaluates identically on the CPU; GPU inference latency of both.
#   bash scripts/gpu_check.sh            # CUDA when there is one, else the CPU
#   TINY=1 bash scripts/gpu_check.sh     # small inputs, 2 steps: what the test suite runs on the CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
if [[ "${TINY:-0}" == 1 ]]; then
    $PYTHON benchmarks/train_speed.py --config configs/gfl_r50_fpn_1x.yml --batch 2 --steps 2 --threads 2 \
        --set "model.keep_ratio_scale=[96, 160]" "model.input_size=[96, 160]"
    $PYTHON benchmarks/train_speed.py --config configs/nanodet-plus-m_416.yml --batch 4 --steps 2 --size 96 --threads 2
    $PYTHON scripts/gpu_check.py --tiny
else
    $PYTHON benchmarks/train_speed.py --config configs/gfl_r50_fpn_1x.yml --batch 8 --steps 30 --workers 8
    $PYTHON benchmarks/train_speed.py --config configs/nanodet-plus-m_416.yml --batch 96 --steps 30 --workers 8
    $PYTHON scripts/gpu_check.py
fi
