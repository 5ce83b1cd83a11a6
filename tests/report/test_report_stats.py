"""Intervals and verdicts on constructed data, checked against hand computations and scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparsebench.report.stats import Verdict, compare, decide, t_interval, welch_interval

T_975_2 = 4.302652729749462  # t_{0.975, 2} (tables: 4.303)


def frame(a: list[float], b: list[float], metric: str = "test/accuracy") -> pd.DataFrame:
    """Runs of two groups: regularizer A = 'kw' with values a, B = 'none' with values b."""
    rows = [{"regularizer.name": "kw", "seed": i, metric: v, "label": "regularizer=kw", "group": "g1"}
            for i, v in enumerate(a)]
    rows += [{"regularizer.name": "none", "seed": i, metric: v, "label": "regularizer=none", "group": "g2"}
             for i, v in enumerate(b)]
    return pd.DataFrame(rows)


A = {"regularizer.name": "kw"}
B = {"regularizer.name": "none"}


def test_t_interval_matches_the_hand_computation():
    interval = t_interval([1.0, 2.0, 4.0])
    mean, std = 7 / 3, math.sqrt(7 / 3)  # sum of squared deviations 42/9, over n - 1 = 2
    assert interval.n == 3 and interval.mean == pytest.approx(mean) and interval.std == pytest.approx(std)
    half = T_975_2 * std / math.sqrt(3)
    assert interval.low == pytest.approx(mean - half) and interval.high == pytest.approx(mean + half)
    assert interval.half_width == pytest.approx(half)


def test_t_interval_of_one_value_is_undefined_and_missing_values_are_dropped():
    one = t_interval([5.0, None, float("nan")])
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.std) and math.isnan(one.low) and math.isnan(one.high)
    assert t_interval([]).n == 0


def test_welch_interval_matches_scipy():
    a, b = [10.0, 11.0, 12.5, 10.4], [9.0, 9.7, 8.1, 10.3, 9.9]
    diff = welch_interval(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff.effect == pytest.approx(np.mean(a) - np.mean(b))
    assert (diff.low, diff.high) == pytest.approx((ci.low, ci.high))


def test_a_clear_difference_is_supported_and_its_reverse_refuted():
    df = frame([98.0, 98.2, 98.1, 97.9], [96.0, 96.3, 96.1, 96.2])
    greater = compare(df, "test/accuracy", A, B, "greater")
    assert isinstance(greater, Verdict) and greater.verdict == "supported"
    assert greater.effect == pytest.approx(98.05 - 96.15) and greater.low > 0
    assert (greater.n_a, greater.n_b) == (4, 4) and greater.mean_a == pytest.approx(98.05)
    assert greater.std_b == pytest.approx(np.std([96.0, 96.3, 96.1, 96.2], ddof=1))
    assert "supported" in greater.description and "n=4" in greater.description
    assert compare(df, "test/accuracy", B, A, "greater").verdict == "refuted"
    assert compare(df, "test/accuracy", A, B, "less").verdict == "refuted"
    assert compare(df, "test/accuracy", B, A, "less").verdict == "supported"


def test_overlapping_noise_is_inconclusive():
    rng = np.random.default_rng(0)
    df = frame(list(97 + rng.normal(0, 1, 5)), list(97 + rng.normal(0, 1, 5)))
    verdict = compare(df, "test/accuracy", A, B, "greater")
    assert verdict.low < 0 < verdict.high and verdict.verdict == "inconclusive"


def test_within_margin_both_ways():
    # A loses about 0.2 points against B, with a tight interval: under a margin of 1, over a margin of 0.05.
    df = frame([97.8, 97.9, 97.85, 97.95], [98.0, 98.1, 98.05, 98.15])
    supported = compare(df, "test/accuracy", A, B, "within", margin=1.0)
    assert supported.verdict == "supported"
    loss, low, high = supported.loss
    assert loss == pytest.approx(0.2) and high < 1.0 and "loss B − A" in supported.description
    assert compare(df, "test/accuracy", A, B, "within", margin=0.05).verdict == "refuted"
    # An interval that straddles the margin.
    wide = frame([97.0, 98.5, 96.5, 98.0], [98.0, 98.1, 98.05, 98.15])
    assert compare(wide, "test/accuracy", A, B, "within", margin=1.0).verdict == "inconclusive"


def test_one_seed_on_a_side_is_inconclusive_and_says_why():
    df = frame([99.0], [90.0, 90.1, 90.2])
    verdict = compare(df, "test/accuracy", A, B, "greater")
    assert verdict.verdict == "inconclusive" and verdict.n_a == 1
    assert "at least 2" in verdict.reason and "at least 2" in verdict.description


def test_missing_columns_or_rows_are_inconclusive_not_errors():
    df = frame([1.0, 2.0], [1.0, 2.0])
    assert "no run has" in compare(df, "test/accuracy", {"regularizer.q": 2}, B, "greater").reason
    assert compare(df, "missing/metric", A, B, "greater").verdict == "inconclusive"
    no_rows = compare(df, "test/accuracy", {"regularizer.name": "sparseout"}, B, "greater")
    assert no_rows.verdict == "inconclusive" and "no run matches A" in no_rows.reason


def test_selecting_the_same_runs_on_both_sides_is_inconclusive():
    df = frame([1.0, 2.0, 3.0], [5.0, 6.0, 7.0])
    assert compare(df, "test/accuracy", {}, B, "less").verdict == "inconclusive"


def test_bad_arguments_raise():
    df = frame([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="margin"):
        compare(df, "test/accuracy", A, B, "within")
    with pytest.raises(ValueError, match="unknown test"):
        compare(df, "test/accuracy", A, B, "bigger")


def test_decide_with_a_margin_on_greater():
    assert decide("greater", 0.5, 1.5, margin=0.2) == ("supported", "")
    assert decide("greater", 0.1, 1.5, margin=0.2) == ("inconclusive", "")
    assert decide("greater", -0.5, 0.1, margin=0.2) == ("refuted", "opposite")
    assert decide("less", -1.5, -0.5, margin=None) == ("supported", "")
    assert decide("greater", math.nan, math.nan, None) == ("inconclusive", "")


@pytest.mark.parametrize("test, low, high, outcome", [
    # "greater" with the negligible band [-0.5, 0.5]:
    ("greater", 0.2, 1.4, ("supported", "")),            # above 0 and reaching beyond the band
    ("greater", 0.1, 0.4, ("refuted", "negligible")),    # above 0 but wholly inside the band
    ("greater", -0.3, 0.3, ("refuted", "negligible")),   # straddles 0 inside the band: no effect that matters
    ("greater", -1.2, -0.1, ("refuted", "opposite")),    # below 0
    ("greater", -0.2, 0.9, ("inconclusive", "")),        # straddles 0 and leaves the band
    ("greater", -0.2, 0.5, ("inconclusive", "")),        # touching the band's edge is not inside it
    # "less" is the mirror image:
    ("less", -1.4, -0.2, ("supported", "")),
    ("less", -0.4, -0.1, ("refuted", "negligible")),
    ("less", 0.1, 1.2, ("refuted", "opposite")),
    ("less", -0.9, 0.2, ("inconclusive", "")),
])
def test_each_outcome_of_the_negligible_band(test, low, high, outcome):
    assert decide(test, low, high, margin=None, smallest_effect=0.5) == outcome


def test_the_band_reaches_compare_and_its_description():
    # A − B = 0.1 with a tight interval: significantly above 0, yet negligible against a smallest effect of 1.
    df = frame([98.10, 98.12, 98.08, 98.10], [98.00, 98.02, 97.98, 98.00])
    verdict = compare(df, "test/accuracy", A, B, "greater", smallest_effect=1.0)
    assert verdict.verdict == "refuted" and verdict.refuted_as == "negligible" and verdict.smallest_effect == 1.0
    assert "negligible band ±1" in verdict.description and "refuted (negligible)" in verdict.description
    assert compare(df, "test/accuracy", A, B, "greater").verdict == "supported"  # without a band


def test_zero_spread_never_gives_an_interval_of_zero_width():
    df = frame([97.0, 97.0, 97.0], [96.0, 96.0, 96.0])
    verdict = compare(df, "test/accuracy", A, B, "greater")
    assert verdict.verdict == "inconclusive" and math.isnan(verdict.low) and math.isnan(verdict.high)
    assert "zero spread" in verdict.reason and verdict.effect == pytest.approx(1.0)
    paired = compare(df, "test/accuracy", A, B, "greater", paired=True)
    assert paired.verdict == "inconclusive" and "every paired difference is +1" in paired.reason
    constant = compare(df, "test/accuracy", A, None, "less", against=100.0)
    assert constant.verdict == "inconclusive" and "zero spread" in constant.reason


def test_seeds_needed_matches_a_hand_computation():
    # A − B = 0.3; sd 0.5 and 0.5: half-width t_{n-1} * sqrt(0.5 / n). Deciding needs it below 0.3:
    # n = 24: t_23 = 2.0687, sqrt(0.5/24) = 0.14434 -> 0.2986 < 0.3; n = 23: t_22 = 2.0739, sqrt(0.5/23) = 0.14744 -> 0.3058.
    a = [0.3 + x for x in (-0.5, 0.5, -0.5, 0.5)]  # mean 0.3, sd 0.57735
    b = [-0.5, 0.5, -0.5, 0.5]
    verdict = compare(frame(a, b), "test/accuracy", A, B, "greater")
    assert verdict.verdict == "inconclusive"
    sd = np.std(b, ddof=1)
    expected = next(n for n in range(2, 1000)
                    if stats.t.ppf(0.975, n - 1) * math.sqrt(2 * sd**2 / n) < 0.3)
    assert verdict.seeds_needed == expected
    assert f"about {expected} seeds per group" in verdict.description
    # Inside a band of 0.5 the edge decides: distance 0.5 - 0.3 = 0.2.
    banded = compare(frame(a, b), "test/accuracy", A, B, "greater", smallest_effect=0.5)
    assert banded.seeds_needed == next(n for n in range(2, 1000)
                                       if stats.t.ppf(0.975, n - 1) * math.sqrt(2 * sd**2 / n) < 0.2)


def test_identical_is_exact_and_needs_pairs():
    values = [96.0, 97.5, 98.1, 96.9]
    same = compare(frame(values, values), "test/accuracy", A, B, "identical", paired=True)
    assert same.verdict == "supported" and same.largest_difference == 0.0
    off = compare(frame([v + (1e-6 if i == 2 else 0) for i, v in enumerate(values)], values), "test/accuracy",
                  A, B, "identical", paired=True)
    assert off.verdict == "refuted" and off.largest_difference == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="paired"):
        compare(frame(values, values), "test/accuracy", A, B, "identical")


def test_verdict_as_dict_has_the_numbers():
    verdict = compare(frame([3.0, 3.1, 3.2], [1.0, 1.1, 1.2]), "test/accuracy", A, B, "greater")
    data = verdict.as_dict()
    for key in ("effect", "low", "high", "mean_a", "std_a", "n_a", "mean_b", "std_b", "n_b", "test", "verdict",
                "description"):
        assert key in data
    assert data["groups_a"] == ["regularizer=kw"]


def test_equivalence_within_a_margin():
    df = frame([97.0, 97.4, 97.2, 97.1], [97.1, 97.3, 97.2, 97.2])
    assert compare(df, "test/accuracy", A, B, "equivalent", margin=0.5).verdict == "supported"
    far = frame([99.0, 99.2, 99.1], [97.0, 97.1, 97.2])
    assert compare(far, "test/accuracy", A, B, "equivalent", margin=0.5).verdict == "refuted"
    with pytest.raises(ValueError):
        compare(df, "test/accuracy", A, B, "equivalent")


def test_pairing_by_seed_sees_identical_runs_as_identical():
    values = [96.0, 97.5, 98.1, 96.9]  # a large spread over seeds, no difference within a seed
    df = frame(values, values)
    welch = compare(df, "test/accuracy", A, B, "equivalent", margin=0.1)
    paired = compare(df, "test/accuracy", A, B, "equivalent", margin=0.1, paired=True)
    assert welch.verdict == "inconclusive"  # the spread over seeds swamps the margin
    assert paired.verdict == "inconclusive" and "zero spread" in paired.reason  # no interval of zero width
    shifted = frame([v + 1.0 + e for v, e in zip(values, (0.01, -0.02, 0.0, 0.015))], values)
    assert compare(shifted, "test/accuracy", A, B, "greater", paired=True).verdict == "supported"
    assert compare(shifted, "test/accuracy", A, B, "greater").verdict == "inconclusive"


def test_two_metrics_of_the_same_runs_are_compared_run_by_run():
    df = frame([98.0, 97.0, 96.0], [90.0, 91.0, 92.0])
    df["eval_mode"] = df["test/accuracy"] + 2.0 + np.array([0.1, -0.1, 0.0, 0.2, 0.1, 0.0])
    verdict = compare(df, "test/accuracy", A, None, "less", metric_b="eval_mode")
    assert verdict.verdict == "supported" and verdict.n_a == 3
    assert verdict.effect == pytest.approx(-2.0, abs=1e-9)


def test_against_a_constant_and_relative_margins():
    df = frame([99.5, 99.6, 99.4], [1.0, 1.0, 1.0])
    assert compare(df, "test/accuracy", A, None, "less", against=100.0).verdict == "supported"
    assert compare(df, "test/accuracy", A, None, "greater", against=100.0).verdict == "refuted"
    times = frame([1.10, 1.12, 1.11], [1.00, 1.01, 0.99], metric="speed")
    assert compare(times, "speed", A, B, "at_most", margin=0.15, relative=True).verdict == "supported"
    assert compare(times, "speed", A, B, "at_most", margin=0.05, relative=True).verdict == "refuted"
