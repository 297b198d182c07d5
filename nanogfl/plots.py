"""PNG pictures of a run and of an evaluation: loss and AP curves, per-class precision-recall curves, the
confusion matrix (the class histogram of ``nanogfl data-check`` is in apps/data_check.py). matplotlib comes with
the train extra; the torch-free runtime never imports this module."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import UserError
from .fileio import atomic_write

RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # pycocotools' recall thresholds
MAX_CURVES_LABELLED = 20


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UserError("plots need matplotlib: pip install 'nanogfl[train]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(figure: Any, path: str | Path) -> Path:
    try:
        atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    finally:
        _pyplot().close(figure)
    return Path(path)


def save_training_curves(metrics_csv: str | Path, path: str | Path) -> Path:
    """Loss terms per epoch (left) and the evaluated AP / AP50 (right) from a run's metrics.csv."""
    plt = _pyplot()
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise UserError(f"{metrics_csv}: no epochs logged yet")

    def column(name: str) -> tuple[list[float], list[float]]:
        points = [(float(r["epoch"]), float(r[name])) for r in rows if r.get(name) not in (None, "", "nan")]
        return [p[0] for p in points], [p[1] for p in points]

    figure, (loss_ax, ap_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("loss", "qfl", "giou", "dfl"):
        epochs, values = column(name)
        if epochs:
            loss_ax.plot(epochs, values, marker="." if len(epochs) < 30 else None, label=name)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    loss_ax.legend()
    for name in ("AP", "AP50"):
        epochs, values = column(name)
        if epochs:
            ap_ax.plot(epochs, values, marker="o", label=name)
    ap_ax.set(xlabel="epoch", ylabel="COCO AP", title="validation", ylim=(0, None))
    if ap_ax.lines:
        ap_ax.legend()
    else:
        ap_ax.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ap_ax.transAxes)
    return _save(figure, path)


def save_pr_curves(pr_curves: dict[str, Sequence[float]], path: str | Path) -> Path:
    """Precision over recall at IoU 0.5, one curve per class (pycocotools' 101 recall points; -1 = no data)."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7, 6))
    curves = {name: np.asarray(p, float) for name, p in pr_curves.items() if np.asarray(p).max(initial=-1) >= 0}
    ranked = sorted(curves, key=lambda n: -np.clip(curves[n], 0, None).mean())
    for rank, name in enumerate(ranked):
        precision = np.clip(curves[name], 0, None)
        label = f"{name} {precision.mean():.3f}" if rank < MAX_CURVES_LABELLED else None
        ax.plot(RECALL_POINTS, precision, linewidth=1.2 if rank < MAX_CURVES_LABELLED else 0.5, label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="precision-recall @ IoU 0.5")
    if ranked:
        ax.legend(fontsize=7, loc="lower left", title="class AP50")
    return _save(figure, path)


def save_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    """Row-normalised confusion matrix (true class -> predicted class, last row/column background)."""
    plt = _pyplot()
    matrix = np.asarray(matrix, float)
    names = [*class_names, "background"]
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    side = min(4 + 0.3 * len(names), 30)
    figure, ax = plt.subplots(figsize=(side, side * 0.9))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7 if len(names) > 20 else 9)
    ax.set_yticks(range(len(names)), names, fontsize=7 if len(names) > 20 else 9)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (rows sum to 1; last: background)")
    if len(names) <= 20:
        for (row, col), count in np.ndenumerate(matrix):
            if count:
                ax.text(col, row, int(count), ha="center", va="center", fontsize=8,
                        color="white" if shares[row, col] > 0.5 else "black")
    figure.colorbar(image, ax=ax, fraction=0.046)
    return _save(figure, path)


def save_evaluation_plots(metrics: dict, class_names: Sequence[str], out_dir: str | Path) -> list[Path]:
    """pr_curves.png and confusion_matrix.png of an evaluation run with curves (``nanogfl val --out``, end of
    training)."""
    out_dir = Path(out_dir)
    return [save_pr_curves(metrics["pr_curves"], out_dir / "pr_curves.png"),
            save_confusion_matrix(np.asarray(metrics["confusion_matrix"]), class_names,
                                  out_dir / "confusion_matrix.png")]
