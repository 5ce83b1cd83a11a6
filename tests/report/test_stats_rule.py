"""The decision rule of a check (equivalence first, then the sides), its p-values, Holm's correction, the
a-priori seed counts and the test set's own uncertainty, against hand computations, textbook values and
scipy."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
from scipy import stats

from sparsebench.report.stats import (
    EQUIVALENCE,
    EQUIVALENCE_OBSERVED,
    MAX_SEEDS,
    NEGLIGIBLE,
    OBSERVED,
    OPPOSITE,
    SMALL,
    SUPPORT_OBSERVED,
    Decision,
    decide,
    family_p,
    holm,
    image_bootstrap,
    interval,
    mcnemar,
    seeds_for,
    seeds_to_decide,
    t_power,
    tost_power,
)

DOF = 10
T975, T95 = 2.2281388519649385, 1.8124611228107335  # t_{0.975, 10} and t_{0.95, 10} (tables: 2.228, 1.812)


def numbers(low: float, high: float) -> tuple[float, float, float]:
    """(effect, standard error, dof) whose 95% interval at 10 dof is [low, high]."""
    return (low + high) / 2, (high - low) / 2 / T975, DOF


def rule(test: str, low: float, high: float, margin=None, smallest=None) -> tuple[str, str]:
    d = decide(test, *numbers(low, high), margin, smallest)
    return d.verdict, d.how


def test_the_quantiles_are_the_tables():
    assert stats.t.ppf(0.975, DOF) == pytest.approx(T975) and stats.t.ppf(0.95, DOF) == pytest.approx(T95)


def test_the_tost_interval_is_the_90_percent_one():
    effect, se, dof = numbers(-0.55, 0.5)
    low, high = interval(effect, se, dof, 0.9)
    assert (low, high) == pytest.approx((effect - T95 * se, effect + T95 * se))
    # By hand: effect −0.025, se 0.525 / 2.228 = 0.2356, half-width 1.812 · 0.2356 = 0.4271.
    assert (low, high) == pytest.approx((-0.4521, 0.4021), abs=1e-3)


@pytest.mark.parametrize("test, low, high, outcome", [
    # "greater", band [−0.5, 0.5], 95% intervals at 10 dof (the 90% one is 0.813 of its width):
    ("greater", 0.7, 1.4, ("supported", "")),          # above 0, estimate 1.05 beyond the band
    ("greater", 0.2, 1.4, ("supported", "")),          # estimate 0.8 >= 0.5
    ("greater", 0.1, 0.4, ("refuted", NEGLIGIBLE)),    # above 0 but inside the band
    ("greater", -0.3, 0.3, ("refuted", NEGLIGIBLE)),   # straddles 0 inside the band
    ("greater", -0.45, -0.1, ("refuted", NEGLIGIBLE)),  # below 0 yet inside the band: negligible, not opposite
    ("greater", -0.55, 0.5, ("refuted", NEGLIGIBLE)),  # 95% leaves the band, 90% [−0.452, 0.402] does not
    ("greater", -1.2, -0.1, ("refuted", OPPOSITE)),    # 90% [−1.097, −0.203] leaves the band; 95% below 0
    ("greater", 0.1, 0.7, ("inconclusive", SMALL)),    # above 0, estimate 0.4 < 0.5; 90% [0.156, 0.644]
    ("greater", -0.2, 0.9, ("inconclusive", "")),      # straddles 0 and leaves the band
    # "less" is the mirror image:
    ("less", -1.4, -0.7, ("supported", "")),
    ("less", -0.4, -0.1, ("refuted", NEGLIGIBLE)),
    ("less", 0.1, 0.45, ("refuted", NEGLIGIBLE)),
    ("less", 0.1, 1.2, ("refuted", OPPOSITE)),
    ("less", -0.7, -0.1, ("inconclusive", SMALL)),
    ("less", -0.9, 0.2, ("inconclusive", "")),
])
def test_each_branch_of_the_rule(test, low, high, outcome):
    assert rule(test, low, high, smallest=0.5) == outcome


def test_without_a_smallest_effect_the_plain_rule_and_a_margin_shifts_the_threshold():
    assert rule("greater", 0.01, 0.02) == ("supported", "")  # any effect above 0
    assert rule("greater", -0.02, -0.01, smallest=0.0) == ("refuted", OPPOSITE)
    assert rule("greater", 0.5, 1.5, margin=0.2) == ("supported", "")
    assert rule("greater", 0.1, 1.5, margin=0.2) == ("inconclusive", "")
    assert rule("greater", -0.5, 0.1, margin=0.2) == ("refuted", OPPOSITE)
    assert rule("less", -1.5, -0.5) == ("supported", "")
    # Margin 0.2 and band 0.5: the band is (−0.3, 0.7); [0.3, 0.6] lies inside it.
    assert rule("greater", 0.3, 0.6, margin=0.2, smallest=0.5) == ("refuted", NEGLIGIBLE)
    assert rule("greater", 0.3, 1.0, margin=0.2, smallest=0.5) == ("inconclusive", SMALL)  # 0.65 − 0.2 < 0.5
    assert rule("greater", 0.3, 1.2, margin=0.2, smallest=0.5) == ("supported", "")  # 0.75 − 0.2 >= 0.5
    assert decide("greater", 1.0, math.nan, math.nan, None) == Decision("inconclusive")


@pytest.mark.parametrize("test, low, high, margin, outcome", [
    ("within", -0.4, -0.1, 0.5, "supported"),  # the loss B − A lies in [0.1, 0.4], under 0.5
    ("within", -0.9, -0.6, 0.5, "refuted"),    # the loss lies in [0.6, 0.9], over it
    ("within", -0.7, -0.1, 0.5, "inconclusive"),
    ("at_most", -0.1, 0.1, 0.15, "supported"),
    ("at_most", 0.2, 0.3, 0.15, "refuted"),
    ("equivalent", -0.4, 0.4, 0.5, "supported"),
    ("equivalent", -0.55, 0.5, 0.5, "supported"),  # TOST: the 90% interval lies inside ±0.5
    ("equivalent", 0.6, 0.9, 0.5, "refuted"),
    ("equivalent", 0.3, 0.7, 0.5, "inconclusive"),  # 90% [0.337, 0.663]
])
def test_the_margin_tests(test, low, high, margin, outcome):
    assert rule(test, low, high, margin) == (outcome, "")


def test_bad_tests_are_refused():
    with pytest.raises(ValueError, match="needs a margin"):
        decide("within", 0.0, 1.0, 5, None)
    with pytest.raises(ValueError, match="unknown test 'bigger'"):
        decide("bigger", 0.0, 1.0, 5, None)


def welch_by_hand(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """mean(A) − mean(B), its standard error and the Welch–Satterthwaite degrees of freedom, written out."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return a.mean() - b.mean(), math.sqrt(va + vb), dof


def test_the_p_value_of_each_branch_is_scipys_welch_test():
    a = np.array([10.0, 11.0, 12.5, 10.4, 11.2])
    b = np.array([9.0, 9.7, 8.1, 10.3, 9.9])
    effect, se, dof = welch_by_hand(a, b)
    supported = decide("greater", effect, se, dof, None, 0.5)
    assert supported.verdict == "supported"
    assert supported.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    opposite = decide("less", effect, se, dof, None, 0.5)
    assert opposite.how == OPPOSITE
    assert opposite.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    # Negligible within ±3: the larger of H0 effect <= −3 (A + 3 against B) and H0 effect >= 3.
    negligible = decide("greater", effect, se, dof, None, 3.0)
    assert negligible.how == NEGLIGIBLE
    lower = stats.ttest_ind(a + 3, b, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(a - 3, b, equal_var=False, alternative="less").pvalue
    assert negligible.p == pytest.approx(max(lower, upper)) and negligible.p < 0.05
    assert math.isnan(decide("greater", effect, se, dof, None, 0.5 + effect).p)  # undecided: no p
    # The nulls are said of A − B, a "less" check's threshold at −margin.
    assert (supported.null, opposite.null, negligible.null) == ("A − B <= 0", "A − B <= 0", "|A − B| >= 3")
    assert decide("less", -effect, se, dof, 0.2, 0.5).null == "A − B >= -0.2"


def test_holm_against_a_hand_calculation_and_statsmodels():
    # By hand, m = 4: sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> running max 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # statsmodels.stats.multitest.multipletests([0.01, 0.02, 0.03, 0.04, 0.05], method="holm")[1], worked by
    # hand the same way: 0.05, 0.08, 0.09, max(0.09, 0.08), max(0.09, 0.05).
    assert holm([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    # NaN is left out of m (here 3) and stays NaN; adjusted p's are capped at 1.
    adjusted = holm([0.2, math.nan, 0.6, 0.01])
    assert math.isnan(adjusted[1]) and adjusted[[0, 2, 3]] == pytest.approx([0.4, 0.6, 0.03])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        holm([0.5, 1.5])


def test_power_against_textbook_values():
    # Cohen (1988) / G*Power: two-sample, two-sided α = 0.05, 80% power: d = 0.5 -> 64 per group, d = 0.8 -> 26;
    # one sample (or paired), one-sided α = 0.05, d = 0.5 -> 27.
    assert seeds_for(lambda n: t_power(0.5, n, groups=2, alpha=0.05, sides=2)) == 64
    assert seeds_for(lambda n: t_power(0.8, n, groups=2, alpha=0.05, sides=2)) == 26
    assert seeds_for(lambda n: t_power(0.5, n, groups=1, alpha=0.05)) == 27
    # The power at n = 64 itself (G*Power: 0.8015).
    assert t_power(0.5, 64, groups=2, alpha=0.05, sides=2) == pytest.approx(0.8015, abs=5e-4)
    assert seeds_for(lambda n: t_power(1e-4, n)) == MAX_SEEDS + 1


def test_tost_power_against_a_simulation():
    # Two groups of 30 at true effect 0, sd 1, band ±0.8: TOST at α = 0.05 on 20,000 simulated experiments.
    rng = np.random.default_rng(1)
    n, band, alpha = 30, 0.8, 0.05
    a, b = rng.standard_normal((20000, n)), rng.standard_normal((20000, n))
    diff = a.mean(1) - b.mean(1)
    se = np.sqrt((a.var(1, ddof=1) + b.var(1, ddof=1)) / n)
    critical = stats.t.ppf(1 - alpha, 2 * n - 2)
    shown = ((diff + band) / se > critical) & ((diff - band) / se < -critical)
    assert tost_power(band, n, alpha=alpha) == pytest.approx(shown.mean(), abs=0.015)
    # The normal approximation of the seeds (Chow, Shao & Wang): 2 (z_0.95 + z_0.9)² / 0.5² = 68.5 at band 0.5;
    # the t distribution asks slightly more.
    assert 69 <= seeds_for(lambda m: tost_power(0.5, m)) <= 71


def test_seeds_to_decide_plans_for_the_nearest_boundary():
    d_power = lambda d, groups, alpha: next(  # noqa: E731 - the textbook sum, written out once here
        n for n in range(2, 1000)
        if stats.nct.sf(stats.t.ppf(1 - alpha, (2 * n - 2 if groups == 2 else n - 1)),
                        (2 * n - 2 if groups == 2 else n - 1), d * math.sqrt(n / 2 if groups == 2 else n)) >= 0.8)
    # Estimate 0.1 with band 0.5: nearer 0 than 0.5 -> equivalence; at sd 1 that is the band 0.5 above.
    n, basis = seeds_to_decide("greater", 0.1, 1.0, None, 0.5, groups=2)
    assert basis == EQUIVALENCE and 69 <= n <= 71
    # Estimate 0.4: inside the band, nearer its edge -> TOST at the observed effect (simulated below); past the
    # band -> the supported branch at the observed effect; past the band on the other side -> the opposite
    # one-sided test at the observed distance.
    assert seeds_to_decide("greater", 0.4, 1.0, None, 0.5, groups=2)[1] == EQUIVALENCE_OBSERVED
    assert seeds_to_decide("less", -0.7, 1.0, None, 0.5, groups=1)[1] == SUPPORT_OBSERVED
    assert seeds_to_decide("greater", -0.7, 1.0, None, 0.5, groups=2) == (d_power(0.7, 2, 0.025), OBSERVED)
    # No smallest effect: the observed distance 0.3 from the threshold.
    assert seeds_to_decide("greater", 0.3, 0.5, None, None, groups=2) == (d_power(0.6, 2, 0.025), OBSERVED)
    assert seeds_to_decide("greater", 0.0, 0.5, None, None, groups=2) == (None, "")  # on the bound
    assert seeds_to_decide("greater", 0.3, 0.0, None, None, groups=2) == (None, "")  # no spread
    assert seeds_to_decide("greater", 1e-6, 1.0, None, None, groups=1) == (MAX_SEEDS + 1, OBSERVED)


def test_image_bootstrap_of_identical_runs_has_no_interval():
    correct = np.random.default_rng(0).random((3, 500)) < 0.9
    same = image_bootstrap(correct, correct)
    assert same.effect == 0 and math.isnan(same.low) and math.isnan(same.high) and same.images == 500


def test_image_bootstrap_against_the_binomial():
    # A gets every image right; B misses the last 100 of 1000 in both its runs: per image the difference
    # is 100 points on 10% of the images, so a resample's mean is 100 · Binomial(1000, 0.1) / 1000.
    a = np.ones((2, 1000), dtype=bool)
    b = a.copy()
    b[:, 900:] = False
    result = image_bootstrap(a, b)
    assert result.effect == pytest.approx(10.0) and (result.runs_a, result.runs_b) == (2, 2)
    low, high = stats.binom.ppf([0.025, 0.975], 1000, 0.1) / 10
    assert (result.low, result.high) == pytest.approx((low, high), abs=0.3)
    assert image_bootstrap(a, b) == result  # seeded
    # Paired over images: both miss the same 100 images but for ten that only A gets right -> 1 point, with
    # the interval of Binomial(1000, 0.01), not that of two independent accuracies.
    c = b.copy()
    c[:, 900:910] = True
    paired = image_bootstrap(c, b)
    assert paired.effect == pytest.approx(1.0)
    low, high = stats.binom.ppf([0.025, 0.975], 1000, 0.01) / 10
    assert (paired.low, paired.high) == pytest.approx((low, high), abs=0.15)
    with pytest.raises(ValueError, match="same test images"):
        image_bootstrap(a, b[:, :999])


def test_mcnemar_against_the_exact_binomial():
    a = np.array([1] * 7 + [0] * 2 + [1] * 40 + [0] * 5, dtype=bool)
    b = np.array([0] * 7 + [1] * 2 + [1] * 40 + [0] * 5, dtype=bool)
    result = mcnemar(a, b)
    assert (result.only_a, result.only_b) == (7, 2)
    # By hand: 2 · P(X <= 2), X ~ Binomial(9, 1/2) = 2 · (1 + 9 + 36) / 512.
    assert result.p == pytest.approx(92 / 512)
    assert result.p == pytest.approx(stats.binomtest(7, 9, 0.5).pvalue)
    assert mcnemar(a, a).p == 1.0


def test_correct_bits_round_trip():
    from sparsebench.metrics.evaluation import unpack_correct

    correct = np.random.default_rng(2).random(1001) < 0.7
    bits = base64.b64encode(np.packbits(correct)).decode("ascii")
    assert np.array_equal(unpack_correct(bits, 1001), correct)
    with pytest.raises(ValueError, match="count is 2000 images"):
        unpack_correct(bits, 2000)
    with pytest.raises(ValueError, match="not base64"):
        unpack_correct("not*base64", 8)


def test_the_p_values_of_the_margin_tests_are_scipys_shifted_tests():
    a = np.array([10.0, 10.2, 10.1, 9.9, 10.05])
    b = np.array([10.1, 10.3, 10.0, 10.2, 10.15])
    effect, se, dof = welch_by_hand(a, b)
    # within 0.5: the loss B − A under 0.5, H0: A − B <= −0.5, i.e. A + 0.5 no larger than B.
    within = decide("within", effect, se, dof, 0.5)
    assert within.verdict == "supported"
    assert within.p == pytest.approx(stats.ttest_ind(a + 0.5, b, equal_var=False, alternative="greater").pvalue)
    # at most 0.3 above B: H0: A − B >= 0.3.
    at_most = decide("at_most", effect, se, dof, 0.3)
    assert at_most.verdict == "supported"
    assert at_most.p == pytest.approx(stats.ttest_ind(a - 0.3, b, equal_var=False, alternative="less").pvalue)
    # equivalent within ±0.4: the TOST p.
    equivalent = decide("equivalent", effect, se, dof, 0.4)
    assert equivalent.verdict == "supported"
    lower = stats.ttest_ind(a + 0.4, b, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(a - 0.4, b, equal_var=False, alternative="less").pvalue
    assert equivalent.p == pytest.approx(max(lower, upper))


def simulated(n: int, effect: float, experiments: int = 4000, seed: int = 2):
    """(A − B, its standard error, Welch's dof) of ``experiments`` simulated two-group experiments of ``n``
    runs a group, sd 1, true effect ``effect``."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((experiments, n)) + effect, rng.standard_normal((experiments, n))
    va, vb = a.var(1, ddof=1) / n, b.var(1, ddof=1) / n
    return a.mean(1) - b.mean(1), np.sqrt(va + vb), (va + vb) ** 2 / (va ** 2 / (n - 1) + vb ** 2 / (n - 1))


def test_the_seeds_planned_beyond_the_smallest_effect_give_the_rule_80_percent_power_there():
    """An estimate past the smallest effect s: the count is for the rule's supported branch (the 95% interval
    above 0 and the estimate at least s, written out here) were the true effect the observed one, 0.9."""
    s = 0.5
    n, basis = seeds_to_decide("greater", 0.9, 1.0, None, s, groups=2)
    assert basis == SUPPORT_OBSERVED
    diff, se, dof = simulated(n, 0.9)
    assert ((diff - stats.t.ppf(0.975, dof) * se > 0) & (diff >= s)).mean() >= 0.78
    diff, se, dof = simulated(max(2, round(0.7 * n)), 0.9)  # and not many more than it needs
    assert ((diff - stats.t.ppf(0.975, dof) * se > 0) & (diff >= s)).mean() < 0.8
    # Planned at a true effect of s itself (the count this once gave), the branch is a coin toss at any n.
    diff, se, dof = simulated(400, s)
    assert ((diff - stats.t.ppf(0.975, dof) * se > 0) & (diff >= s)).mean() == pytest.approx(0.5, abs=0.03)


def test_the_seeds_planned_inside_the_band_give_tost_80_percent_power_at_the_observed_effect():
    """An estimate inside the band ±s but nearer its edge (0.3 of 0.5): TOST (the 90% interval inside ±s,
    written out) were the true effect the observed one."""
    s = 0.5
    n, basis = seeds_to_decide("greater", 0.3, 1.0, None, s, groups=2)
    assert basis == EQUIVALENCE_OBSERVED
    diff, se, dof = simulated(n, 0.3, experiments=2000)
    half = stats.t.ppf(0.95, dof) * se
    assert ((diff - half > -s) & (diff + half < s)).mean() >= 0.78
    diff, se, dof = simulated(round(0.7 * n), 0.3, experiments=2000)
    half = stats.t.ppf(0.95, dof) * se
    assert ((diff - half > -s) & (diff + half < s)).mean() < 0.8


def test_holm_over_decided_primary_checks_keeps_the_family_error_at_5_percent():
    """m primary checks whose true effects lie on their thresholds (t = 0): any supported or opposite
    verdict that survives Holm is an error. evaluate.correct_for_multiplicity's step written out: a check
    decided by the rule stays decided when its Holm-adjusted p is below 0.05, its p entering the family as
    stats.family_p says (a supported or opposite branch's one-sided p doubled)."""
    rng = np.random.default_rng(3)
    m, families, dof = 5, 3000, 1000
    z = rng.standard_normal((families, m))  # effect / se of each check under its null
    errors = 0
    for row in z:
        decisions = [decide("greater", float(e), 1.0, dof, None, None) for e in row]
        adjusted = holm([family_p(d.p, d.how != "negligible") if math.isfinite(d.p) else 1.0 for d in decisions])
        errors += any(d.verdict != "inconclusive" and q < 0.05 for d, q in zip(decisions, adjusted))
    assert errors / families <= 0.06
