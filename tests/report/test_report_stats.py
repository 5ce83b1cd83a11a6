"""Intervals and the decision rule on arrays, checked against hand computations, the textbook formulas
and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sparsebench.report.stats import (
    against_interval,
    identical,
    paired_interval,
    t_interval,
    welch_interval,
)

T_975_2 = 4.302652729749462  # t_{0.975, 2} (tables: 4.303)


def test_t_interval_matches_the_hand_computation():
    interval = t_interval(np.array([1.0, 2.0, 4.0]))
    mean, std = 7 / 3, math.sqrt(7 / 3)  # sum of squared deviations 42/9, over n - 1 = 2
    assert interval.n == 3 and interval.mean == pytest.approx(mean) and interval.std == pytest.approx(std)
    half = T_975_2 * std / math.sqrt(3)
    assert interval.low == pytest.approx(mean - half) and interval.high == pytest.approx(mean + half)
    assert interval.half_width == pytest.approx(half)


def test_t_interval_of_one_value_is_undefined_and_missing_values_are_dropped():
    one = t_interval([5.0, None, float("nan")])
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.std) and math.isnan(one.low) and math.isnan(one.high)
    assert t_interval(np.array([])).n == 0


def test_welch_interval_matches_the_textbook_formula_and_scipy():
    a, b = [10.0, 11.0, 12.5, 10.4], [9.0, 9.7, 8.1, 10.3, 9.9]
    diff = welch_interval(np.array(a), np.array(b))
    # By hand: the means, the variances over n - 1, the Welch–Satterthwaite degrees of freedom.
    mean_a, mean_b = sum(a) / 4, sum(b) / 5
    va = sum((x - mean_a) ** 2 for x in a) / 3 / 4
    vb = sum((x - mean_b) ** 2 for x in b) / 4 / 5
    dof = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 4)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert diff.effect == pytest.approx(mean_a - mean_b) and diff.dof == pytest.approx(dof)
    assert (diff.low, diff.high) == pytest.approx((mean_a - mean_b - half, mean_a - mean_b + half))
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (diff.low, diff.high) == pytest.approx((ci.low, ci.high), rel=1e-14)
    assert (diff.a.n, diff.b.n) == (4, 5) and diff.b.std == pytest.approx(np.std(b, ddof=1))


def test_welch_interval_needs_two_values_a_side_and_some_spread():
    one = welch_interval([99.0, math.nan], [90.0, 90.1, 90.2])
    assert one.a.n == 1 and one.effect == pytest.approx(99.0 - 90.1) and math.isnan(one.low)
    flat = welch_interval([97.0, 97.0, 97.0], [96.0, 96.0, 96.0])
    assert flat.effect == pytest.approx(1.0) and math.isnan(flat.low) and math.isnan(flat.high) and flat.zero_spread
    assert not one.zero_spread


def test_paired_interval_is_the_t_interval_of_the_differences():
    a = np.array([96.0, 97.5, 98.1, 96.9, math.nan])
    b = np.array([95.0, 96.6, 97.0, 96.0, 95.5])  # the last pair has no A: left out
    diff = paired_interval(a, b)
    d = [1.0, 0.9, 1.1, 0.9]
    mean = sum(d) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    half = stats.t.ppf(0.975, 3) * sd / 2
    assert diff.effect == pytest.approx(mean) and diff.spread == pytest.approx(sd) and diff.dof == 3
    assert (diff.low, diff.high) == pytest.approx((mean - half, mean + half))
    assert diff.largest == pytest.approx(1.1) and (diff.a.n, diff.b.n) == (4, 4)
    same = paired_interval(a[:4], a[:4])
    assert same.spread == 0 and same.largest == 0 and math.isnan(same.low) and same.zero_spread
    with pytest.raises(ValueError, match="one B for each A"):
        paired_interval(a, b[:3])


def test_against_a_constant_shifts_the_one_sample_interval():
    values = np.array([99.5, 99.6, 99.4])
    diff = against_interval(values, 100.0)
    half = T_975_2 * 0.1 / math.sqrt(3)  # sd of (99.5, 99.6, 99.4) is 0.1
    assert diff.effect == pytest.approx(-0.5) and (diff.low, diff.high) == pytest.approx((-0.5 - half, -0.5 + half))
    assert diff.b.mean == 100.0 and diff.b.n == 0 and diff.spread == pytest.approx(0.1)
    assert against_interval([1.0, 1.0], 2.0).zero_spread


def test_identical_is_exact_unless_given_a_margin():
    assert identical(0.0, None) == "supported" and identical(1e-6, None) == "refuted"
    assert identical(1e-6, 1e-5) == "supported"
