"""Intervals over seeds and the one generic verdict function that every claim goes through.

- ``t_interval``: mean of one group's values with its Student-t interval,
  mean ± t_{(1+level)/2, n-1} · std / sqrt(n) (std with n - 1 in the denominator); undefined (NaN) for n < 2.
- ``welch_interval``: the difference of two means (A − B) with its Welch t interval (unequal variances,
  Welch–Satterthwaite degrees of freedom).
- ``compare``: a verdict on one metric between the runs selected as A and as B, from that interval:

  ``greater`` (A > B), with a smallest effect that matters s >= 0 (the negligible band [−s, s]):
  supported when the interval of A − B lies wholly above 0 and not wholly inside the band; refuted when
  it lies wholly below 0 (``opposite``) or wholly inside the band (``negligible``); inconclusive
  otherwise, with a rough count of the seeds per group that would decide it at the observed spread.
  With ``margin`` m, "A exceeds B by more than m": the same with m in place of 0.
  ``less`` (A < B): the mirror.
  ``within`` (A costs little or nothing against B; needs ``margin``): the loss is B − A; supported when the
  whole interval of the loss lies under the margin, refuted when it lies wholly above it, else inconclusive.
  ``at_most`` (A exceeds B by at most the margin; needs ``margin``): supported when the interval of A − B
  lies wholly below the margin, refuted when wholly above it (e.g. "costs at most 15% more time").
  ``equivalent`` (A equals B to within the margin; needs ``margin``): supported when the interval of A − B
  lies inside [−margin, margin], refuted when it lies wholly outside it, else inconclusive.

  ``identical`` (A equals B run by run, an exact claim such as "q = 2 is dropout"; needs ``paired``):
  supported when every pair differs by at most ``margin`` (default 0: bit for bit), refuted when any
  pair differs by more. No interval is involved.

  Fewer than 2 runs with a value on either side: inconclusive, saying so. Sides without any spread
  (every run the same value) give no interval: inconclusive, saying so, never an interval of zero width.

  Options of ``compare``: ``relative`` reads the margin as a fraction of B's mean; ``paired`` matches
  the runs of A and B by seed (runs with the same seed share their initial weights and data order)
  and takes the Student-t interval of the per-seed differences; ``metric_b`` compares another metric
  on B's side (with ``b`` omitted: of the same runs, paired run by run); ``against`` compares A's mean
  with a constant (the one-sample interval of mean(A) − constant).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _scipy

from sparsebench.report.aggregate import display, select

TESTS = ("greater", "less", "within", "at_most", "equivalent", "identical")
NEEDS_MARGIN = ("within", "at_most", "equivalent")
SIGNED = ("greater", "less")  # the tests a smallest effect that matters applies to
MAX_SEEDS = 1000  # seed counts beyond this are reported as "more than"
VERDICTS = ("supported", "refuted", "inconclusive")


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with the two-sided ``level`` Student-t interval [low, high]."""

    mean: float
    std: float
    n: int
    low: float
    high: float
    level: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def _values(values: Iterable[Any]) -> np.ndarray:
    array = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float)
    return array[np.isfinite(array)]


def t_quantile(n: int | np.ndarray, level: float = 0.95) -> float | np.ndarray:
    """t_{(1+level)/2, n-1}; NaN where n < 2."""
    n = np.asarray(n, dtype=float)
    dof = np.where(n >= 2, n - 1, np.nan)
    result = _scipy.t.ppf((1 + level) / 2, dof)
    return float(result) if result.ndim == 0 else result


def t_interval(values: Iterable[Any], level: float = 0.95) -> Interval:
    """Mean, sample std and Student-t interval of the finite ``values``; std and interval NaN for n < 2,
    interval NaN when the values do not vary."""
    x = _values(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, math.nan, level)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, 1, math.nan, math.nan, level)
    std = float(x.std(ddof=1))
    if std == 0:  # no interval from zero spread: it would claim a certainty that n runs cannot give
        return Interval(mean, std, n, math.nan, math.nan, level)
    half = t_quantile(n, level) * std / math.sqrt(n)
    return Interval(mean, std, n, mean - half, mean + half, level)


@dataclass(frozen=True)
class Difference:
    """A − B of two means, its Welch t interval and degrees of freedom (NaN when both spreads are 0)."""

    effect: float
    low: float
    high: float
    dof: float
    a: Interval
    b: Interval
    spread: float = math.nan  # paired or one-sample: the std of the differences (or of A) that scales the interval
    largest: float = math.nan  # paired: the largest |A − B| of a pair


def welch_interval(a: Iterable[Any], b: Iterable[Any], level: float = 0.95) -> Difference:
    """mean(A) − mean(B) with its Welch interval; NaN interval when either side has fewer than 2 values
    or when neither side has any spread (no interval can be estimated from zero spread)."""
    ia, ib = t_interval(a, level), t_interval(b, level)
    effect = ia.mean - ib.mean
    if ia.n < 2 or ib.n < 2:
        return Difference(effect, math.nan, math.nan, math.nan, ia, ib)
    va, vb = ia.std**2 / ia.n, ib.std**2 / ib.n
    se = math.sqrt(va + vb)
    if se == 0:
        return Difference(effect, math.nan, math.nan, math.nan, ia, ib)
    dof = (va + vb) ** 2 / (va**2 / (ia.n - 1) + vb**2 / (ib.n - 1))
    half = float(_scipy.t.ppf((1 + level) / 2, dof)) * se
    return Difference(effect, effect - half, effect + half, dof, ia, ib)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one comparison, with every number it rests on.

    ``effect`` = mean_a − mean_b, [``low``, ``high``] its ``level`` Welch interval (for ``within`` the loss is
    −effect = mean_b − mean_a, with interval [−high, −low]). ``reason`` says why a verdict is inconclusive
    when that is not the interval (too few runs, no rows). ``description``: one line for a report.
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
    seeds_needed: int | None = None  # inconclusive: seeds per group that would decide at the observed spread
    largest_difference: float = math.nan  # identical: the largest |A − B| of a pair
    level: float = 0.95
    dof: float = math.nan
    a: dict = field(default_factory=dict)
    b: dict = field(default_factory=dict)
    groups_a: tuple[str, ...] = ()
    groups_b: tuple[str, ...] = ()
    reason: str = ""
    description: str = ""

    @property
    def loss(self) -> tuple[float, float, float]:
        """(mean_b − mean_a, its low, its high): the loss of A against B, as ``within`` reads it."""
        return -self.effect, -self.high, -self.low

    def as_dict(self) -> dict:
        out = asdict(self)
        out["groups_a"], out["groups_b"] = list(self.groups_a), list(self.groups_b)
        return out


def _number(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}g}"


def _signed(x: float, digits: int = 4) -> str:
    return ("+" if x > 0 else "") + _number(x, digits)


def _selector(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={display(v)}" for k, v in where.items()) or "all runs"


def decide(test: str, low: float, high: float, margin: float | None, smallest_effect: float | None = None
           ) -> tuple[str, str]:
    """(verdict, how it is refuted) that the interval [low, high] of A − B gives under ``test`` (see the
    module docstring); the second part is ``opposite`` or ``negligible`` for a refuted greater / less
    check, else empty."""
    _check_test(test, margin)
    if math.isnan(low) or math.isnan(high):
        return "inconclusive", ""
    threshold = 0.0 if margin is None else float(margin)
    if test in SIGNED:
        band = float(smallest_effect or 0.0)
        # Mirror "less" onto "greater": the claimed side is above the threshold.
        lo, hi = (low, high) if test == "greater" else (-high, -low)
        if lo > threshold and hi > threshold + band:
            return "supported", ""
        if hi < threshold:
            return "refuted", "opposite"
        if band > 0 and threshold - band < lo and hi < threshold + band:
            return "refuted", "negligible"
        return "inconclusive", ""
    if test == "at_most":
        return ("supported" if high < threshold else "refuted" if low > threshold else "inconclusive"), ""
    if test == "equivalent":
        inside = -threshold < low and high < threshold
        return ("supported" if inside else "refuted" if low > threshold or high < -threshold else "inconclusive"), ""
    loss_low, loss_high = -high, -low
    return ("supported" if loss_high < threshold else "refuted" if loss_low > threshold else "inconclusive"), ""


def seeds_to_decide(test: str, effect: float, spreads: tuple[float, ...], margin: float | None,
                    smallest_effect: float | None, level: float = 0.95) -> int | None:
    """Roughly how many runs per group would make the interval decide, were the effect and the spreads
    what they are now: the least n whose half-width t_{n-1} · sqrt(sum(sd²) / n) is below the distance
    from the observed effect to the bound that would decide (0 or the margin; the edge of the negligible
    band when the effect lies inside it). None when no count can (the effect on a bound, or no spread)."""
    if any(math.isnan(x) for x in (effect, *spreads)) or not any(spreads):
        return None
    threshold = 0.0 if margin is None else float(margin)
    if test in SIGNED:
        band = float(smallest_effect or 0.0)
        signed = abs(effect - threshold if test == "greater" else threshold - effect)
        distance = signed if signed >= band else band - signed
    elif test == "within":
        distance = abs(-effect - threshold)
    elif test == "equivalent":
        distance = abs(threshold - abs(effect))
    else:
        distance = abs(effect - threshold)
    if distance <= 0:
        return None
    variance = sum(s * s for s in spreads)
    for n in range(2, MAX_SEEDS + 1):
        if t_quantile(n, level) * math.sqrt(variance / n) < distance:
            return n
    return MAX_SEEDS + 1


def _check_test(test: str, margin: float | None) -> None:
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}: choose one of {', '.join(TESTS)}")
    if test in NEEDS_MARGIN and margin is None:
        raise ValueError(f"the {test!r} test needs a margin")


def _zero_spread(diff: Difference, paired: bool, against: float | None = None) -> str:
    """Why no interval exists although both sides have two runs or more, or ''."""
    if not (math.isnan(diff.low) and diff.a.n >= 2 and (paired or against is not None or diff.b.n >= 2)):
        return ""
    if against is not None:
        return f"A is {_number(diff.a.mean)} in every run: with zero spread over seeds no interval can be estimated"
    if paired:
        return (f"every paired difference is {_signed(diff.effect)}: with zero spread over seeds no interval can be "
                f"estimated")
    return (f"neither side varies over seeds (A always {_number(diff.a.mean)}, B always {_number(diff.b.mean)}): "
            f"no interval can be estimated from zero spread")


def paired_interval(a: pd.Series, b: pd.Series, level: float = 0.95) -> Difference:
    """mean(A − B) over the pairs (index labels present, with a finite value, on both sides) and the
    Student-t interval of those differences; the sides' own intervals over the paired values."""
    a = pd.to_numeric(a, errors="coerce")
    b = pd.to_numeric(b, errors="coerce")
    shared = [k for k in a.index.intersection(b.index) if math.isfinite(a[k]) and math.isfinite(b[k])]
    differences = [a[k] - b[k] for k in shared]
    diff = t_interval(differences, level)
    ia, ib = t_interval([a[k] for k in shared], level), t_interval([b[k] for k in shared], level)
    largest = max((abs(d) for d in differences), default=math.nan)
    if diff.n >= 2 and diff.std == 0:  # no interval from zero spread (see _zero_spread)
        return Difference(diff.mean, math.nan, math.nan, math.nan, ia, ib, 0.0, largest)
    return Difference(diff.mean, diff.low, diff.high, diff.n - 1 if diff.n >= 2 else math.nan, ia, ib, diff.std,
                      largest)


def compare(df: pd.DataFrame, metric: str, a: Mapping[str, Any], b: Mapping[str, Any] | None, test: str,
            margin: float | None = None, *, level: float = 0.95, relative: bool = False, paired: bool = False,
            metric_b: str | None = None, against: float | None = None,
            smallest_effect: float | None = None) -> Verdict:
    """Verdict on ``metric`` between the runs matching ``a`` and those matching ``b`` (column -> value,
    matched as by ``aggregate.select``). Every run of a side counts as one sample, whatever its group;
    ``groups_a``/``groups_b`` name the groups pooled, and the description warns when a side pools several.
    ``relative``, ``paired``, ``metric_b`` and ``against``: see the module docstring."""
    _check_test(test, margin)
    metric_b = metric_b or metric
    same_runs = b is None and against is None
    paired = paired or same_runs
    b = dict(a) if same_runs else dict(b or {})
    if test == "identical" and not paired:
        raise ValueError("the 'identical' test compares runs pair by pair: give paired=True")
    base = dict(metric=metric if metric_b == metric else f"{metric} − {metric_b}", test=test, margin=margin,
                smallest_effect=smallest_effect if test in SIGNED else None,
                level=level, a=dict(a), b=b if against is None else {"constant": against})
    problems = []
    for column in dict.fromkeys((metric, metric_b)):
        if column not in df.columns:
            problems.append(f"no column {column!r} in the results")
    sides = {}
    for name, where in (("A", a), ("B", b)):
        missing = [k for k in where if k not in df.columns]
        if missing:
            problems.append(f"{name} ({_selector(where)}): no run has {', '.join(map(repr, missing))}")
            sides[name] = df.iloc[0:0]
        else:
            sides[name] = select(df, where)
    if problems:
        return Verdict(verdict="inconclusive", effect=math.nan, low=math.nan, high=math.nan, mean_a=math.nan,
                       std_a=math.nan, n_a=0, mean_b=math.nan, std_b=math.nan, n_b=0, reason="; ".join(problems),
                       description=f"{metric}: inconclusive: " + "; ".join(problems), **base)
    rows_a, rows_b = sides["A"], sides["B"]
    if against is not None:
        one = t_interval(rows_a[metric], level)
        diff = Difference(one.mean - against, one.low - against, one.high - against,
                          one.n - 1 if one.n >= 2 else math.nan, one, Interval(float(against), 0.0, 0, against, against),
                          one.std)
    elif paired:
        key = "seed" if not same_runs and "seed" in df.columns else None
        values_a = rows_a.set_index(key)[metric] if key else rows_a[metric]
        values_b = rows_b.set_index(key)[metric_b] if key else rows_b[metric_b]
        if not (values_a.index.is_unique and values_b.index.is_unique):
            reason = "pairing by seed needs one run per seed on each side"
            return Verdict(verdict="inconclusive", effect=math.nan, low=math.nan, high=math.nan, mean_a=math.nan,
                           std_a=math.nan, n_a=len(rows_a), mean_b=math.nan, std_b=math.nan, n_b=len(rows_b),
                           reason=reason, description=f"{base['metric']}: inconclusive: {reason}", **base)
        diff = paired_interval(values_a, values_b, level)
    else:
        diff = welch_interval(rows_a[metric], rows_b[metric_b], level)
    if relative and margin is not None:
        margin = margin * abs(diff.b.mean)
        base["margin"] = margin
    if relative and base["smallest_effect"] is not None:
        base["smallest_effect"] = base["smallest_effect"] * abs(diff.b.mean)
    groups = {}
    for name, rows, column in (("A", rows_a, metric), ("B", rows_b, metric_b)):
        valid = rows[pd.to_numeric(rows[column], errors="coerce").notna()] if len(rows) else rows
        labels = valid["label"] if "label" in valid.columns else pd.Series([], dtype=object)
        groups[name] = tuple(dict.fromkeys(str(x) for x in labels))
    reasons = []
    sides_checked = (("A", a, diff.a),) if against is not None else (("A", a, diff.a), ("B", b, diff.b))
    for name, where, interval in sides_checked:
        if interval.n == 0:
            what = "paired runs" if paired else f"a value of {metric}"
            reasons.append(f"no run matches {name} ({_selector(where)}) with {what}")
        elif interval.n < 2:
            reasons.append(f"{name} has {interval.n} run: an interval over seeds needs at least 2")
    refuted_as, needed = "", None
    if reasons:
        verdict = "inconclusive"
    elif test == "identical":
        verdict = _identical(diff, margin)
    elif _zero_spread(diff, paired, against):
        verdict = "inconclusive"
        reasons.append(_zero_spread(diff, paired, against))
    else:
        verdict, refuted_as = decide(test, diff.low, diff.high, margin, base["smallest_effect"])
    shared = rows_a.index.intersection(rows_b.index)
    if len(shared) and not same_runs and against is None:
        reasons.append(f"A and B select {len(shared)} of the same runs")
        verdict = "inconclusive"
    if verdict == "inconclusive" and not reasons:
        spreads = (diff.spread,) if paired or against is not None else (diff.a.std, diff.b.std)
        needed = seeds_to_decide(test, diff.effect, spreads, margin, base["smallest_effect"], level)
    result = Verdict(verdict=verdict, effect=diff.effect, low=diff.low, high=diff.high,
                     mean_a=diff.a.mean, std_a=diff.a.std, n_a=diff.a.n, mean_b=diff.b.mean, std_b=diff.b.std,
                     n_b=diff.b.n, dof=diff.dof, groups_a=groups["A"], groups_b=groups["B"], reason="; ".join(reasons),
                     refuted_as=refuted_as, seeds_needed=needed,
                     largest_difference=diff.largest if test == "identical" else math.nan, **base)
    return _described(result)


def _identical(diff: Difference, margin: float | None) -> str:
    """Every pair within ``margin`` (None: exactly equal)."""
    return "supported" if diff.largest <= (0.0 if margin is None else float(margin)) else "refuted"


def _described(v: Verdict) -> Verdict:
    from dataclasses import replace

    def side(name: str, where: dict, mean: float, std: float, n: int, groups: tuple) -> str:
        pooled = f", pooling {len(groups)} groups" if len(groups) > 1 else ""
        return f"{name} [{_selector(where)}] {_number(mean)} ± {_number(std, 2)} sd (n={n}{pooled})"

    pct = f"{v.level * 100:g}%"
    head = f"{v.metric}: {side('A', v.a, v.mean_a, v.std_a, v.n_a, v.groups_a)} vs " \
           f"{side('B', v.b, v.mean_b, v.std_b, v.n_b, v.groups_b)}"
    dof = f", df {v.dof:.1f}" if not math.isnan(v.dof) else ""
    if v.test == "identical":
        numbers = f"A − B = {_signed(v.effect)} on average, largest |A − B| of a pair {_number(v.largest_difference)}"
        rule = f"supported if every pair differs by at most {_number(v.margin or 0.0)}"
    elif v.test == "within":
        loss, low, high = v.loss
        numbers = f"loss B − A = {_signed(loss)}, {pct} CI [{_signed(low)}, {_signed(high)}]{dof}"
        rule = f"supported if the CI lies under margin {_number(v.margin)}"
    else:
        numbers = f"A − B = {_signed(v.effect)}, {pct} CI [{_signed(v.low)}, {_signed(v.high)}]{dof}"
        threshold = 0.0 if v.margin is None else v.margin
        if v.test == "equivalent":
            rule = f"supported if the CI lies inside ±{_number(threshold)}"
        else:
            where = {"greater": "above", "less": "below", "at_most": "below"}[v.test]
            bound = _number(-threshold if v.test == "less" else threshold) if threshold else "0"
            rule = f"supported if the CI lies {where} {bound}"
            if v.smallest_effect:
                rule += (f" and not wholly inside the negligible band ±{_number(v.smallest_effect)}; refuted if it lies on "
                         f"the other side (opposite) or wholly inside the band (negligible)")
    outcome = v.verdict + (f" ({v.refuted_as})" if v.refuted_as else "")
    notes = [v.reason] if v.reason else []
    if v.seeds_needed is not None:
        notes.append(f"about {v.seeds_needed if v.seeds_needed <= MAX_SEEDS else f'more than {MAX_SEEDS}'} "
                     f"seeds per group would decide it at this spread")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return replace(v, description=f"{head}; {numbers}; {rule}: {outcome}{tail}")


__all__ = ["Difference", "Interval", "TESTS", "VERDICTS", "Verdict", "compare", "decide", "paired_interval",
           "seeds_to_decide", "t_interval", "t_quantile", "welch_interval"]
