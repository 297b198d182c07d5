"""Per-epoch metrics to a CSV file and TensorBoard (rank 0 only)."""
from __future__ import annotations

import csv
from pathlib import Path

CSV_COLUMNS = ("epoch", "lr", "loss", "qfl", "giou", "dfl", "aux_qfl", "aux_giou", "aux_dfl", "num_pos",
               "skipped_steps", "epoch_seconds", "images_per_second", "AP", "AP50", "AP75", "APs", "APm", "APl")


class MetricLogger:
    def __init__(self, out_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.csv_path = Path(out_dir) / "metrics.csv"
        self.writer = None
        if not enabled:
            return
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(Path(out_dir) / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.writer = None

    def log_epoch(self, epoch: int, stats: dict) -> None:
        if not self.enabled:
            return
        new_file = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.writer(f)
            if new_file:
                writer.writerow(CSV_COLUMNS)
            row = {**stats, "epoch": epoch}
            writer.writerow(["" if row.get(c) is None else (f"{row[c]:.6g}" if isinstance(row[c], float)
                                                            else row[c]) for c in CSV_COLUMNS])
        if self.writer is not None:
            for key, value in stats.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{'val' if key.startswith('AP') else 'train'}/{key}", value, epoch)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
