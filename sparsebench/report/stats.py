"""Intervals over seeds and the rule that turns an interval into a verdict: arrays in, numbers out.

Nothing here selects runs or writes words: the claims layer (``claims.checks``) picks the values of each
side of a check and the page layer (``claims.wording``) says what the numbers mean.

- ``t_interval``: mean of one group's values with its Student-t interval (scipy's one-sample t test),
  mean ± t_{(1+level)/2, n-1} · std / sqrt(n) (std with n - 1 in the denominator); undefined (NaN) for n < 2.
- ``welch_interval``: the difference of two means (A − B) with its Welch t interval (unequal variances,
  Welch–Satterthwaite degrees of freedom; scipy's ``ttest_ind(a, b, equal_var=False)``).
- ``paired_interval``: the mean of the per-pair differences A − B with the Student-t interval of those
  differences (runs with the same seed share their initial weights and data order).
- ``against_interval``: mean(A) − a constant with the one-sample interval of A shifted by it.
- ``decide``: the verdict an interval of A − B gives under a test:

  ``greater`` (A > B), with a smallest effect that matters s >= 0 (the negligible band [−s, s]):
  supported when the interval of A − B lies wholly above 0 and not wholly inside the band; refuted when
  it lies wholly below 0 (``opposite``) or wholly inside the band (``negligible``); inconclusive
  otherwise. With ``margin`` m, "A exceeds B by more than m": the same with m in place of 0.
  ``less`` (A < B): the mirror.
  ``within`` (A costs little or nothing against B; needs ``margin``): the loss is B − A; supported when the
  whole interval of the loss lies under the margin, refuted when it lies wholly above it, else inconclusive.
  ``at_most`` (A exceeds B by at most the margin; needs ``margin``): supported when the interval of A − B
  lies wholly below the margin, refuted when wholly above it (e.g. "costs at most 15% more time").
  ``equivalent`` (A equals B to within the margin; needs ``margin``): supported when the interval of A − B
  lies inside [−margin, margin], refuted when it lies wholly outside it, else inconclusive.
  ``identical`` (A equals B run by run, an exact claim such as "q = 2 is dropout"): decided by
  ``identical`` on the largest difference of a pair, not by an interval.
- ``seeds_to_decide``: roughly how many seeds per group would make an undecided interval decide.

Values that are not finite are left out. Sides without any spread (every value the same) give no
interval (NaN), never an interval of zero width: it would claim a certainty that n runs cannot give.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


class _ScipyStats:
    """scipy.stats, imported at the first use of one of its names: the import takes half a second, and a
    report with nothing to compare (the claims plan of an empty results folder) needs none of it. A
    stand-in for the module, so that every use reads as a use of the module."""

    def __getattr__(self, name: str):
        from scipy import stats

        return getattr(stats, name)


_scipy = _ScipyStats()


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


@dataclass(frozen=True)
class Difference:
    """A − B of two means (or the mean of paired differences), its interval and degrees of freedom (NaN
    where no interval exists), and each side's own interval."""

    effect: float
    low: float
    high: float
    dof: float
    a: Interval
    b: Interval
    spread: float = math.nan  # paired or one-sample: the std of the differences (or of A) that scales the interval
    largest: float = math.nan  # paired: the largest |A − B| of a pair

    @property
    def zero_spread(self) -> bool:
        """Whether there are runs enough for an interval but no spread to make one from."""
        return math.isnan(self.low) and self.a.n >= 2 and (self.b.n >= 2 or self.spread == 0)


def finite(values: ArrayLike) -> np.ndarray:
    """The finite values of ``values`` as floats (None and NaN left out)."""
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]


def _quietly(test, *args, **kwargs):
    # scipy warns of precision loss when values nearly coincide; the interval it returns is still the
    # right (narrow) one, and exactly coinciding values never reach it (see ``zero_spread``).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return test(*args, **kwargs)


def t_quantile(n: int | np.ndarray, level: float = 0.95) -> float | np.ndarray:
    """t_{(1+level)/2, n-1}; NaN where n < 2."""
    n = np.asarray(n, dtype=float)
    dof = np.where(n >= 2, n - 1, np.nan)
    result = _scipy.t.ppf((1 + level) / 2, dof)
    return float(result) if result.ndim == 0 else result


def t_interval(values: ArrayLike, level: float = 0.95) -> Interval:
    """Mean, sample std and Student-t interval of the finite ``values``; std and interval NaN for n < 2,
    interval NaN when the values do not vary."""
    x = finite(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, math.nan, level)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, 1, math.nan, math.nan, level)
    std = float(x.std(ddof=1))
    if std == 0:
        return Interval(mean, std, n, math.nan, math.nan, level)
    ci = _quietly(_scipy.ttest_1samp, x, 0.0).confidence_interval(level)
    return Interval(mean, std, n, float(ci.low), float(ci.high), level)


def welch_interval(a: ArrayLike, b: ArrayLike, level: float = 0.95) -> Difference:
    """mean(A) − mean(B) with its Welch interval; NaN interval when either side has fewer than 2 values
    or when neither side has any spread."""
    xa, xb = finite(a), finite(b)
    ia, ib = t_interval(xa, level), t_interval(xb, level)
    effect = ia.mean - ib.mean
    if ia.n < 2 or ib.n < 2 or (ia.std == 0 and ib.std == 0):
        return Difference(effect, math.nan, math.nan, math.nan, ia, ib)
    result = _quietly(_scipy.ttest_ind, xa, xb, equal_var=False)
    ci = result.confidence_interval(level)
    return Difference(effect, float(ci.low), float(ci.high), float(result.df), ia, ib)


def paired_interval(a: ArrayLike, b: ArrayLike, level: float = 0.95) -> Difference:
    """mean(A − B) over the pairs (``a[i]`` with ``b[i]``; a pair with a value missing on either side is
    left out) and the Student-t interval of those differences; the sides' own intervals over the pairs."""
    xa, xb = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if xa.shape != xb.shape:
        raise ValueError(f"paired values need one B for each A: {len(xa)} A values, {len(xb)} B values")
    both = np.isfinite(xa) & np.isfinite(xb)
    xa, xb = xa[both], xb[both]
    differences = xa - xb
    diff = t_interval(differences, level)
    ia, ib = t_interval(xa, level), t_interval(xb, level)
    largest = float(np.abs(differences).max()) if len(differences) else math.nan
    return Difference(diff.mean, diff.low, diff.high, diff.n - 1 if diff.n >= 2 and diff.std > 0 else math.nan,
                      ia, ib, diff.std if diff.n >= 2 else math.nan, largest)


def against_interval(a: ArrayLike, constant: float, level: float = 0.95) -> Difference:
    """mean(A) − ``constant`` with A's one-sample interval shifted by the constant."""
    one = t_interval(a, level)
    return Difference(one.mean - constant, one.low - constant, one.high - constant,
                      one.n - 1 if one.n >= 2 else math.nan, one,
                      Interval(float(constant), 0.0, 0, constant, constant, level), one.std)


def check_test(test: str, margin: float | None) -> None:
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}: choose one of {', '.join(TESTS)}")
    if test in NEEDS_MARGIN and margin is None:
        raise ValueError(f"the {test!r} test needs a margin")


def decide(test: str, low: float, high: float, margin: float | None, smallest_effect: float | None = None
           ) -> tuple[str, str]:
    """(verdict, how it is refuted) that the interval [low, high] of A − B gives under ``test`` (see the
    module docstring); the second part is ``opposite`` or ``negligible`` for a refuted greater / less
    check, else empty."""
    check_test(test, margin)
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


def identical(largest: float, margin: float | None) -> str:
    """Every pair within ``margin`` (None: exactly equal), given the largest |A − B| of a pair."""
    return "supported" if largest <= (0.0 if margin is None else float(margin)) else "refuted"


def seeds_to_decide(test: str, effect: float, spreads: tuple[float, ...], margin: float | None,
                    smallest_effect: float | None, level: float = 0.95) -> int | None:
    """Roughly how many runs per group would make the interval decide, were the effect and the spreads
    what they are now: the least n whose half-width t_{n-1} · sqrt(sum(sd²) / n) is below the distance
    from the observed effect to the bound that would decide (0 or the margin; the edge of the negligible
    band when the effect lies inside it); ``MAX_SEEDS`` + 1 when none up to it does. None when no count
    can (the effect on a bound, or no spread)."""
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


__all__ = ["Difference", "Interval", "MAX_SEEDS", "NEEDS_MARGIN", "SIGNED", "TESTS", "VERDICTS", "against_interval",
           "check_test", "decide", "finite", "identical", "paired_interval", "seeds_to_decide", "t_interval",
           "t_quantile", "welch_interval"]
