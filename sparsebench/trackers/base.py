"""What every tracker is: a small object with three calls, built from its entry of the ``logger`` group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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

    def finish(self, metrics: dict | None, status: str) -> None:
        """``metrics``: the record's final measurements (None when the run failed); ``status``:
        completed | failed | interrupted."""
        raise NotImplementedError


def hyperparameters(config: dict) -> dict[str, Any]:
    """The config flattened with dots, as Hydra override keys (``regularizer.p``), each value a number,
    a bool or a string (lists and nulls written as text), as trackers take hyperparameters."""
    return {key: value if isinstance(value, (bool, int, float, str)) else str(value)
            for key, value in flatten(config, ".").items() if not key.startswith("logger.")}


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
