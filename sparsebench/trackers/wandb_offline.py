"""Weights & Biases runs, offline by default (needs the wandb package): files that ``wandb sync`` uploads
later, so that no run waits on, or fails for, the network."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sparsebench.errors import check
from sparsebench.trackers.base import (
    TRACKERS,
    TrackedRun,
    Tracker,
    TrackerConfig,
    epoch_scalars,
    measurements,
)

LONGEST_TAG = 64  # W&B refuses longer tags

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
    """One W&B run per sparsebench run, with the run id as its id (a resumed run continues it) and its
    readable name as its name (``regularizer=dropout,seed=1``), grouped by its sweep (else its
    experiment) and tagged with its experiment and sweep; the chosen settings
    (``TrackedRun.hyperparameters``) as its config, the git commit in its metadata, per-epoch scalars as
    ``epoch/<key>`` at step = epoch, the final measurements by their record path in its summary, and
    config.yaml and result.json saved with its files."""

    Config = WandbConfig
    name = "wandb"
    requires = "wandb"
    extra = "wandb"

    def start(self, run: TrackedRun) -> None:
        import wandb

        folder = self.cfg.dir or str(run.folder)
        tags = [tag[:LONGEST_TAG] for tag in dict.fromkeys([run.experiment, *([run.sweep] if run.sweep else [])])]
        self.run = wandb.init(mode=self.cfg.mode, project=self.cfg.project or run.experiment, entity=self.cfg.entity,
                              dir=folder, id=run.run_id, name=run.name or run.run_id, group=run.group, tags=tags,
                              resume="allow", config=run.hyperparameters,
                              # sparsebench's own log lines stay as they are: no console capture, no banner;
                              # the commit is sparsebench's own (wandb would look for a repository in the
                              # working folder, which may be another's or none)
                              settings=wandb.Settings(console="off", silent=True, disable_git=True,
                                                      git_commit=run.git_commit))
        self.last_epoch = 0

    def log_epoch(self, entry: dict) -> None:
        self.run.log({f"epoch/{key}": value for key, value in epoch_scalars(entry).items()}, step=entry["epoch"])
        self.last_epoch = entry["epoch"]

    def finish(self, metrics: dict | None, status: str, files: list[Path]) -> None:
        if metrics:
            self.run.summary.update(measurements(metrics))
        for path in files:
            # Copied into the run's files folder, which `wandb sync` uploads whole (wandb.save would link
            # to the record, which a later retry of the run replaces, and warn about it).
            shutil.copyfile(path, Path(self.run.dir) / path.name)
        self.run.finish(exit_code=0 if status == "completed" else 1)
