"""What one job returns to a hyperparameter sweeper (e.g. Hydra's Optuna sweeper): one number of the
run's record, named by its metric path (``objective=test/accuracy``, ``noise/pixels/score``: the record's
metrics flattened as the reporter flattens them, ``sparsebench.records.paths``).

A run that gives no number (it failed, its data is missing, another process holds it) returns the worst
value for the direction (-inf when maximizing, +inf when minimizing): the sweeper goes on, its sampler
learns to avoid such settings, and the sweep's summary and exit status still name the failure.
"""

from __future__ import annotations

import difflib
import logging
import math
from pathlib import Path
from typing import Any

from sparsebench.errors import check
from sparsebench.measurements import metric_groups
from sparsebench.records.paths import flatten, is_number
from sparsebench.records.record import RESULT, Problem, read

log = logging.getLogger("sparsebench")

SCORES = ("accuracy", "loss", "ece")  # the numbers test/, train/ and validation/ hold


def check_objective(cfg: Any) -> None:
    """Refuse, before any work, an objective that a run of ``cfg`` cannot record."""
    if cfg.objective is None:
        return
    groups = metric_groups(cfg)
    head, _, rest = cfg.objective.partition("/")
    check(head in groups, "objective", cfg.objective,
          f"a metric path of this run's record starts with one of {', '.join(groups)}",
          "e.g. objective=test/accuracy (noise, prune, validation, dropout_on, early_stop and best_test need "
          "their measurement on)")
    if head in ("test", "train", "validation"):
        check(rest in SCORES, "objective", cfg.objective, f"{head}/ holds {', '.join(f'{head}/{s}' for s in SCORES)}")


def worst(direction: str) -> float:
    return -math.inf if direction == "maximize" else math.inf


def objective_value(objective: str, direction: str, status: str, run_folder: Path | None) -> float:
    """The objective's value in the record of a completed (or skipped: completed before) run; the worst
    value for ``direction`` otherwise, said in a log line."""
    if status in ("completed", "skipped") and run_folder is not None:
        record = read(run_folder / RESULT)
        if isinstance(record, Problem):
            log.error("objective=%s: %s does not count (%s); the sweeper gets %s", objective, record.path,
                      record.reason, worst(direction))
            return worst(direction)
        values = flatten(record.metrics or {}, "/")
        value = values.get(objective)
        if is_number(value) and not math.isnan(value):
            return float(value)
        numbers = [k for k, v in values.items() if is_number(v)]
        close = difflib.get_close_matches(objective, numbers, n=3)
        log.error("objective=%s is not a number of the record %s%s; the sweeper gets %s", objective,
                  run_folder / RESULT, f" (did you mean {', '.join(close)}?)" if close else "",
                  worst(direction))
        return worst(direction)
    log.warning("objective %s: the run gave no value (%s); the sweeper gets %s", objective, status, worst(direction))
    return worst(direction)
