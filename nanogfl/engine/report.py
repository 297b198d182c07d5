"""The pictures a finished run leaves in its folder: loss and AP curves, and the last evaluation's per-class
precision-recall curves and confusion matrix (rank 0; skipped with a note when matplotlib is missing)."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError

CURVE_KEYS = ("pr_curves", "confusion_matrix")


def split_curves(metrics: dict) -> tuple[dict, dict]:
    """(scalar metrics for logs and checkpoints, the curves for the pictures)."""
    curves = {k: metrics[k] for k in CURVE_KEYS if k in metrics}
    return {k: v for k, v in metrics.items() if k not in CURVE_KEYS}, curves


def write_run_report(run_dir: Path, curves: dict, class_names: list[str]) -> list[Path]:
    """curves.png from metrics.csv, plus pr_curves.png / confusion_matrix.png when ``curves`` has them."""
    try:
        from ..plots import save_evaluation_plots, save_training_curves
        written = []
        if (run_dir / "metrics.csv").is_file():
            written.append(save_training_curves(run_dir / "metrics.csv", run_dir / "curves.png"))
        if all(k in curves for k in CURVE_KEYS):
            written += save_evaluation_plots(curves, class_names, run_dir)
    except UserError as e:  # matplotlib not installed
        print(f"no plots: {e}")
        return []
    if written:
        print(f"plots: {', '.join(p.name for p in written)} in {run_dir}")
    return written
