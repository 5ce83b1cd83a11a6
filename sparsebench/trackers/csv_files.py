"""The default tracker: CSV files beside the record, readable with any spreadsheet or pandas; needs nothing."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from sparsebench.atomic import atomic_write_text, open_no_follow
from sparsebench.trackers.base import (
    TRACKERS,
    TrackedRun,
    Tracker,
    TrackerConfig,
    epoch_scalars,
    own_folder,
    scalars,
)


@dataclass
class CsvConfig(TrackerConfig):
    # Folder of the files: null: <run folder>/csv; else <dir>/<experiment>/<run id>.
    dir: Optional[str] = None


@TRACKERS.register("csv")
class CsvTracker(Tracker):
    """``hparams.yaml`` (the config), ``metrics.csv`` (one row per epoch, appended as epochs end, so it
    can be followed while the run trains) and ``summary.csv`` (``metric,value``: the status and every
    final measurement by its record path)."""

    Config = CsvConfig
    name = "csv"

    def start(self, run: TrackedRun) -> None:
        self.folder = own_folder(self.cfg.dir, run, "csv")
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / "hparams.yaml", yaml.safe_dump(run.config, sort_keys=False))

    def log_epoch(self, entry: dict) -> None:
        row = {"epoch": entry["epoch"], **epoch_scalars(entry)}
        path = self.folder / "metrics.csv"
        # A resumed run appends to the rows of its interrupted attempt, under their header.
        header = path.read_text().partition("\n")[0].split(",") if path.exists() else None
        # Appended in place (never through a link planted in the run folder).
        with open(open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=header or list(row), extrasaction="ignore")
            if header is None:
                writer.writeheader()
            writer.writerow(row)

    def finish(self, metrics: dict | None, status: str, files: list[Path]) -> None:
        # The files are beside these already, in the run folder: nothing to attach.
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["metric", "value"])
        writer.writerow(["status", status])
        writer.writerows(scalars(metrics or {}).items())
        atomic_write_text(self.folder / "summary.csv", text.getvalue())
