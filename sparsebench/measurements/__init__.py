"""Measurements: what a run records after training, one module per group of metrics.

Each module registers its measurement (``sparsebench.measurements.base.measurement``): its name, the
metric groups it writes, when it runs, what it computes from the trained run, and the human names and
units of its metric paths. Everything else derives from this registry: the runner runs the enabled
measurements in the order below (``measure``), a search objective may name any path they write
(``metric_groups``), and the reporter names metrics from them (``sparsebench.report.names``).

To add one: a module here with a function decorated ``@measurement(...)``, imported below; a
measurement's groups come after those of ``ORDER`` in the record unless it is named there.
"""

from __future__ import annotations

import logging
import time

# Imported in record order: each registers itself.
from sparsebench.measurements import (  # noqa: F401
    best_test,
    continual,
    dropout_on,
    early_stop,
    evaluation,
    noise,
    prune,
)
from sparsebench.measurements.base import (
    MEASUREMENTS,
    Measurement,
    Name,
    Trained,
    measurement,
)
from sparsebench.measurements.evaluation import weight_measurements
from sparsebench.progress import duration

log = logging.getLogger("sparsebench")

# The order of the groups in a record (registration order would follow the alphabetical imports).
ORDER = ("evaluation", "dropout_on", "noise", "prune", "best_test", "early_stop", "continual")


def ordered() -> list[Measurement]:
    """The registered measurements, in the order a run measures and records them."""
    return sorted(MEASUREMENTS.values(), key=lambda m: ORDER.index(m.name) if m.name in ORDER else len(ORDER))


def measure(trained: Trained) -> dict:
    """Every enabled measurement of the trained run, in order, with the seconds each took
    (``speed/measure_seconds`` and ``speed/measure_seconds_by_part``). Each says in a log line what it
    measures, and how long it took; its long loops show bars where bars show (``sparsebench.progress``)."""
    started = time.perf_counter()
    parts: dict[str, float] = {}
    enabled = [item for item in ordered() if item.enabled(trained.cfg)]
    for number, item in enumerate(enabled, start=1):
        log.info("measuring %d/%d: %s", number, len(enabled), item.label)
        begun = time.perf_counter()
        trained.metrics.update(item.compute(trained))
        parts[item.name] = time.perf_counter() - begun
        log.info("measured %s in %s", item.label, duration(parts[item.name]))
    speed = trained.metrics.setdefault("speed", {})
    speed["measure_seconds"] = time.perf_counter() - started
    speed["measure_seconds_by_part"] = parts
    return trained.metrics


# Measurements of another epoch's weights -> the rule of ``train.loop.SCORES`` whose best epoch they measure.
KEEPS = {"best_test": "best_test", "early_stop": "best_val"}


def kept_epochs(cfg) -> tuple[str, ...]:
    """The rules whose best epoch's weights training keeps (``fit(keep=...)``) for the enabled measurements
    of a run of ``cfg`` (a RunConfig)."""
    return tuple(rule for name, rule in KEEPS.items() if MEASUREMENTS[name].enabled(cfg))


def metric_groups(cfg) -> list[str]:
    """The first parts of the metric paths that a run of ``cfg`` (a RunConfig) records."""
    return [group for item in ordered() for group in item.groups_for(cfg)]


def metric_names() -> list[Name]:
    """The human names of every measurement's metric paths, in order."""
    return [name for item in ordered() for name in item.names]


def derived_columns(metrics: dict) -> dict:
    """Report columns that measurements derive from a record's metrics."""
    out: dict = {}
    for item in ordered():
        if item.derived is not None:
            out.update(item.derived(metrics))
    return out


__all__ = ["MEASUREMENTS", "Measurement", "Trained", "derived_columns", "kept_epochs", "measure", "measurement",
           "metric_groups", "metric_names", "ordered", "weight_measurements"]
