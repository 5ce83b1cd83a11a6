"""Weights & Biases runs, offline by default (needs the wandb package): files that ``wandb sync`` uploads
later, so that no run waits on, or fails for, the network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sparsebench.errors import check
from sparsebench.trackers.base import (
    TRACKERS,
    TrackedRun,
    Tracker,
    TrackerConfig,
    epoch_scalars,
    scalars,
)

MODES = ("offline", "online", "disabled")


@dataclass
class WandbConfig(TrackerConfig):
    mode: str = "offline"  # offline (files; upload later with `wandb sync`) | online | disabled
    project: Optional[str] = None  # null: the run's experiment name
    entity: Optional[str] = None  # your W&B user or team (online only)
    # Folder wandb writes its run folders into (<dir>/wandb/offline-run-*): null: the run's folder.
    dir: Optional[str] = None

    def __post_init__(self) -> None:
        check(self.mode in MODES, "mode", self.mode, f"choose one of {', '.join(MODES)}")


@TRACKERS.register("wandb")
class WandbTracker(Tracker):
    """One W&B run per sparsebench run, with the run id as its id and name (a resumed run continues
    it); the config as its config, per-epoch scalars as ``epoch/<key>`` at step = epoch, and the final
    measurements by their record path in its summary."""

    Config = WandbConfig
    name = "wandb"
    requires = "wandb"
    extra = "wandb"

    def start(self, run: TrackedRun) -> None:
        import wandb

        folder = self.cfg.dir or str(run.folder)
        self.run = wandb.init(mode=self.cfg.mode, project=self.cfg.project or run.experiment, entity=self.cfg.entity,
                              dir=folder, id=run.run_id, name=run.run_id, resume="allow", config=run.config,
                              # sparsebench's own log lines stay as they are: no console capture, no banner
                              settings=wandb.Settings(console="off", silent=True))
        self.last_epoch = 0

    def log_epoch(self, entry: dict) -> None:
        self.run.log({f"epoch/{key}": value for key, value in epoch_scalars(entry).items()}, step=entry["epoch"])
        self.last_epoch = entry["epoch"]

    def finish(self, metrics: dict | None, status: str) -> None:
        if metrics:
            self.run.summary.update(scalars(metrics))
        self.run.finish(exit_code=0 if status == "completed" else 1)
