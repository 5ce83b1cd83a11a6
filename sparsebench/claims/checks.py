"""A check of a claim judged on the records: which runs are A and which are B, the interval of A − B
from ``report.stats``, and the verdict with every number it rests on.

``judge`` selects each side's runs by its selector (column -> value, matched as by ``aggregate.select``);
every run of a side counts as one sample, whatever its group. Options, as a check declares them:
``relative`` reads the margin (and the smallest effect) as a fraction of B's mean; ``paired`` matches the
runs of A and B by seed and takes the Student-t interval of the per-seed differences; ``metric_b``
compares another metric on B's side (with ``b`` omitted: of the same runs, paired run by run);
``against`` compares A's mean with a constant.

Each decided check carries the p-value of the branch of the rule it landed in (``report.stats.decide``);
an undecided one the seeds per group that an a-priori power calculation says would decide it. A check on
an accuracy (``<prefix>/accuracy``) whose records hold which test images each run got right
(``<prefix>/correct_bits``: base64 of ``numpy.packbits`` over the images in their stored order, with
``<prefix>/count`` images) also carries the difference of accuracies with a bootstrap interval over the
test images (the test set's own uncertainty, beside the seeds'); it does not change the verdict.

Fewer than 2 runs with a value on either side, sides without any spread, a selector on a column the
records lack, or A and B selecting some of the same runs: inconclusive, with the ``Problem`` that made
it so. The words for all of it are the page layer's (``claims.wording``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from sparsebench.metrics.evaluation import unpack_correct
from sparsebench.report import stats
from sparsebench.report.aggregate import select

# Why a check is inconclusive other than by its interval. The first three stop a check before any
# interval: its runs cannot be told apart or paired.
NO_COLUMN = "no column"  # the metric is not in the records
NO_SELECTOR_COLUMN = "no selector column"  # a side's selector names a column the records lack
UNPAIRED = "unpaired"  # pairing by seed met a seed with several runs on a side
NO_RUNS = "no runs"  # no run of a side has a value
ONE_RUN = "one run"  # one run of a side has a value: no interval over seeds
ZERO_SPREAD = "zero spread"  # runs enough, but no spread to make an interval from
SHARED_RUNS = "shared runs"  # A and B select some of the same runs
# A side of a two-arm comparison selects runs of more than one experiment: two arms pooled as one (another
# experiment's arms match its selector too); a mistake in the card to show, as a selector naming no column is.
MIXED_EXPERIMENTS = "mixed experiments"
NOT_PLANNED = "not planned"  # the profile plans no run of a side: a check of another profile, not run here
# The profile's runs of every side ran, but none records the (known) metric: a measurement its experiments
# leave off (a map measures only what its mapped checks read), not a run that failed.
NOT_MEASURED = "not measured"
NOT_RUN_HERE = (NOT_PLANNED, NOT_MEASURED)
BEFORE_ANY_INTERVAL = (NO_COLUMN, NO_SELECTOR_COLUMN, MIXED_EXPERIMENTS, UNPAIRED, *NOT_RUN_HERE)

# Why a check that its interval decided is inconclusive after all: Holm's correction across the report's
# primary checks (``claims.evaluate.correct_for_multiplicity``) left its adjusted p at or above ALPHA.
HOLM = "holm"
ALPHA = 0.05
# Why a primary check that its interval decided is inconclusive all the same: a check it rests on
# (``Check.precondition``, a manipulation check such as "L2 makes the weights smaller") is not supported,
# so what it compares is not what the claim speaks of (``unless_preconditions``).
PRECONDITION = "precondition"
# Why a "can" check (``Check.grid``) is undecided though every setting it ran refutes it: some setting of its
# grid was not run in this profile, and the claim could still hold there (``claims.grid``).
UNTRIED = "untried"

# How the interval of a check is made.
WELCH, PAIRED, AGAINST = "welch", "paired", "against"


@dataclass(frozen=True)
class Problem:
    """One reason a check is inconclusive other than its interval; what it concerns, in its fields."""

    kind: str
    metric: str = ""  # the metric concerned (for the problems before any interval: the check's)
    side: str = ""  # A or B
    where: Mapping[str, Any] = field(default_factory=dict)  # the side's selector
    columns: tuple[str, ...] = ()  # columns the records lack
    count: int = 0  # runs (one run: of the side; shared runs: of both)
    paired: bool = False


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check, with every number it rests on.

    ``effect`` = mean_a − mean_b, [``low``, ``high``] its ``level`` interval (for ``within`` the loss is
    −effect = mean_b − mean_a, with interval [−high, −low]). ``problems``: why it is inconclusive when that
    is not the interval. ``mode``: how the interval was made (welch, paired, against).
    """

    metric: str
    test: str
    verdict: str
    effect: float
    low: float
    high: float
    mean_a: float
    std_a: float
    n_a: int
    mean_b: float
    std_b: float
    n_b: int
    margin: float | None = None
    smallest_effect: float | None = None  # the half-width of the negligible band (greater / less)
    refuted_as: str = ""  # opposite | negligible, for a refuted greater / less check
    # small (real but below the smallest effect) | holm (not after Holm's correction) | precondition (one not met)
    # | untried (a "can" check refuted in every setting it ran, with settings of its grid not run)
    undecided_as: str = ""
    seeds_needed: int | None = None  # inconclusive: seeds per group that 80% power says would decide it
    seeds_basis: str = ""  # what that count plans for (a basis of stats.seeds_to_decide)
    p_value: float = math.nan  # the p of the branch the rule landed in (NaN when undecided)
    null: str = ""  # the null hypothesis that p_value tests
    primary: bool = False  # one of the report's primary checks, corrected by Holm's method across them
    p_holm: float = math.nan  # primary: the Holm-adjusted p
    before_holm: str = ""  # the outcome Holm's correction withdrew ("supported", "refuted (opposite)", ...)
    unmet: str = ""  # undecided as precondition: the check not met, with its outcome, in words
    before_precondition: str = ""  # ... and the outcome its own interval gave
    se: float = math.nan  # the standard error of the effect
    tost_low: float = math.nan  # the 90% interval that equivalence (TOST) reads
    tost_high: float = math.nan
    image_effect: float = math.nan  # accuracy checks: A − B (points) over the test images of the runs used
    image_low: float = math.nan  # ... its bootstrap interval over test images (same level)
    image_high: float = math.nan
    images: int = 0  # test images behind it (0: no image interval)
    largest_difference: float = math.nan  # identical: the largest |A − B| of a pair
    level: float = 0.95
    dof: float = math.nan
    a: dict = field(default_factory=dict)
    b: dict = field(default_factory=dict)  # against a constant: {"constant": value}
    groups_a: tuple[str, ...] = ()
    groups_b: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    mode: str = WELCH
    # A "can" check (``claims.grid``) or a regime map (``claims.regime``): each setting (cell) with the verdict
    # there, Holm-adjusted within it.
    cells: tuple = ()
    home: bool = False  # a cell of a regime map (``claims.regime``): the claim's home regime

    @property
    def loss(self) -> tuple[float, float, float]:
        """(mean_b − mean_a, its low, its high): the loss of A against B, as ``within`` reads it."""
        return -self.effect, -self.high, -self.low

    @property
    def against(self) -> bool:
        return "constant" in self.b

    @property
    def missing_sides(self) -> tuple[str, ...]:
        """The sides it compares that have no run with a value ("A", "B"): a cell of a map or grid where one
        did not run yet, or runs whose metric is missing."""
        missing = tuple(p.side for p in self.problems if p.kind == NO_RUNS)
        return missing or (("A",) if self.n_a == 0 else ())

    @property
    def not_run_here(self) -> bool:
        """Whether the profile plans no run of a side it compares, or its runs do not measure the metric
        (``claims.evaluate.unless_not_run_here``): not run there, rather than undecided."""
        return any(p.kind in NOT_RUN_HERE for p in self.problems)

    @property
    def ran(self) -> bool:
        """Whether every side it compares has a run with a value: a cell without that did not run, on the
        side or sides ``missing_sides`` names."""
        return not self.missing_sides


def _numbers(rows: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(rows[column], errors="coerce")


def correctness_columns(metric: str) -> tuple[str, str] | None:
    """(bits column, count column) that hold which test images a ``<prefix>/accuracy`` was made of."""
    head, _, last = metric.rpartition("/")
    return (f"{head}/correct_bits", f"{head}/count") if head and last == "accuracy" else None


def correctness(rows: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Runs × images booleans of ``rows`` for an accuracy ``metric``; None when some run lacks them or
    the runs were scored on different numbers of images."""
    columns = correctness_columns(metric)
    if columns is None or not all(c in rows.columns for c in columns) or rows.empty:
        return None
    bits, counts = rows[columns[0]], _numbers(rows, columns[1])
    if not all(isinstance(b, str) for b in bits) or counts.isna().any() or counts.nunique() != 1:
        return None
    return np.stack([unpack_correct(b, c) for b, c in zip(bits, counts)])


def _image_interval(rows_a: pd.DataFrame, rows_b: pd.DataFrame, metric: str, level: float) -> dict:
    a, b = correctness(rows_a, metric), correctness(rows_b, metric)
    if a is None or b is None or a.shape[1] != b.shape[1]:
        return {}
    result = stats.image_bootstrap(a, b, level=level)
    return dict(image_effect=result.effect, image_low=result.low, image_high=result.high, images=result.images)


def judge(df: pd.DataFrame, metric: str, a: Mapping[str, Any], b: Mapping[str, Any] | None, test: str,
          margin: float | None = None, *, level: float = 0.95, relative: bool = False, paired: bool = False,
          metric_b: str | None = None, against: float | None = None,
          smallest_effect: float | None = None) -> Verdict:
    """Verdict on ``metric`` between the runs of ``df`` matching ``a`` and those matching ``b``; options as
    in the module docstring. Raises ValueError for a test that cannot be judged as given."""
    stats.check_test(test, margin)
    metric_b = metric_b or metric
    same_runs = b is None and against is None
    paired = paired or same_runs
    b = dict(a) if same_runs else dict(b or {})
    if test == "identical" and not paired:
        raise ValueError("the 'identical' test compares runs pair by pair: give paired=True")
    mode = AGAINST if against is not None else PAIRED if paired else WELCH
    base = dict(metric=metric if metric_b == metric else f"{metric} − {metric_b}", test=test, margin=margin,
                smallest_effect=smallest_effect if test in stats.SIGNED else None,
                level=level, a=dict(a), b=b if against is None else {"constant": against}, mode=mode)
    undecided = dict(verdict="inconclusive", effect=math.nan, low=math.nan, high=math.nan, mean_a=math.nan,
                     std_a=math.nan, mean_b=math.nan, std_b=math.nan)
    problems = [Problem(NO_COLUMN, metric, columns=(column,)) for column in dict.fromkeys((metric, metric_b))
                if column not in df.columns]
    sides = {}
    for name, where in (("A", a), ("B", b)):
        missing = tuple(k for k in where if k not in df.columns)
        if missing:
            problems.append(Problem(NO_SELECTOR_COLUMN, metric, name, dict(where), missing))
            sides[name] = df.iloc[0:0]
        else:
            sides[name] = select(df, where)
            if against is None and not same_runs and "experiment" in df.columns and metric in df.columns:
                measured = sides[name][sides[name][metric].notna()]
                found = tuple(dict.fromkeys(str(e) for e in measured["experiment"]))
                if len(found) > 1:
                    problems.append(Problem(MIXED_EXPERIMENTS, metric, name, dict(where), found))
    if problems:
        # Sides that pool experiments selected their runs, none missing: the card is mistaken, not the runs.
        counted = all(p.kind == MIXED_EXPERIMENTS for p in problems)
        return Verdict(**undecided, n_a=len(sides["A"]) if counted else 0, n_b=len(sides["B"]) if counted else 0,
                       problems=tuple(problems), **base)
    rows_a, rows_b = sides["A"], sides["B"]
    used = rows_a, rows_b
    if against is not None:
        diff = stats.against_interval(_numbers(rows_a, metric).to_numpy(dtype=float), against, level)
    elif paired:
        key = "seed" if not same_runs and "seed" in df.columns else None
        values_a = _numbers(rows_a.set_index(key) if key else rows_a, metric)
        values_b = _numbers(rows_b.set_index(key) if key else rows_b, metric_b)
        if not (values_a.index.is_unique and values_b.index.is_unique):
            return Verdict(**undecided, n_a=len(rows_a), n_b=len(rows_b),
                           problems=(Problem(UNPAIRED, base["metric"]),), **base)
        shared = values_a.index.intersection(values_b.index)
        values_a, values_b = values_a.loc[shared].to_numpy(dtype=float), values_b.loc[shared].to_numpy(dtype=float)
        diff = stats.paired_interval(values_a, values_b, level)
        if key:  # the image interval rests on the same pairs
            used = rows_a.set_index(key).loc[shared], rows_b.set_index(key).loc[shared]
    else:
        values_a, values_b = (_numbers(rows_a, metric).to_numpy(dtype=float),
                              _numbers(rows_b, metric_b).to_numpy(dtype=float))
        diff = stats.welch_interval(values_a, values_b, level)
    if relative and margin is not None:
        if against is None and test in ("at_most", "within") and diff.b.n:
            # "A − B at most m·|mean B|" is "A − (1 ± m)·B at most 0": the threshold's own uncertainty counted.
            towards = 1.0 if test == "at_most" else -1.0
            diff = stats.with_b_scaled(diff, values_a, values_b, 1.0 + towards * margin * math.copysign(1.0, diff.b.mean),
                                       paired=paired, level=level)
        margin = margin * abs(diff.b.mean)
        base["margin"] = margin
    if relative and base["smallest_effect"] is not None:
        base["smallest_effect"] = base["smallest_effect"] * abs(diff.b.mean)
    groups = {}
    for name, rows, column in (("A", rows_a, metric), ("B", rows_b, metric_b)):
        valid = rows[_numbers(rows, column).notna()] if len(rows) else rows
        labels = valid["label"] if "label" in valid.columns else pd.Series([], dtype=object)
        groups[name] = tuple(dict.fromkeys(str(x) for x in labels))
    sides_checked = (("A", a, diff.a),) if against is not None else (("A", a, diff.a), ("B", b, diff.b))
    for name, where, interval in sides_checked:
        if interval.n == 0:
            problems.append(Problem(NO_RUNS, metric, name, dict(where), paired=paired))
        elif interval.n < 2:
            problems.append(Problem(ONE_RUN, metric, name, dict(where), count=interval.n))
    decision = stats.Decision("inconclusive")
    if problems:
        pass
    elif test == "identical":
        decision = stats.Decision(stats.identical(diff.largest, margin))
    elif diff.zero_spread:
        problems.append(Problem(ZERO_SPREAD, metric))
    else:
        decision = stats.decide(test, diff.effect, diff.se, diff.dof, margin, base["smallest_effect"], level)
    shared_runs = rows_a.index.intersection(rows_b.index)
    if len(shared_runs) and not same_runs and against is None:
        problems.append(Problem(SHARED_RUNS, metric, count=len(shared_runs)))
        decision = stats.Decision("inconclusive")
    needed, basis = None, ""
    if decision.verdict == "inconclusive" and not problems:
        groups_planned = 1 if paired or against is not None else 2
        spread = diff.spread if groups_planned == 1 else stats.pooled_spread(diff.a, diff.b)
        needed, basis = stats.seeds_to_decide(test, diff.effect, spread, margin, base["smallest_effect"],
                                              groups=groups_planned, level=level)
    images = {}
    if against is None and not same_runs and metric_b == metric and not problems:
        images = _image_interval(*(rows[_numbers(rows, metric).notna()] for rows in used), metric, level)
    tost_low, tost_high = stats.interval(diff.effect, diff.se, diff.dof, stats.tost_level(level))
    return Verdict(verdict=decision.verdict, effect=diff.effect, low=diff.low, high=diff.high,
                   mean_a=diff.a.mean, std_a=diff.a.std, n_a=diff.a.n, mean_b=diff.b.mean, std_b=diff.b.std,
                   n_b=diff.b.n, dof=diff.dof, groups_a=groups["A"], groups_b=groups["B"], problems=tuple(problems),
                   refuted_as=decision.how if decision.verdict == "refuted" else "",
                   undecided_as=decision.how if decision.verdict == "inconclusive" else "",
                   seeds_needed=needed, seeds_basis=basis, p_value=decision.p, null=decision.null, se=diff.se,
                   tost_low=tost_low, tost_high=tost_high,
                   largest_difference=diff.largest if test == "identical" else math.nan, **images, **base)


SMALL_TEXT = "real but below the smallest effect that matters"
HOLM_TEXT = "not after Holm's correction"
PRECONDITION_TEXT = "a precondition not met"
UNTRIED_TEXT = "refuted in every setting run, not in all of its settings"


def outcome(v: Verdict) -> str:
    """The verdict with how it is refuted, or why its interval left it undecided."""
    if v.refuted_as:
        return f"{v.verdict} ({v.refuted_as})"
    reason = {stats.SMALL: SMALL_TEXT, HOLM: HOLM_TEXT, PRECONDITION: PRECONDITION_TEXT,
              UNTRIED: UNTRIED_TEXT}.get(v.undecided_as)
    return f"{v.verdict} ({reason})" if reason else v.verdict


def unless_preconditions(verdict: Verdict, preconditions: list[tuple[str, Verdict]]) -> Verdict:
    """``verdict``, or undecided (``PRECONDITION``) where it was decided and one of ``preconditions`` (label,
    verdict), judged on the same runs, is not supported (refuted, undecided, or not run): a comparison of an
    arm that does not do what the claim takes it to do (L2 tuned to a strength that no longer shrinks the
    weights) says nothing about the claim, whichever way it falls. Its p is dropped: undecided, it counts
    with p = 1 in Holm's correction."""
    unmet = [(label, v) for label, v in preconditions if v.verdict != "supported"]
    if verdict.verdict not in ("supported", "refuted") or not unmet:
        return verdict
    label, failed = unmet[0]
    return replace(verdict, verdict="inconclusive", refuted_as="", undecided_as=PRECONDITION, p_value=math.nan,
                   null="", unmet=f"{label}: {outcome(failed)}", before_precondition=outcome(verdict))


def spread_of(runs: pd.DataFrame, metric: str | None, error: bool) -> dict:
    """Mean, standard deviation and count over ``runs`` of ``metric`` (as 100 − it for an error rate)."""
    if metric is None or metric not in runs.columns:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    values = _numbers(runs, metric).to_numpy(dtype=float)
    interval = stats.t_interval(100.0 - values if error else values)
    return {"mean": interval.mean, "std": interval.std, "n": interval.n}


__all__ = ["AGAINST", "ALPHA", "BEFORE_ANY_INTERVAL", "HOLM", "HOLM_TEXT", "MIXED_EXPERIMENTS", "NO_COLUMN", "NO_RUNS", "NO_SELECTOR_COLUMN",
           "NOT_MEASURED", "NOT_PLANNED", "NOT_RUN_HERE", "ONE_RUN", "PAIRED", "PRECONDITION", "PRECONDITION_TEXT", "Problem", "SHARED_RUNS", "SMALL_TEXT",
           "UNPAIRED", "Verdict", "WELCH", "ZERO_SPREAD", "correctness", "correctness_columns", "judge", "outcome",
           "spread_of", "unless_preconditions"]
