"""What every tracker is: a small object with three calls, built from its entry of the ``logger`` group."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sparsebench.records import naming
from sparsebench.records.paths import flatten, is_number
from sparsebench.registry import Registry


def own_folder(setting: str | None, run: "TrackedRun", name: str) -> Path:
    """Where a tracker writes a run's files: ``<run folder>/<name>`` by default, else
    ``<setting>/<experiment>/<run id>``."""
    if setting:
        return Path(setting).expanduser().resolve() / run.experiment / run.run_id
    return run.folder / name


@dataclass
class TrackerConfig:
    """Settings of one tracker; each tracker extends it with its own."""


@dataclass
class TrackedRun:
    """What a tracker is told about the run it follows."""

    run_id: str  # the run's identity (its record folder's name)
    experiment: str  # the run's experiment name (``name``)
    config: dict  # the resolved config, as in config.yaml
    folder: Path  # the run's record folder
    results_dir: Path
    # Readable: the overrides a person chose, as Hydra's override_dirname (records.naming.run_name); the run
    # id when there were none.
    name: str = ""
    overrides: list[str] = field(default_factory=list)  # the command line's overrides that made the run
    sweep: str | None = None  # the multirun this run is one job of (its sweep folder's name); None: none
    git_commit: str | None = None  # of the sparsebench source that ran it (records.environment)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """What a person chose (``records.naming.hyperparameters``): the chosen overrides first, then the
        rest of the run's identity; no paths, checksums, devices, threads or trackers."""
        return naming.hyperparameters(self.overrides, self.config)

    @property
    def group(self) -> str:
        """What a tracker groups runs by: the sweep, else the experiment (a claims experiment is a sweep)."""
        return self.sweep or self.experiment

    @property
    def tags(self) -> dict[str, str]:
        """Tags that find a run again: its id, experiment, readable name, sweep and source commit."""
        tags = {"sparsebench.run_id": self.run_id, "sparsebench.experiment": self.experiment,
                "sparsebench.name": self.name or self.run_id}
        if self.sweep:
            tags["sparsebench.sweep"] = self.sweep
        if self.git_commit:
            tags["sparsebench.git_commit"] = self.git_commit
        return tags


TRACKERS: Registry[type[Tracker]] = Registry("tracker", "logger")


class Tracker:
    """Receives a run's config at ``start``, each epoch's history entry, and the final measurements.

    ``requires`` names the module a tracker imports and ``extra`` the optional dependency group of
    pyproject.toml that installs it (None: needs nothing beyond sparsebench)."""

    Config: ClassVar[type[TrackerConfig]] = TrackerConfig
    name: ClassVar[str] = ""
    requires: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None

    def __init__(self, cfg: TrackerConfig):
        self.cfg = cfg

    def start(self, run: TrackedRun) -> None:
        raise NotImplementedError

    def log_epoch(self, entry: dict) -> None:
        raise NotImplementedError

    def finish(self, metrics: dict | None, status: str, files: list[Path]) -> None:
        """``metrics``: the record's final measurements (None when the run failed); ``status``:
        completed | failed | interrupted; ``files``: what to attach as artifacts (the run's config.yaml
        and result.json, once written; none for a run stopped without a record)."""
        raise NotImplementedError


# The record's metric paths that restate a setting or count what was measured (test images, units,
# passes, the margin, a convergence tolerance), as they end: numbers of the record, not measurements, so
# not logged as final measurements where researchers look (TensorBoard, MLflow, W&B); the CSV summary
# keeps every number of the record.
SETTINGS_AND_COUNTS = re.compile(
    r"(?:^|/)(?:count|units|images|passes|margin|finetune_epochs|window|rel_tol|abs_tol|allowed_per_epoch|"
    r"threshold|lr_steps|tasks|resumed_epochs|structural)$")


def measurements(tree: dict) -> dict[str, float]:
    """``scalars(tree)`` without the settings and counts (``SETTINGS_AND_COUNTS``)."""
    return {key: value for key, value in scalars(tree).items() if not SETTINGS_AND_COUNTS.search(key)}


def scalars(tree: dict) -> dict[str, float]:
    """The numbers of a nested dict of measurements, flattened with ``/`` as the record's metric paths
    (``test/accuracy``, ``noise/pixels/score``): curves, histograms and other lists are left out, and
    booleans count as 0 / 1."""
    return {key: float(value) for key, value in flatten(tree, "/").items()
            if isinstance(value, (bool, int, float))}


def epoch_scalars(entry: dict) -> dict[str, float]:
    """One history entry's numbers but the epoch itself (the step they are logged at)."""
    return {key: float(value) for key, value in entry.items()
            if key != "epoch" and is_number(value)}
