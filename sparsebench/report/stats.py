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
- ``decide``: the verdict an interval of A − B gives under a test, with the p-value of the branch it
  landed in (``Decision``). The rule, for the signed tests ``greater`` (A > B) and ``less`` (A < B; the
  mirror: −(A − B) is read as ``greater``), with threshold t (0, or the ``margin`` m of "A exceeds B by
  more than m") and smallest effect that matters s > 0 (the band (t − s, t + s)), in this order:

  1. negligible first, by equivalence (TOST, two one-sided tests at α = 0.05): the 90% interval lies
     inside (t − s, t + s) -> refuted, ``negligible``; p = the larger of the two one-sided p's.
  2. supported: the 95% interval lies wholly above t and the estimate reaches the smallest effect
     (effect − t >= s); p = the one-sided p of H0: effect <= t.
  3. the 95% interval lies wholly above t but the estimate is below t + s (a real effect, possibly too
     small to matter: the interval straddles the band's edge) -> inconclusive, ``small`` (not supported:
     the data do not show an effect as large as the claim needs, nor rule one out).
  4. opposite: the 95% interval lies wholly below t (and step 1 did not find it negligible) -> refuted,
     ``opposite``; p = the one-sided p of H0: effect >= t.
  5. otherwise inconclusive.

  With s = 0 (or None) the plain rule: supported when the 95% interval lies above t, opposite when it
  lies below. A supported or opposite check's one-sided p is below 0.025 by construction (its two-sided
  95% interval excludes t), a negligible one's below 0.05 (each one-sided test at 0.05).
  ``within`` (A costs little or nothing against B; needs ``margin``): the loss is B − A; supported when the
  95% interval of the loss lies under the margin (p of H0: loss >= m), refuted when wholly above it.
  ``at_most`` (A exceeds B by at most the margin): supported when the 95% interval of A − B lies wholly
  below the margin, refuted when wholly above it (e.g. "costs at most 15% more time").
  ``equivalent`` (A equals B to within the margin): by TOST, supported when the 90% interval lies inside
  (−margin, margin) (p = the larger one-sided p), refuted when the 95% interval lies wholly outside it.
  ``identical`` (A equals B run by run, an exact claim such as "q = 2 is dropout"): decided by
  ``identical`` on the largest difference of a pair, not by an interval; no p-value.
- ``holm``: Holm's step-down adjustment of a family of p-values (the claims layer's primary checks).
- ``t_power`` / ``seeds_to_decide``: a-priori power of the t-test (noncentral t) and the seeds per group
  that 80% power says would decide an undecided check against its nearest boundary.
- ``image_bootstrap`` / ``mcnemar``: the test set's own uncertainty, from which test images each run
  classified correctly: the difference of accuracies with a bootstrap interval over images, and
  McNemar's exact test for one pair of runs.

Values that are not finite are left out. Sides without any spread (every value the same) give no
interval (NaN), never an interval of zero width: it would claim a certainty that n runs cannot give.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from sparsebench.report.numbers import number


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
    se: float = math.nan  # the standard error of ``effect`` (NaN where no interval exists)

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
    return Difference(effect, float(ci.low), float(ci.high), float(result.df), ia, ib,
                      se=math.sqrt(ia.std ** 2 / ia.n + ib.std ** 2 / ib.n))


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
    spread = diff.std > 0 if diff.n >= 2 else False
    return Difference(diff.mean, diff.low, diff.high, diff.n - 1 if spread else math.nan,
                      ia, ib, diff.std if diff.n >= 2 else math.nan, largest,
                      se=diff.std / math.sqrt(diff.n) if spread else math.nan)


def with_b_scaled(difference: Difference, a: ArrayLike, b: ArrayLike, scale: float, *, paired: bool,
                  level: float = 0.95) -> Difference:
    """``difference`` (A − B, Welch's or paired) with the interval, standard error and degrees of freedom
    of A − ``scale``·B, moved back by (scale − 1)·mean(B) onto A − B. A threshold proportional to B's mean
    (a relative margin m: A − B against m·mean(B)) is the test of A − (1 + m)·B against 0, whose standard
    error carries (1 + m)² of B's variance; taking m·mean(B) as a fixed number leaves B's sampling error in
    it out (anti-conservative). Read against the threshold, the moved interval decides as that test does."""
    scaled_b = np.asarray(b, dtype=float) * scale
    scaled = paired_interval(a, scaled_b, level) if paired else welch_interval(a, scaled_b, level)
    shift = (scale - 1.0) * difference.b.mean
    return replace(difference, low=scaled.low + shift, high=scaled.high + shift, dof=scaled.dof, se=scaled.se)


def against_interval(a: ArrayLike, constant: float, level: float = 0.95) -> Difference:
    """mean(A) − ``constant`` with A's one-sample interval shifted by the constant."""
    one = t_interval(a, level)
    return Difference(one.mean - constant, one.low - constant, one.high - constant,
                      one.n - 1 if one.n >= 2 else math.nan, one,
                      Interval(float(constant), 0.0, 0, constant, constant, level), one.std,
                      se=one.std / math.sqrt(one.n) if one.n >= 2 and one.std > 0 else math.nan)


def check_test(test: str, margin: float | None) -> None:
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}: choose one of {', '.join(TESTS)}")
    if test in NEEDS_MARGIN and margin is None:
        raise ValueError(f"the {test!r} test needs a margin")


# How a decided check was decided (``Decision.how``), and why an undecided one is undecided when its
# interval says why.
OPPOSITE, NEGLIGIBLE = "opposite", "negligible"  # refuted greater / less checks
SMALL = "small"  # inconclusive: an effect on the claimed side, its estimate below the smallest that matters


@dataclass(frozen=True)
class Decision:
    """What ``decide`` found: the verdict, how (``OPPOSITE``, ``NEGLIGIBLE``, ``SMALL`` or empty), the
    p-value of the branch it landed in and the null hypothesis that p tests (NaN and empty when undecided)."""

    verdict: str
    how: str = ""
    p: float = math.nan
    null: str = ""  # said of A − B (within: of the loss B − A)


def interval(effect: float, se: float, dof: float, level: float) -> tuple[float, float]:
    """effect ± t_{(1+level)/2, dof} · se: the two-sided ``level`` interval (NaN without a standard error)."""
    if not (math.isfinite(se) and se > 0 and dof > 0):
        return math.nan, math.nan
    half = float(_scipy.t.ppf((1 + level) / 2, dof)) * se
    return effect - half, effect + half


def p_above(effect: float, se: float, dof: float, bound: float) -> float:
    """One-sided p of H0: true effect <= ``bound`` (small when the effect lies above it)."""
    return float(_scipy.t.sf((effect - bound) / se, dof))


def p_below(effect: float, se: float, dof: float, bound: float) -> float:
    """One-sided p of H0: true effect >= ``bound`` (small when the effect lies below it)."""
    return float(_scipy.t.cdf((effect - bound) / se, dof))


def tost_level(level: float) -> float:
    """The level of the interval that TOST reads: each one-sided test at α = 1 − level (0.05 for a 95%
    rule), which is a two-sided interval of level 1 − 2α (90%)."""
    return 2 * level - 1


def decide(test: str, effect: float, se: float, dof: float, margin: float | None,
           smallest_effect: float | None = None, level: float = 0.95) -> Decision:
    """The ``Decision`` that the estimate ``effect`` of A − B, its standard error ``se`` and its degrees of
    freedom ``dof`` give under ``test`` (the rule is the module docstring's; the intervals are
    effect ± t · se, the 95% one for sides and the 90% one for equivalence)."""
    check_test(test, margin)
    low, high = interval(effect, se, dof, level)
    if math.isnan(low):
        return Decision("inconclusive")
    threshold = 0.0 if margin is None else float(margin)
    tost_low, tost_high = interval(effect, se, dof, tost_level(level))
    if test in SIGNED:
        band = float(smallest_effect or 0.0)
        # Mirror "less" onto "greater": the claimed side is above the threshold.
        e, lo, hi, t_lo, t_hi = ((effect, low, high, tost_low, tost_high) if test == "greater"
                                 else (-effect, -high, -low, -tost_high, -tost_low))
        # The nulls are said of A − B: a "less" check's threshold lies at −t.
        sign = 1.0 if test == "greater" else -1.0
        bound = number(sign * threshold + 0.0)
        centre = f"|A − B − {bound}|" if threshold else "|A − B|"
        if band > 0 and threshold - band < t_lo and t_hi < threshold + band:
            return Decision("refuted", NEGLIGIBLE, max(p_above(e, se, dof, threshold - band),
                                                       p_below(e, se, dof, threshold + band)),
                            f"{centre} >= {number(band)}")
        if lo > threshold:
            if e - threshold >= band:
                return Decision("supported", "", p_above(e, se, dof, threshold),
                                f"A − B {'<=' if sign > 0 else '>='} {bound}")
            return Decision("inconclusive", SMALL)
        if hi < threshold:
            return Decision("refuted", OPPOSITE, p_below(e, se, dof, threshold),
                            f"A − B {'>=' if sign > 0 else '<='} {bound}")
        return Decision("inconclusive")
    if test == "at_most":
        if high < threshold:
            return Decision("supported", "", p_below(effect, se, dof, threshold), f"A − B >= {number(threshold)}")
        if low > threshold:
            return Decision("refuted", "", p_above(effect, se, dof, threshold), f"A − B <= {number(threshold)}")
        return Decision("inconclusive")
    if test == "equivalent":
        if -threshold < tost_low and tost_high < threshold:
            return Decision("supported", "", max(p_above(effect, se, dof, -threshold),
                                                 p_below(effect, se, dof, threshold)), f"|A − B| >= {number(threshold)}")
        if low > threshold:
            return Decision("refuted", "", p_above(effect, se, dof, threshold), f"A − B <= {number(threshold)}")
        if high < -threshold:
            return Decision("refuted", "", p_below(effect, se, dof, -threshold), f"A − B >= {number(-threshold)}")
        return Decision("inconclusive")
    # within: the loss B − A = −effect against the margin
    if -low < threshold:
        return Decision("supported", "", p_above(effect, se, dof, -threshold), f"loss >= {number(threshold)}")
    if -high > threshold:
        return Decision("refuted", "", p_below(effect, se, dof, -threshold), f"loss <= {number(threshold)}")
    return Decision("inconclusive")


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values of a family, in the order given: the i-th smallest of m
    finite p's becomes max over j <= i of min(1, (m − j + 1) · p_(j)). NaN entries stay NaN and do not
    count in m. Written here: scipy has Benjamini–Hochberg (``false_discovery_control``) but not Holm,
    and statsmodels is not a dependency."""
    p = np.asarray(p_values, dtype=float).ravel()
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1]; got {p[(p < 0) | (p > 1)].tolist()}")
    out = np.full(p.shape, np.nan)
    finite_at = np.flatnonzero(np.isfinite(p))
    m = len(finite_at)
    if m == 0:
        return out
    order = finite_at[np.argsort(p[finite_at], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out

def family_p(p: float, one_sided: bool) -> float:
    """A decided check's p as it enters Holm's correction at 0.05. The rule decides "supported" and
    "opposite" on a two-sided 95% interval, a one-sided test at 0.025: their one-sided p enters doubled
    (Holm at 0.05 on it would let the family's error reach about 0.10); "negligible" is TOST at 0.05
    (the 90% interval) and enters as it is."""
    return min(1.0, 2.0 * p) if one_sided else p


def identical(largest: float, margin: float | None) -> str:
    """Every pair within ``margin`` (None: exactly equal), given the largest |A − B| of a pair."""
    return "supported" if largest <= (0.0 if margin is None else float(margin)) else "refuted"


# What an a-priori seed count was planned against (``seeds_to_decide``).
EQUIVALENCE = "equivalence"  # TOST at a true effect on the threshold, band ± the smallest effect (or margin)
EQUIVALENCE_OBSERVED = "equivalence at the observed effect"  # TOST were the true effect the observed one
SUPPORT_OBSERVED = "support at the observed effect"  # the rule's supported branch were the true effect the observed
OBSERVED = "observed effect"  # the one-sided test at the observed distance
POWER = 0.8


def _noncentral(d: float, n: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(degrees of freedom, noncentrality) of the t statistic of ``n`` runs per group at a true effect of
    ``d`` standard deviations: two groups, dof 2n − 2 and d·sqrt(n/2); one (paired, one sample), n − 1
    and d·sqrt(n)."""
    if groups not in (1, 2):
        raise ValueError(f"groups must be 1 (paired or one sample) or 2; got {groups!r}")
    n = np.asarray(n, dtype=float)
    return (2 * n - 2, d * np.sqrt(n / 2)) if groups == 2 else (n - 1, d * np.sqrt(n))


def t_power(d: float, n: int | np.ndarray, *, groups: int = 2, alpha: float = 0.05, sides: int = 1
            ) -> float | np.ndarray:
    """Power of the t-test at a true effect of ``d`` standard deviations with ``n`` runs per group, from the
    noncentral t distribution: one-sided (``sides`` = 1) or two-sided at ``alpha``."""
    dof, ncp = _noncentral(d, n, groups)
    if sides == 1:
        power = _scipy.nct.sf(_scipy.t.ppf(1 - alpha, dof), dof, ncp)
    elif sides == 2:
        critical = _scipy.t.ppf(1 - alpha / 2, dof)
        power = _scipy.nct.sf(critical, dof, ncp) + _scipy.nct.cdf(-critical, dof, ncp)
    else:
        raise ValueError(f"sides must be 1 or 2; got {sides!r}")
    return float(power) if np.ndim(power) == 0 else power


def tost_power(band: float, n: int | np.ndarray, *, groups: int = 2, alpha: float = 0.05, effect: float = 0.0
               ) -> float | np.ndarray:
    """Power of TOST (each one-sided test at ``alpha``) to show equivalence within ±``band`` standard
    deviations when the true effect is ``effect`` (inside the band): 1 − P(the lower test fails) − P(the
    upper fails), each failure from the noncentral t. A lower bound (both may fail at once), so the seeds
    it asks for are enough."""
    dof, above_lower = _noncentral(band + effect, n, groups)
    _, below_upper = _noncentral(band - effect, n, groups)
    critical = _scipy.t.ppf(1 - alpha, dof)
    power = np.maximum(0.0, _scipy.nct.sf(critical, dof, above_lower) + _scipy.nct.sf(critical, dof, below_upper) - 1)
    return float(power) if np.ndim(power) == 0 else power


def support_power(effect: float, smallest: float, n: int | np.ndarray, *, groups: int = 2, alpha: float = 0.025
                  ) -> float | np.ndarray:
    """Power of the rule's supported branch at a true effect of ``effect`` standard deviations beyond the
    threshold: the one-sided test at ``alpha`` rejects (the interval clears the threshold) and the estimate
    reaches ``smallest``. A lower bound, P(test) + P(estimate reaches it) − 1, the estimate normal about
    the true effect. At a true effect of ``smallest`` itself it is at most one half, whatever ``n``."""
    n = np.asarray(n, dtype=float)
    reaches = _scipy.norm.sf((smallest - effect) / np.sqrt((2 if groups == 2 else 1) / n))
    power = np.maximum(0.0, t_power(effect, n, groups=groups, alpha=alpha) + reaches - 1)
    return float(power) if np.ndim(power) == 0 else power


def seeds_for(power_at, target: float = POWER) -> int:
    """The least n (2 to ``MAX_SEEDS``) at which ``power_at(n)`` reaches ``target``; ``MAX_SEEDS`` + 1 when
    none does."""
    n = np.arange(2, MAX_SEEDS + 1)
    reached = np.flatnonzero(np.asarray(power_at(n)) >= target)
    return int(n[reached[0]]) if len(reached) else MAX_SEEDS + 1


def seeds_to_decide(test: str, effect: float, spread: float, margin: float | None, smallest_effect: float | None,
                    *, groups: int, level: float = 0.95, power: float = POWER) -> tuple[int | None, str]:
    """(seeds per group, what it was planned against) that a ``power`` calculation says would decide an
    undecided check against its nearest boundary, at the observed ``spread`` (the pooled per-group
    standard deviation for two groups; the std of the differences, or of A, for ``groups`` = 1):

    - greater / less with a smallest effect s > 0 (and ``equivalent``, with s = the margin, t = 0), by
      where the estimate lies on the claimed side of t: nearer t than t ± s, for showing the effect
      negligible: TOST's power at a true effect of t (``EQUIVALENCE``); inside the band but nearer its
      edge, TOST's power were the true effect the observed one (``EQUIVALENCE_OBSERVED``); at or beyond
      t + s, the supported branch's power (the interval clears t and the estimate reaches t + s) were the
      true effect the observed one (``SUPPORT_OBSERVED``): planned at a true effect of t + s itself, as
      the count once was, no seed count gives that branch more than one half; at or beyond t − s, the
      one-sided test of the opposite side at the observed distance (``OBSERVED``).
    - otherwise (s = 0, within, at_most): the one-sided test's power at the observed distance from the
      deciding bound (``OBSERVED``).
    The counts read the observed effect (post hoc) wherever no boundary of the rule can be planned for.

    One-sided tests at (1 − level) / 2 (the rule's 95% two-sided interval), TOST at 1 − level (its 90%
    interval). (None, "") when no count can decide: no spread, or an effect on the bound."""
    if not (math.isfinite(effect) and math.isfinite(spread) and spread > 0):
        return None, ""
    threshold = 0.0 if margin is None else float(margin)
    one_sided = (1 - level) / 2
    band, distance = 0.0, 0.0
    if test in SIGNED or test == "equivalent":
        if test == "equivalent":
            band, e, threshold = threshold, effect, 0.0
        else:
            band, e = float(smallest_effect or 0.0), effect if test == "greater" else -effect
        distance = abs(e - threshold)
        if band > 0:
            d = e - threshold  # on the claimed side
            if distance < min(abs(d - band), abs(d + band)):
                return seeds_for(lambda n: tost_power(band / spread, n, groups=groups, alpha=1 - level),
                                 power), EQUIVALENCE
            if abs(d) < band:
                return seeds_for(lambda n: tost_power(band / spread, n, groups=groups, alpha=1 - level,
                                                      effect=d / spread), power), EQUIVALENCE_OBSERVED
            if test == "equivalent":  # outside the band: shown so when the interval lies wholly outside it
                distance = abs(d) - band
            elif d >= band:
                return seeds_for(lambda n: support_power(d / spread, band / spread, n, groups=groups,
                                                         alpha=one_sided), power), SUPPORT_OBSERVED
    elif test == "within":
        distance = abs(-effect - threshold)
    else:
        distance = abs(effect - threshold)
    if distance <= 0:
        return None, ""
    return seeds_for(lambda n: t_power(distance / spread, n, groups=groups, alpha=one_sided), power), OBSERVED


def pooled_spread(a: Interval, b: Interval) -> float:
    """The pooled standard deviation of two groups (weights n − 1): the per-group spread a two-sample
    power calculation assumes."""
    if a.n < 2 or b.n < 2:
        return math.nan
    return math.sqrt(((a.n - 1) * a.std ** 2 + (b.n - 1) * b.std ** 2) / (a.n + b.n - 2))


@dataclass(frozen=True)
class ImageDifference:
    """A − B of mean test accuracy (points) with a bootstrap interval over the test images."""

    effect: float
    low: float
    high: float
    images: int
    runs_a: int
    runs_b: int
    level: float = 0.95
    resamples: int = 0


def _correctness(correct: ArrayLike) -> np.ndarray:
    array = np.asarray(correct)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"correctness must be runs × images (or one run's images); got shape {array.shape}")
    return array.astype(bool)


def image_bootstrap(correct_a: ArrayLike, correct_b: ArrayLike, *, level: float = 0.95, resamples: int = 2000,
                    seed: int = 0) -> ImageDifference:
    """The difference of mean accuracies (points) of A's runs and B's runs (runs × images, True where a
    run classified the image correctly; the same images in the same order on both sides), with the
    percentile bootstrap interval over images resampled together for both sides (paired by image):
    the test set's own uncertainty, not the seeds'. NaN interval when every image gives the same
    difference (no spread to resample)."""
    a, b = _correctness(correct_a), _correctness(correct_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"A and B must be scored on the same test images: {a.shape[1]} images against "
                         f"{b.shape[1]}")
    per_image = 100.0 * (a.mean(axis=0) - b.mean(axis=0))
    images = per_image.size
    effect = float(per_image.mean())
    if np.ptp(per_image) == 0:
        return ImageDifference(effect, math.nan, math.nan, images, len(a), len(b), level, 0)
    # A resample's mean depends only on how many images of each distinct per-image difference it draws,
    # and those counts are multinomial: (resamples × distinct values) instead of (resamples × images).
    values, counts = np.unique(per_image, return_counts=True)
    draws = np.random.default_rng(seed).multinomial(images, counts / images, size=resamples)
    means = draws @ values / images
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return ImageDifference(effect, float(low), float(high), images, len(a), len(b), level, resamples)


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test for two runs on the same images: the images only A got right, those only B
    got right, and the two-sided binomial p of that split under H0: either is equally likely."""

    only_a: int
    only_b: int
    p: float


def mcnemar(correct_a: ArrayLike, correct_b: ArrayLike) -> McNemar:
    """McNemar's exact test on one run of A and one of B (one boolean per image each)."""
    a, b = np.asarray(correct_a, dtype=bool).ravel(), np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"A and B must be scored on the same test images: {a.size} images against {b.size}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_a + only_b
    p = float(_scipy.binomtest(only_a, discordant, 0.5).pvalue) if discordant else 1.0
    return McNemar(only_a, only_b, p)

__all__ = ["Decision", "Difference", "EQUIVALENCE", "ImageDifference", "Interval", "MAX_SEEDS", "McNemar",
           "EQUIVALENCE_OBSERVED", "NEEDS_MARGIN", "NEGLIGIBLE", "OBSERVED", "OPPOSITE", "POWER", "SIGNED", "SMALL",
           "SUPPORT_OBSERVED", "TESTS", "VERDICTS", "against_interval", "check_test", "decide", "family_p", "finite", "holm", "identical",
           "image_bootstrap", "interval", "mcnemar", "p_above", "p_below", "paired_interval", "pooled_spread",
           "seeds_for", "seeds_to_decide", "t_interval", "t_power", "t_quantile", "tost_level", "tost_power",
           "welch_interval"]
