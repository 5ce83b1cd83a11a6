"""A "can" claim decided over its grid of settings, and the primary check judged again at the
early-stopping epoch: on constructed records, against scipy's tests and Holm's method by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparsebench.claims.budget import at_early_stop
from sparsebench.claims.catalogue import Check
from sparsebench.claims.checks import UNTRIED, UNTRIED_TEXT, outcome
from sparsebench.claims.grid import judge_check
from sparsebench.claims.wording import budget_changes, decision, undecided_text

NONE = [98.40, 98.45, 98.50, 98.42, 98.48]


def records(cells: dict[float, list[float]], metric: str = "test/accuracy") -> pd.DataFrame:
    rows = [{"regularizer.name": "none", "regularizer.p": np.nan, "seed": s, metric: v} for s, v in enumerate(NONE)]
    for p, values in cells.items():
        rows += [{"regularizer.name": "dropout", "regularizer.p": p, "seed": s, metric: v} for s, v in enumerate(values)]
    return pd.DataFrame(rows)


CAN_COST = Check(label="some rate costs accuracy", metric="test/accuracy", a={"regularizer.name": "dropout"},
                 b={"regularizer.name": "none"}, test="less", smallest_effect=0.2, smallest_effect_reason="20 images",
                 grid=[{"regularizer.p": 0.2}, {"regularizer.p": 0.5}, {"regularizer.p": 0.8}])


def test_a_can_claim_is_supported_by_one_setting_after_holm_across_the_settings():
    costly = [97.00, 97.10, 96.90, 97.05, 96.95]  # p 0.8: 1.5 points lower
    near = [98.44, 98.47, 98.41, 98.49, 98.43]
    verdict = judge_check(records({0.2: near, 0.5: list(reversed(near)), 0.8: costly}), CAN_COST)
    assert verdict.verdict == "supported" and verdict.a == {"regularizer.name": "dropout", "regularizer.p": 0.8}
    # Holm over three settings by hand: the smallest p is multiplied by 3 (the others, not supported, count
    # as 1), the one-sided p of the 95% interval's branch doubled first (a two-sided 95% interval is a
    # one-sided test at 0.025).
    raw = stats.ttest_ind(costly, NONE, equal_var=False, alternative="less").pvalue
    assert verdict.p_value == pytest.approx(min(1.0, 3 * 2 * raw))
    assert verdict.effect == pytest.approx(np.mean(costly) - np.mean(NONE))
    assert [setting for setting, _ in verdict.cells] == [{"regularizer.p": p} for p in (0.2, 0.5, 0.8)]


def test_a_can_claim_is_refuted_only_when_every_setting_refutes_it():
    flat = [98.45, 98.46, 98.44, 98.45, 98.45]  # every setting within ±0.2 of none, tightly: negligible
    verdict = judge_check(records({0.2: flat, 0.5: flat, 0.8: flat}), CAN_COST)
    assert verdict.verdict == "refuted" and verdict.refuted_as == "negligible"
    # An intersection of refutations: its p is the largest of the settings' (TOST: the larger one-sided p).
    d = np.mean(flat) - np.mean(NONE)
    se = np.sqrt(np.var(flat, ddof=1) / 5 + np.var(NONE, ddof=1) / 5)
    dof = se**4 / ((np.var(flat, ddof=1) / 5) ** 2 / 4 + (np.var(NONE, ddof=1) / 5) ** 2 / 4)
    tost = max(stats.t.sf((d + 0.2) / se, dof), stats.t.cdf((d - 0.2) / se, dof))
    assert verdict.p_value == pytest.approx(tost, rel=1e-6)
    # One setting undecided leaves the "can" claim undecided, not refuted.
    wide = [98.9, 97.9, 98.6, 98.0, 98.8]
    assert judge_check(records({0.2: flat, 0.5: flat, 0.8: wide}), CAN_COST).verdict == "inconclusive"


def test_a_can_claim_refuted_as_opposite_everywhere_carries_its_weakest_settings_p_on_the_familys_scale():
    # Every rate scores higher than none: each setting refutes "costs accuracy" as opposite. The grid's p enters
    # the report's family as it is (evaluate.in_family), so each one-sided p is doubled before the largest is taken.
    higher = [98.80, 98.85, 98.75, 98.90, 98.82]
    slightly = [98.60, 98.66, 98.58, 98.70, 98.61]
    verdict = judge_check(records({0.2: higher, 0.5: slightly, 0.8: higher}), CAN_COST)
    assert verdict.verdict == "refuted" and verdict.refuted_as == "opposite"
    raw = [stats.ttest_ind(values, NONE, equal_var=False, alternative="greater").pvalue for values in (higher, slightly)]
    assert verdict.p_value == pytest.approx(min(1.0, 2 * max(raw)))
    assert verdict.effect == pytest.approx(np.mean(slightly) - np.mean(NONE))  # the weakest setting's numbers


def test_settings_a_profile_did_not_run_are_left_out_and_listed():
    costly = [97.00, 97.10, 96.90, 97.05, 96.95]
    verdict = judge_check(records({0.8: costly}), CAN_COST)
    raw = stats.ttest_ind(costly, NONE, equal_var=False, alternative="less").pvalue
    assert verdict.verdict == "supported" and verdict.p_value == pytest.approx(2 * raw)  # a family of one
    assert [cell.n_a for _, cell in verdict.cells] == [5, 0, 0]


def test_the_primary_check_is_judged_again_on_the_early_stopping_epochs_measurements():
    df = records({0.5: [98.0, 98.1, 97.9, 98.05, 97.95]})
    early = [98.5, 98.6, 98.55, 98.45, 98.5]
    df["early_stop/test/accuracy"] = NONE + early
    check = Check(label="dropout costs accuracy", metric="test/accuracy", a={"regularizer.name": "dropout"},
                  b={"regularizer.name": "none"}, test="less", smallest_effect=0.2, smallest_effect_reason="r")
    at_end = judge_check(df, check)
    at_early = at_early_stop(check, df)
    assert at_end.verdict == "supported"
    assert at_early.effect == pytest.approx(np.mean(early) - np.mean(NONE))
    assert at_early.verdict != "supported"  # the cost is gone at the best-validation epoch
    assert at_early_stop(check, df.drop(columns="early_stop/test/accuracy")) is None


def test_the_budget_check_compares_outcomes_before_holms_correction():
    import dataclasses

    from sparsebench.claims.checks import Verdict
    from sparsebench.claims.wording import budget_changes, early_stop_text

    negligible = Verdict("test/accuracy", "greater", "refuted", -0.1, -0.2, -0.03, 99.3, 0.05, 5, 99.4, 0.05, 5,
                         smallest_effect=0.2, refuted_as="negligible")
    undone = dataclasses.replace(negligible, verdict="inconclusive", refuted_as="", undecided_as="holm",
                                 before_holm="refuted (negligible)")
    assert budget_changes(undone, negligible) is False  # Holm undid it at the last epoch only: no change
    assert "before Holm's correction" in early_stop_text(undone, negligible, True)
    assert budget_changes(negligible, dataclasses.replace(negligible, verdict="inconclusive", refuted_as="")) is True
    assert budget_changes(negligible, None) is None


def test_a_grid_primary_check_is_judged_over_its_grid_at_the_early_stopping_epoch_too():
    """Like with like: a "can" check is decided over its settings at the budget, so at early stopping it
    must be too, not on every setting's runs pooled into one A side (K3's ‡ compared p = 0.6 alone with
    the four rates pooled)."""
    costly = [97.00, 97.10, 96.90, 97.05, 96.95]
    near = [98.44, 98.47, 98.41, 98.49, 98.43]
    df = records({0.2: near, 0.5: list(reversed(near)), 0.8: costly})
    df["early_stop/test/accuracy"] = df["test/accuracy"]  # the same numbers at both epochs
    at_end, at_early = judge_check(df, CAN_COST), at_early_stop(CAN_COST, df)
    assert at_end.verdict == "supported"
    assert at_early.verdict == at_end.verdict and at_early.n_a == 5
    assert at_early.effect == pytest.approx(np.mean(costly) - np.mean(NONE))
    assert at_early.a == {"regularizer.name": "dropout", "regularizer.p": 0.8}


def test_a_can_claim_is_not_refuted_by_the_one_setting_a_profile_ran():
    """"One configuration could confirm such a claim but never refute it" (docs/claims.md): a profile that runs one
    setting of the grid (the paper profile's K3: dropout 0.5 only) leaves it undecided when that one refutes."""
    flat = [98.45, 98.46, 98.44, 98.45, 98.45]  # negligible against none (see above)
    assert judge_check(records({0.2: flat, 0.5: flat, 0.8: flat}), CAN_COST).verdict == "refuted"
    verdict = judge_check(records({0.5: flat}), CAN_COST)
    assert verdict.verdict == "inconclusive"
    assert [cell.n_a for _, cell in verdict.cells] == [5, 0, 0]
    # ... and says why: refuted where it ran, the settings it did not run named (not a straddling interval).
    assert verdict.undecided_as == UNTRIED and outcome(verdict) == f"inconclusive ({UNTRIED_TEXT})"
    assert undecided_text(verdict).endswith("not run at regularizer.p=0.2 or regularizer.p=0.8, where it could "
                                            "still hold")
    # Every setting ran, one undecided: inconclusive for its interval, not for a setting left out.
    wide = [98.9, 97.9, 98.6, 98.0, 98.8]
    assert judge_check(records({0.2: flat, 0.5: flat, 0.8: wide}), CAN_COST).undecided_as != UNTRIED
    # A setting not run and one undecided: inconclusive for the undecided interval, whatever else is missing.
    partly = judge_check(records({0.2: flat, 0.5: wide}), CAN_COST)
    assert partly.verdict == "inconclusive" and partly.undecided_as != UNTRIED
    assert [cell.n_a for _, cell in partly.cells] == [5, 5, 0]
    # Compared with another reading of the check (the early-stopping epoch, a runner-up), "refuted wherever it
    # ran" and "undecided at one setting" are the same verdict: inconclusive, no change to mark.
    assert decision(verdict) == decision(partly) == "inconclusive" and budget_changes(verdict, partly) is False
