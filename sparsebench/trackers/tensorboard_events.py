"""TensorBoard event files, written with PyTorch's own SummaryWriter (needs the tensorboard package)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sparsebench.trackers.base import (
    TRACKERS,
    TrackedRun,
    Tracker,
    TrackerConfig,
    epoch_scalars,
    measurements,
    own_folder,
)

# Longest run name kept as a folder name (file systems allow 255 bytes; the rest of a long name is cut).
LONGEST_NAME = 200


@dataclass
class TensorboardConfig(TrackerConfig):
    # Folder of the event files: null: <run folder>/tensorboard; else <dir>/<experiment>/<run id>
    # (``tensorboard --logdir <results_dir>`` finds either).
    dir: Optional[str] = None


@TRACKERS.register("tensorboard")
class TensorboardTracker(Tracker):
    """Per-epoch scalars as ``epoch/<history key>`` at step = epoch; final measurements by their record
    path (``test/accuracy``) at the last epoch; the chosen settings (``TrackedRun.hyperparameters``) in
    the HParams dashboard. TensorBoard names a run by its folder, so the event files go into a folder
    named by the run's readable name (``<run folder>/tensorboard/regularizer=dropout,seed=1``). Its tags
    (run id, sweep, git commit) are a text summary, ``run``. No artifacts: TensorBoard has no place for
    files; the record is beside the events, in the run folder."""

    Config = TensorboardConfig
    name = "tensorboard"
    requires = "tensorboard"
    extra = "tensorboard"

    def start(self, run: TrackedRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        name = (run.name or run.run_id).replace("/", "_")[:LONGEST_NAME]
        self.writer = SummaryWriter(log_dir=str(own_folder(self.cfg.dir, run, "tensorboard") / name))
        self.hparams = run.hyperparameters
        self.last_epoch = 0
        self.writer.add_text("run", "  \n".join(f"{key}: {value}" for key, value in run.tags.items()), 0)

    def log_epoch(self, entry: dict) -> None:
        for key, value in epoch_scalars(entry).items():
            self.writer.add_scalar(f"epoch/{key}", value, entry["epoch"])
        self.writer.flush()
        self.last_epoch = entry["epoch"]

    def finish(self, metrics: dict | None, status: str, files: list[Path]) -> None:
        from torch.utils.tensorboard.summary import hparams

        final = measurements(metrics or {})
        for key, value in final.items():
            self.writer.add_scalar(key, value, self.last_epoch)
        # The HParams dashboard pairs the config with the final measurements; written into this run's
        # own event file (SummaryWriter.add_hparams would open a separate run folder for them).
        for summary in hparams(self.hparams, final):
            self.writer._get_file_writer().add_summary(summary, self.last_epoch)
        self.writer.add_text("status", status, self.last_epoch)
        self.writer.close()
