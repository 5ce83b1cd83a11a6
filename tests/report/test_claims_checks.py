"""A claim's checks judged on constructed records (``claims.checks.judge``): which runs are A and B, the
verdict and the numbers it rests on, checked against hand computations; the words for them
(``claims.wording``)."""

from __future__ import annotations

import base64
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparsebench.claims.checks import Verdict, judge
from sparsebench.claims.wording import (
    description,
    images_text,
    p_text,
    reason,
)


def frame(a: list[float], b: list[float], metric: str = "test/accuracy") -> pd.DataFrame:
    """Runs of two groups: regularizer A = 'kw' with values a, B = 'none' with values b."""
    rows = [{"regularizer.name": "kw", "seed": i, metric: v, "label": "regularizer=kw", "group": "g1"}
            for i, v in enumerate(a)]
    rows += [{"regularizer.name": "none", "seed": i, metric: v, "label": "regularizer=none", "group": "g2"}
             for i, v in enumerate(b)]
    return pd.DataFrame(rows)


A = {"regularizer.name": "kw"}
B = {"regularizer.name": "none"}


def test_a_clear_difference_is_supported_and_its_reverse_refuted():
    df = frame([98.0, 98.2, 98.1, 97.9], [96.0, 96.3, 96.1, 96.2])
    greater = judge(df, "test/accuracy", A, B, "greater")
    assert isinstance(greater, Verdict) and greater.verdict == "supported"
    assert greater.effect == pytest.approx(98.05 - 96.15) and greater.low > 0
    assert (greater.n_a, greater.n_b) == (4, 4) and greater.mean_a == pytest.approx(98.05)
    assert greater.std_b == pytest.approx(np.std([96.0, 96.3, 96.1, 96.2], ddof=1))
    assert "supported" in description(greater) and "n=4" in description(greater)
    assert judge(df, "test/accuracy", B, A, "greater").verdict == "refuted"
    assert judge(df, "test/accuracy", A, B, "less").verdict == "refuted"
    assert judge(df, "test/accuracy", B, A, "less").verdict == "supported"


def test_overlapping_noise_is_inconclusive():
    rng = np.random.default_rng(0)
    df = frame(list(97 + rng.normal(0, 1, 5)), list(97 + rng.normal(0, 1, 5)))
    verdict = judge(df, "test/accuracy", A, B, "greater")
    assert verdict.low < 0 < verdict.high and verdict.verdict == "inconclusive"


def test_within_margin_both_ways():
    # A loses about 0.2 points against B, with a tight interval: under a margin of 1, over a margin of 0.05.
    df = frame([97.8, 97.9, 97.85, 97.95], [98.0, 98.1, 98.05, 98.15])
    supported = judge(df, "test/accuracy", A, B, "within", margin=1.0)
    assert supported.verdict == "supported"
    loss, low, high = supported.loss
    assert loss == pytest.approx(0.2) and high < 1.0 and "loss B − A" in description(supported)
    assert judge(df, "test/accuracy", A, B, "within", margin=0.05).verdict == "refuted"
    # An interval that straddles the margin.
    wide = frame([97.0, 98.5, 96.5, 98.0], [98.0, 98.1, 98.05, 98.15])
    assert judge(wide, "test/accuracy", A, B, "within", margin=1.0).verdict == "inconclusive"


def test_one_seed_on_a_side_is_inconclusive_and_says_why():
    df = frame([99.0], [90.0, 90.1, 90.2])
    verdict = judge(df, "test/accuracy", A, B, "greater")
    assert verdict.verdict == "inconclusive" and verdict.n_a == 1
    assert "at least 2" in reason(verdict) and "at least 2" in description(verdict)


def test_a_side_that_pools_two_experiments_arms_is_a_mistake_shown_not_a_comparison():
    """D1's dropout side once matched both mlp_regularizers' tuned dropout arm and dropout_rates' four rates,
    and its interval pooled five arms as one. A side selecting runs of two experiments is not judged; it says
    which, and how to name one. Runs of another experiment without the metric do not count."""
    df = frame([98.0, 98.2, 98.1], [96.0, 96.3, 96.1]).assign(experiment="mlp_regularizers")
    other = frame([97.0, 97.1, 97.2], []).assign(experiment="dropout_rates", label="p=0.2")
    both = pd.concat([df, other], ignore_index=True)
    mixed = judge(both, "test/accuracy", A, B, "greater")
    assert mixed.verdict == "inconclusive" and math.isnan(mixed.effect) and (mixed.n_a, mixed.n_b) == (6, 3)
    assert reason(mixed) == ("A (regularizer.name=kw) pools runs of 2 experiments (mlp_regularizers, dropout_rates): "
                             "name the one meant in the side's selector (experiment: ...)")
    named = judge(both, "test/accuracy", {**A, "experiment": "mlp_regularizers"}, B, "greater")
    assert named.verdict == "supported" and named.mean_a == pytest.approx(98.1)
    unmeasured = both.assign(**{"test/accuracy": [*df["test/accuracy"], math.nan, math.nan, math.nan]})
    assert judge(unmeasured, "test/accuracy", A, B, "greater").verdict == "supported"


def test_missing_columns_or_rows_are_inconclusive_not_errors():
    df = frame([1.0, 2.0], [1.0, 2.0])
    assert "no run has" in reason(judge(df, "test/accuracy", {"regularizer.q": 2}, B, "greater"))
    assert judge(df, "missing/metric", A, B, "greater").verdict == "inconclusive"
    no_rows = judge(df, "test/accuracy", {"regularizer.name": "sparseout"}, B, "greater")
    assert no_rows.verdict == "inconclusive" and "no run matches A" in reason(no_rows)


def test_selecting_the_same_runs_on_both_sides_is_inconclusive():
    df = frame([1.0, 2.0, 3.0], [5.0, 6.0, 7.0])
    assert judge(df, "test/accuracy", {}, B, "less").verdict == "inconclusive"


def test_bad_arguments_raise():
    df = frame([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="margin"):
        judge(df, "test/accuracy", A, B, "within")
    with pytest.raises(ValueError, match="unknown test"):
        judge(df, "test/accuracy", A, B, "bigger")




def test_the_band_reaches_compare_and_its_description():
    # A − B = 0.1 with a tight interval: significantly above 0, yet negligible against a smallest effect of 1.
    df = frame([98.10, 98.12, 98.08, 98.10], [98.00, 98.02, 97.98, 98.00])
    verdict = judge(df, "test/accuracy", A, B, "greater", smallest_effect=1.0)
    assert verdict.verdict == "refuted" and verdict.refuted_as == "negligible" and verdict.smallest_effect == 1.0
    assert "inside the band 0 ± 1 (equivalence, TOST)" in description(verdict) and "refuted (negligible)" in description(verdict)
    assert judge(df, "test/accuracy", A, B, "greater").verdict == "supported"  # without a band


def test_zero_spread_never_gives_an_interval_of_zero_width():
    df = frame([97.0, 97.0, 97.0], [96.0, 96.0, 96.0])
    verdict = judge(df, "test/accuracy", A, B, "greater")
    assert verdict.verdict == "inconclusive" and math.isnan(verdict.low) and math.isnan(verdict.high)
    assert "zero spread" in reason(verdict) and verdict.effect == pytest.approx(1.0)
    paired = judge(df, "test/accuracy", A, B, "greater", paired=True)
    assert paired.verdict == "inconclusive" and "every paired difference is +1" in reason(paired)
    constant = judge(df, "test/accuracy", A, None, "less", against=100.0)
    assert constant.verdict == "inconclusive" and "zero spread" in reason(constant)


def test_seeds_needed_is_an_a_priori_power_count():
    a = [0.3 + x for x in (-0.5, 0.5, -0.5, 0.5)]  # mean 0.3, sd 0.57735
    b = [-0.5, 0.5, -0.5, 0.5]  # mean 0, the same sd: pooled sd 0.57735
    sd = np.std(b, ddof=1)

    def textbook(d: float) -> int:  # two groups, one-sided α = 0.025, 80% power, from the noncentral t
        return next(n for n in range(2, 1000)
                    if stats.nct.sf(stats.t.ppf(0.975, 2 * n - 2), 2 * n - 2, d * math.sqrt(n / 2)) >= 0.8)

    verdict = judge(frame(a, b), "test/accuracy", A, B, "greater")
    assert verdict.verdict == "inconclusive" and verdict.seeds_basis == "observed effect"
    assert verdict.seeds_needed == textbook(0.3 / sd)
    needed = verdict.seeds_needed
    assert f"about {needed} seeds per group would decide it at this spread: 80% power" in description(verdict)
    # With a band of 0.5 the estimate 0.3 is nearer its edge than 0: TOST were the true effect 0.3 (each
    # one-sided test at α = 0.05 from the noncentral t; the two powers' sum less one, a lower bound).
    def tost(n: int) -> float:
        dof, scale, critical = 2 * n - 2, math.sqrt(n / 2) / sd, stats.t.ppf(0.95, 2 * n - 2)
        return stats.nct.sf(critical, dof, (0.5 + 0.3) * scale) + stats.nct.sf(critical, dof, (0.5 - 0.3) * scale) - 1

    banded = judge(frame(a, b), "test/accuracy", A, B, "greater", smallest_effect=0.5)
    assert banded.seeds_basis == "equivalence at the observed effect"
    assert banded.seeds_needed == next(n for n in range(2, 1000) if tost(n) >= 0.8)


def test_an_interval_inside_the_band_below_zero_is_negligible_not_opposite():
    # A − B = −0.1 with a tight interval below 0, inside the band ±0.5.
    df = frame([98.00, 98.02, 97.98, 98.00], [98.10, 98.12, 98.08, 98.10])
    verdict = judge(df, "test/accuracy", A, B, "greater", smallest_effect=0.5)
    assert verdict.high < 0 and (verdict.verdict, verdict.refuted_as) == ("refuted", "negligible")
    # TOST p: the larger of the one-sided Welch tests of effect <= −0.5 and effect >= 0.5.
    a, b = np.array([98.00, 98.02, 97.98, 98.00]), np.array([98.10, 98.12, 98.08, 98.10])
    expected = max(stats.ttest_ind(a + 0.5, b, equal_var=False, alternative="greater").pvalue,
                   stats.ttest_ind(a - 0.5, b, equal_var=False, alternative="less").pvalue)
    assert verdict.p_value == pytest.approx(expected)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.90)
    assert (verdict.tost_low, verdict.tost_high) == pytest.approx((ci.low, ci.high))
    assert judge(df, "test/accuracy", A, B, "greater").refuted_as == "opposite"  # without a band


def test_real_but_small_is_inconclusive_and_says_so():
    # A − B = 0.3, interval above 0, short of the smallest effect 0.5; its 90% interval leaves the band.
    df = frame([1.2, 1.4, 1.3, 1.1, 1.5], [1.0, 1.1, 0.9, 1.05, 0.95])
    verdict = judge(df, "test/accuracy", A, B, "greater", smallest_effect=0.4)
    assert verdict.low > 0 and verdict.effect < 0.4 and verdict.tost_high > 0.4
    assert (verdict.verdict, verdict.undecided_as, verdict.refuted_as) == ("inconclusive", "small", "")
    assert "inconclusive (real but below the smallest effect that matters)" in description(verdict)
    # Said once in the rule and once as the outcome's reason, not twice over in the outcome.
    assert ": inconclusive (real but below the smallest effect that matters: the 95% CI excludes 0 but the " \
        "estimate does not reach +0.4" in description(verdict)
    assert description(verdict).count("real but below") == 2


def test_p_values_are_scipys_tests():
    a, b = [98.0, 98.2, 98.1, 97.9], [96.0, 96.3, 96.1, 96.2]
    verdict = judge(frame(a, b), "test/accuracy", A, B, "greater", smallest_effect=0.1)
    assert verdict.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    paired = judge(frame(a, b), "test/accuracy", A, B, "greater", paired=True, smallest_effect=0.1)
    assert paired.p_value == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue)
    constant = judge(frame(a, b), "test/accuracy", A, None, "less", against=99.0, smallest_effect=0.1)
    assert constant.p_value == pytest.approx(stats.ttest_1samp(a, 99.0, alternative="less").pvalue)
    assert p_text(verdict) == "p = 4.0e-07 (H0: A − B <= 0)" and verdict.p_value == pytest.approx(4.0e-07, rel=0.05)


def bits(correct: np.ndarray) -> str:
    return base64.b64encode(np.packbits(correct.astype(bool))).decode("ascii")


def test_accuracy_checks_carry_the_image_interval():
    rng = np.random.default_rng(3)
    truth_a = rng.random((4, 800)) < 0.97
    truth_b = rng.random((4, 800)) < 0.95
    df = frame(list(100 * truth_a.mean(1)), list(100 * truth_b.mean(1)))
    df["test/correct_bits"] = [bits(row) for row in (*truth_a, *truth_b)]
    df["test/count"] = 800
    verdict = judge(df, "test/accuracy", A, B, "greater", smallest_effect=0.1)
    # The difference of mean accuracies over all images of all runs, by hand.
    assert verdict.images == 800
    assert verdict.image_effect == pytest.approx(100 * (truth_a.mean() - truth_b.mean()))
    assert verdict.image_low < verdict.image_effect < verdict.image_high
    assert images_text(verdict).startswith("Over the 800 test images of these runs A − B = +")
    # The verdict is the seeds' alone.
    plain = judge(df.drop(columns=["test/correct_bits"]), "test/accuracy", A, B, "greater", smallest_effect=0.1)
    assert plain.verdict == verdict.verdict and plain.images == 0 and images_text(plain) == ""
    # A run without its bits: no image interval rather than one over other runs than the seeds'.
    df.loc[0, "test/correct_bits"] = None
    assert judge(df, "test/accuracy", A, B, "greater", smallest_effect=0.1).images == 0


def test_identical_is_exact_and_needs_pairs():
    values = [96.0, 97.5, 98.1, 96.9]
    same = judge(frame(values, values), "test/accuracy", A, B, "identical", paired=True)
    assert same.verdict == "supported" and same.largest_difference == 0.0
    off = judge(frame([v + (1e-6 if i == 2 else 0) for i, v in enumerate(values)], values), "test/accuracy",
                  A, B, "identical", paired=True)
    assert off.verdict == "refuted" and off.largest_difference == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="paired"):
        judge(frame(values, values), "test/accuracy", A, B, "identical")


def test_a_verdict_names_the_groups_each_side_pools():
    verdict = judge(frame([3.0, 3.1, 3.2], [1.0, 1.1, 1.2]), "test/accuracy", A, B, "greater")
    assert verdict.groups_a == ("regularizer=kw",) and verdict.groups_b == ("regularizer=none",)
    pooled = judge(frame([3.0, 3.1, 3.2], [1.0, 1.1, 1.2]), "test/accuracy", {}, None, "less", against=5.0)
    assert pooled.groups_a == ("regularizer=kw", "regularizer=none") and "pooling 2 groups" in description(pooled)


def test_equivalence_within_a_margin():
    df = frame([97.0, 97.4, 97.2, 97.1], [97.1, 97.3, 97.2, 97.2])
    assert judge(df, "test/accuracy", A, B, "equivalent", margin=0.5).verdict == "supported"
    far = frame([99.0, 99.2, 99.1], [97.0, 97.1, 97.2])
    assert judge(far, "test/accuracy", A, B, "equivalent", margin=0.5).verdict == "refuted"
    with pytest.raises(ValueError):
        judge(df, "test/accuracy", A, B, "equivalent")


def test_pairing_by_seed_sees_identical_runs_as_identical():
    values = [96.0, 97.5, 98.1, 96.9]  # a large spread over seeds, no difference within a seed
    df = frame(values, values)
    welch = judge(df, "test/accuracy", A, B, "equivalent", margin=0.1)
    paired = judge(df, "test/accuracy", A, B, "equivalent", margin=0.1, paired=True)
    assert welch.verdict == "inconclusive"  # the spread over seeds swamps the margin
    assert paired.verdict == "inconclusive" and "zero spread" in reason(paired)  # no interval of zero width
    shifted = frame([v + 1.0 + e for v, e in zip(values, (0.01, -0.02, 0.0, 0.015))], values)
    assert judge(shifted, "test/accuracy", A, B, "greater", paired=True).verdict == "supported"
    assert judge(shifted, "test/accuracy", A, B, "greater").verdict == "inconclusive"


def test_two_metrics_of_the_same_runs_are_compared_run_by_run():
    df = frame([98.0, 97.0, 96.0], [90.0, 91.0, 92.0])
    df["eval_mode"] = df["test/accuracy"] + 2.0 + np.array([0.1, -0.1, 0.0, 0.2, 0.1, 0.0])
    verdict = judge(df, "test/accuracy", A, None, "less", metric_b="eval_mode")
    assert verdict.verdict == "supported" and verdict.n_a == 3
    assert verdict.effect == pytest.approx(-2.0, abs=1e-9)


def test_against_a_constant_and_relative_margins():
    df = frame([99.5, 99.6, 99.4], [1.0, 1.0, 1.0])
    assert judge(df, "test/accuracy", A, None, "less", against=100.0).verdict == "supported"
    assert judge(df, "test/accuracy", A, None, "greater", against=100.0).verdict == "refuted"
    times = frame([1.10, 1.12, 1.11], [1.00, 1.01, 0.99], metric="speed")
    assert judge(times, "speed", A, B, "at_most", margin=0.15, relative=True).verdict == "supported"
    assert judge(times, "speed", A, B, "at_most", margin=0.05, relative=True).verdict == "refuted"


def test_the_description_in_full_from_a_hand_computation():
    # A = (3.0, 3.1, 3.2), B = (1.0, 1.1, 1.2): means 3.1 and 1.1, sds 0.1; Welch: se² = 0.01/3 + 0.01/3,
    # dof = (0.02/3)² / (2 · (0.01/3)² / 2) = 4,
    # half-width t_{0.975, 4} · sqrt(0.02/3) = 2.7764 · 0.08165 = 0.2267.
    verdict = judge(frame([3.0, 3.1, 3.2], [1.0, 1.1, 1.2]), "test/accuracy", A, B, "greater")
    assert description(verdict) == (
        "test/accuracy: A [regularizer.name=kw] 3.1 ± 0.1 sd (n=3) vs B [regularizer.name=none] 1.1 ± 0.1 sd (n=3); "
        "A − B = +2, 95% CI [+1.773, +2.227], df 4.0; supported if the 95% CI lies above 0: supported")
    assert reason(verdict) == "" and verdict.problems == ()


def test_a_side_of_one_run_shows_its_value_without_a_spread():
    """A run stopped part way may hold one seed of an arm: its one value is said as such, never '± nan sd',
    and no interval is taken from it."""
    verdict = judge(frame([3.0], [1.0, 1.1, 1.2]), "test/accuracy", A, B, "greater")
    text = description(verdict)
    assert text.startswith("test/accuracy: A [regularizer.name=kw] 3 (n=1, one run: no spread) vs "
                           "B [regularizer.name=none] 1.1 ± 0.1 sd (n=3); A − B = +1.9, no 95% CI; ")
    assert "nan" not in text and verdict.verdict == "inconclusive"


def test_problems_before_any_interval_are_said_in_one_line():
    df = frame([1.0, 2.0], [1.0, 2.0])
    missing = judge(df, "test/nothing", {"regularizer.q": 2}, B, "greater")
    assert description(missing) == ("test/nothing: inconclusive: no column 'test/nothing' in the results; "
                                    "A (regularizer.q=2): no run has 'regularizer.q'")
    twice = pd.concat([df, df.assign(label="again")], ignore_index=True)  # two runs of each seed on each side
    unpaired = judge(twice, "test/accuracy", A, B, "greater", paired=True)
    assert description(unpaired) == "test/accuracy: inconclusive: pairing by seed needs one run per seed on each side"
    assert (unpaired.n_a, unpaired.n_b) == (4, 4)


def test_sides_sharing_runs_are_inconclusive_and_say_how_many():
    df = frame([1.0, 2.0, 3.0], [5.0, 6.0, 7.0])
    verdict = judge(df, "test/accuracy", {}, B, "less")
    assert verdict.verdict == "inconclusive" and reason(verdict) == "A and B select 3 of the same runs"
    assert verdict.seeds_needed is None  # a count of seeds would not cure it


def test_correct_bits_survive_loading_and_reach_the_check(tmp_path):
    from report_records import make_record, write_record

    from sparsebench.report.aggregate import load_records

    rng = np.random.default_rng(4)
    correct = {}
    for name, rate in (("none", 0.98), ("dropout", 0.96)):
        for seed in range(3):
            right = rng.random(300) < rate
            correct[name, seed] = right
            record = make_record({"name": name, "p": 0.5} if name == "dropout" else {"name": name}, seed,
                                 100 * right.mean())
            record["metrics"]["test"].update(correct_bits=bits(right), count=300)
            write_record(tmp_path, record)
    df, skipped = load_records(tmp_path)
    assert not skipped and df["test/correct_bits"].map(type).eq(str).all()
    verdict = judge(df, "test/accuracy", {"regularizer.name": "none"}, {"regularizer.name": "dropout"}, "greater",
                    smallest_effect=0.1)
    by_hand = np.mean([correct["none", s] for s in range(3)]) - np.mean([correct["dropout", s] for s in range(3)])
    assert verdict.images == 300 and verdict.image_effect == pytest.approx(100 * by_hand)


def test_a_relative_margin_is_tested_as_a_minus_one_plus_m_times_b():
    """"A takes at most 15% longer than B" (S3): H0 mean(A) >= 1.15 mean(B), i.e. the Welch test of A
    against 1.15 B (scipy), whose standard error carries 1.15² of B's variance."""
    a = [1.00, 1.02, 0.98, 1.01, 0.99]
    b = [1.00, 1.10, 0.90, 1.05, 0.95]
    verdict = judge(frame(a, b), "test/accuracy", {"regularizer.name": "kw"}, {"regularizer.name": "none"},
                    "at_most", 0.15, relative=True)
    expected = stats.ttest_ind(a, 1.15 * np.array(b), equal_var=False, alternative="less").pvalue
    assert verdict.verdict == "supported"  # decided either way; only its p is at issue
    assert verdict.p_value == pytest.approx(expected, rel=1e-9)  # 0.010; a fixed threshold gave 0.006
    # The interval shown is that test's, moved onto A − B: its upper end against 0.15 mean(B) decides alike.
    welch = stats.ttest_ind(a, 1.15 * np.array(b), equal_var=False).confidence_interval(0.95)
    shift = 0.15 * np.mean(b)
    assert (verdict.low, verdict.high) == pytest.approx((welch.low + shift, welch.high + shift), rel=1e-9)
    assert verdict.margin == pytest.approx(shift) and verdict.effect == pytest.approx(np.mean(a) - np.mean(b))


def test_a_relative_margin_paired_by_seed_is_the_one_sample_test_of_a_minus_one_plus_m_times_b():
    a = [1.00, 1.14, 0.92, 1.08, 0.97]
    b = [1.00, 1.10, 0.90, 1.05, 0.95]
    verdict = judge(frame(a, b), "test/accuracy", A, B, "at_most", 0.15, relative=True, paired=True)
    expected = stats.ttest_1samp(np.array(a) - 1.15 * np.array(b), 0.0, alternative="less").pvalue
    assert verdict.p_value == pytest.approx(expected, rel=1e-9)


def test_a_relative_within_margin_is_the_test_of_a_against_one_minus_m_times_b():
    """"A loses at most 1% of B" (loss B − A < 0.01 mean(B)): H0 mean(A) <= 0.99 mean(B), Welch's test of A
    against 0.99 B, alternative greater."""
    a = [97.9, 98.1, 98.0, 98.3, 97.8]
    b = [98.2, 98.4, 98.1, 98.5, 98.3]
    verdict = judge(frame(a, b), "test/accuracy", A, B, "within", 0.01, relative=True)
    expected = stats.ttest_ind(a, 0.99 * np.array(b), equal_var=False, alternative="greater").pvalue
    assert verdict.verdict == "supported" and verdict.p_value == pytest.approx(expected, rel=1e-9)


def test_a_check_against_a_constant_names_the_constant_and_a_side_without_runs_says_so():
    a = [0.70, 0.75, 0.80]
    against = judge(frame(a, []), "test/accuracy", A, None, "greater", against=0.5)
    text = description(against)
    # By hand: mean 0.75 over 3 runs against 0.5.
    assert "A [regularizer.name=kw] 0.75" in text and "(n=3) vs B = 0.5, a constant" in text and "nan" not in text
    missing = judge(frame(a, []), "test/accuracy", A, B, "greater")
    text = description(missing)
    assert missing.missing_sides == ("B",) and not missing.ran
    assert "vs B [regularizer.name=none] no run with a value (n=0); no difference to take: B without a run" in text
    assert "nan" not in text

