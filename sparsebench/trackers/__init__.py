"""Trackers: where a run's config, per-epoch metrics and final measurements are also logged, chosen with
the ``logger`` config group (``conf/logger/``): ``csv`` (the default; needs nothing), ``tensorboard``,
``mlflow``, ``wandb``, or several at once (``logger=[csv,tensorboard]``).

The runner sees only ``Trackers``: start, one call per epoch, finish. The record stays the result: a
tracker that fails after its start costs a warning line, never the run.

To add one: a ``Tracker`` subclass with its ``Config`` in a module here, decorated
``@TRACKERS.register("<name>")`` and imported below, and
``conf/logger/<name>.yaml``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import re
from pathlib import Path

from sparsebench.errors import ConfigError, SparsebenchError, check
from sparsebench.trackers import (  # noqa: F401 - registered
    csv_files,
    mlflow_runs,
    tensorboard_events,
    wandb_offline,
)
from sparsebench.trackers.base import TRACKERS, TrackedRun, Tracker, TrackerConfig

log = logging.getLogger("sparsebench")

def install_line(extra: str) -> str:
    """The pip command that installs an optional dependency group, from sparsebench's own metadata
    (so that pyproject.toml stays the one place that names the packages and their versions)."""
    try:
        requirements = importlib.metadata.requires("sparsebench") or []
    except importlib.metadata.PackageNotFoundError:
        requirements = []
    wanted = [r.split(";")[0].strip() for r in requirements
              if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", r)]
    return "pip install " + (" ".join(f"'{r}'" for r in wanted) if wanted else f"'sparsebench[{extra}]'")


def check_trackers(logger: dict) -> None:
    """Raise ConfigError for a tracker that does not exist or whose package is not installed."""
    for name in logger:
        check(name in TRACKERS, "logger", name, f"choose trackers among {', '.join(TRACKERS)}")
        tracker = TRACKERS[name]
        if tracker.requires and not _installed(tracker.requires):
            raise ConfigError("logger", name, f"the {name} tracker needs the {tracker.requires} package, which is "
                              "not installed", install_line(tracker.extra or name))


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it (the trackers' packages are heavy)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class TrackerError(SparsebenchError):
    """A tracker could not start (an unreachable server, a folder that cannot be written)."""


class Trackers:
    """The trackers of one run, called together."""

    def __init__(self, logger: dict[str, TrackerConfig]):
        self.trackers = [TRACKERS[name](cfg) for name, cfg in logger.items()]
        self.started: list[Tracker] = []

    def start(self, run: TrackedRun) -> None:
        for tracker in self.trackers:
            try:
                tracker.start(run)
            except Exception as error:  # noqa: BLE001 - any failure of a tracker's own library
                self.finish(None, "interrupted", [])
                raise TrackerError(f"logger={tracker.name} could not start: {type(error).__name__}: "
                                   f"{str(error).splitlines()[0] if str(error) else ''}") from error
            self.started.append(tracker)

    def log_epoch(self, entry: dict) -> None:
        for tracker in list(self.started):
            self._call(tracker, "log_epoch", entry)

    def finish(self, metrics: dict | None, status: str, files: list[Path]) -> None:
        for tracker in list(self.started):
            self._call(tracker, "finish", metrics, status, files)
        self.started = []

    def _call(self, tracker: Tracker, method: str, *args) -> None:
        try:
            getattr(tracker, method)(*args)
        except Exception as error:  # noqa: BLE001 - the record is the result; a tracker only mirrors it
            log.warning("logger=%s stopped logging (%s: %s); the run goes on and its record is complete",
                        tracker.name, type(error).__name__, str(error).splitlines()[0] if str(error) else "")
            self.started.remove(tracker)


__all__ = ["TRACKERS", "TrackedRun", "Tracker", "TrackerError", "Trackers", "check_trackers", "install_line"]
