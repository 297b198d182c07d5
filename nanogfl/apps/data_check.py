"""``nanogfl data-check``: the dataset summary training prints at start, plus a class histogram image.

Torch-free: it reads the annotations (and, for YOLO, image headers), never decodes an image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..config import Config
from ..data.sources import open_datasets
from ..data.summary import DatasetSummary, format_summaries, summarize_datasets
from ..fileio import atomic_write
from ..image_io import warn

HISTOGRAM_FILE = "class_histogram.png"


def write_class_histogram(summaries: list[DatasetSummary], path: Path) -> bool:
    """Boxes per class, one bar per class and dataset, as a PNG (matplotlib, written atomically).

    Returns False (after a one-line warning) when matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure  # renders with Agg; no display, no pyplot state
    except ImportError:
        warn(f"{path} not written: it needs matplotlib (pip install 'nanogfl[train]')")
        return False
    names = summaries[0].class_names
    figure = Figure(figsize=(max(6.0, 0.22 * len(names) + 2.0), 4.5), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / len(summaries)
    for k, summary in enumerate(summaries):
        positions = [i + (k - (len(summaries) - 1) / 2) * width for i in range(len(names))]
        axes.bar(positions, summary.boxes_per_class, width=width,
                 label=f"{summary.split} ({summary.boxes} boxes, {summary.images} images)")
    axes.set_xticks(range(len(names)))
    axes.set_xticklabels(names, rotation=90, fontsize=7)
    axes.set_xlim(-0.6, len(names) - 0.4)
    axes.set_ylabel("boxes")
    axes.set_title("boxes per class")
    axes.legend(fontsize=8)
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    return True


def data_check(cfg: Config, out_dir: Optional[Path] = None, show: bool = True) -> list[DatasetSummary]:
    """Summarise the train and val sets of ``cfg``, print the table (``show``) and write ``class_histogram.png``
    into ``out_dir`` (default: ``cfg.output_dir``)."""
    train, val = open_datasets(cfg)
    summaries = summarize_datasets(cfg, train, val)
    if show:
        print(format_summaries(summaries))
    path = Path(out_dir if out_dir is not None else cfg.output_dir) / HISTOGRAM_FILE
    if write_class_histogram(summaries, path) and show:
        print(f"wrote {path}")
    return summaries
