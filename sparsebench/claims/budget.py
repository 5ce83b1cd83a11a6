"""Would the verdict change with another training budget? The primary check judged again on the weights
of the epoch with the best validation accuracy (early stopping, ``measurements.early_stop``) beside the
profile's budget (the last epoch).

A verdict that rests on networks still changing at the end of their budget could flip with more or less
training; early stopping on the validation split is the budget a practitioner would have chosen without
looking at the test set. Metrics the early-stopping measurement does not take again (pruning, speed, task
sequences) have no such verdict: the page says so rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd

from sparsebench.claims.catalogue import Check
from sparsebench.claims.checks import Verdict
from sparsebench.claims.grid import judge_check

PREFIX = "early_stop/"


def early_stop_metric(metric: str | None) -> str | None:
    """The column holding ``metric`` as measured at the early-stopping epoch."""
    return None if metric is None else PREFIX + metric


def at_early_stop(check: Check, rows: pd.DataFrame,
                  judged_by: Callable[[pd.DataFrame, Check], Verdict] = judge_check) -> Verdict | None:
    """``check`` judged on the early-stopping epoch's measurements of the same runs, or None when the
    records do not hold them (the metric is not re-measured there, or no run kept a validation split).
    ``judged_by``: how the check is judged at the budget (a regime map's cells: ``claims.regime``)."""
    metric, metric_b = early_stop_metric(check.metric), early_stop_metric(check.metric_b)
    if metric not in rows.columns or rows[metric].isna().all() or (metric_b is not None and metric_b not in rows.columns):
        return None
    # As at the budget, so that a "can" check is decided over its grid, a map over its cells (like with like).
    return judged_by(rows, replace(check, metric=metric, metric_b=metric_b))


__all__ = ["PREFIX", "at_early_stop", "early_stop_metric"]
