"""Holm's correction across a report's primary checks (``claims.evaluate.correct_for_multiplicity``) and
what the pages say of it, with the adjusted p-values worked by hand."""

from __future__ import annotations

import math

import pytest

from sparsebench.claims.catalogue import Check, Claim
from sparsebench.claims.checks import Verdict
from sparsebench.claims.evaluate import (
    ClaimResult,
    correct_for_multiplicity,
)
from sparsebench.claims.page import (
    build_report,
    render_html,
    render_markdown,
    verdict_text,
)
from sparsebench.claims.wording import description, outcome, p_text


def check(label: str = "check", primary: bool = False) -> Check:
    return Check(label, "test/accuracy", {"regularizer.name": "dropout"}, {"regularizer.name": "none"},
                 smallest_effect=0.1, smallest_effect_reason="why", primary=primary)


def verdict(outcome_: str, p: float, refuted_as: str = "") -> Verdict:
    return Verdict(metric="test/accuracy", test="greater", verdict=outcome_, effect=0.5, low=0.2, high=0.8,
                   mean_a=98.5, std_a=0.1, n_a=5, mean_b=98.0, std_b=0.1, n_b=5, smallest_effect=0.1,
                   refuted_as=refuted_as, p_value=p, null="A − B <= 0", a={"regularizer.name": "dropout"},
                   b={"regularizer.name": "none"})


def result(claim_id: str, checks: list[Check], verdicts: list[Verdict], overall: str) -> ClaimResult:
    return ClaimResult(Claim(claim_id, f"statement of {claim_id}", "source", ["exp"], checks, []), overall, verdicts)


def test_holm_across_the_reports_primary_checks():
    # Four primary checks: p = 0.005 (supported), 0.01 (opposite), 0.004 (negligible) and one undecided (p = 1
    # in the family), m = 4. A supported or opposite branch's one-sided p enters doubled (0.01, 0.02), a
    # negligible one (TOST at 0.05) as it is. By hand: sorted 0.004·4 = 0.016, 0.01·3 = 0.03, 0.02·2 = 0.04,
    # 1·1 = 1 -> adjusted 0.03, 0.04, 0.016, 1.
    results = [
        result("D1", [check(), check("second")], [verdict("supported", 0.005), verdict("supported", 0.2)], "supported"),
        result("D2", [check()], [verdict("refuted", 0.01, "opposite")], "refuted"),
        result("D3", [check("first"), check("marked", primary=True)],
               [verdict("supported", 0.9), verdict("refuted", 0.004, "negligible")], "refuted"),
        result("D4", [check()], [verdict("inconclusive", math.nan)], "inconclusive"),
    ]
    corrected = correct_for_multiplicity(results)
    assert corrected[0].checks[0].p_holm == pytest.approx(0.03) and corrected[0].checks[0].primary
    assert not corrected[0].checks[1].primary and math.isnan(corrected[0].checks[1].p_holm)  # not in the family
    assert corrected[1].checks[0].p_holm == pytest.approx(0.04) and corrected[1].verdict == "refuted"
    assert corrected[2].checks[1].p_holm == pytest.approx(0.016) and not corrected[2].checks[0].primary
    assert corrected[3].checks[0].primary and math.isnan(corrected[3].checks[0].p_holm)
    assert [r.verdict for r in corrected] == ["supported", "refuted", "refuted", "inconclusive"]
    assert math.isnan(results[1].checks[0].p_holm)  # the input is left as it was


def test_a_check_holm_undoes_is_inconclusive_and_its_claim_recombined():
    # p = 0.03 and 0.04, one-sided branches: 0.06 and 0.08 in the family, m = 2: 0.06·2 = 0.12, 0.08·1 ->
    # 0.12 for both (Holm's adjusted p's never fall along the order): both at or above 0.05.
    results = [result("D1", [check()], [verdict("supported", 0.03)], "supported"),
               result("D2", [check()], [verdict("refuted", 0.04, "opposite")], "refuted")]
    corrected = correct_for_multiplicity(results)
    first, second = corrected[0].checks[0], corrected[1].checks[0]
    assert (first.verdict, first.undecided_as, first.before_holm) == ("inconclusive", "holm", "supported")
    assert (second.verdict, second.refuted_as, second.before_holm) == ("inconclusive", "", "refuted (opposite)")
    assert first.p_value == 0.03 and first.p_holm == pytest.approx(0.12) and second.p_holm == pytest.approx(0.12)
    assert [r.verdict for r in corrected] == ["inconclusive", "inconclusive"]
    assert outcome(second) == "inconclusive (not after Holm's correction)"
    # The claim's verdict, in the summary and the overview figure, says what withdrew it.
    assert verdict_text(corrected[1]) == "inconclusive (not after Holm's correction)"
    assert p_text(second) == "p = 0.04 (H0: A − B <= 0); Holm-adjusted p = 0.12 (a primary check)"
    # Its description says why once: "inconclusive (not after Holm's correction: refuted (opposite) on its own …".
    assert description(second).count("not after Holm's correction") == 1
    assert "inconclusive (not after Holm's correction: refuted (opposite) on its own (p = 0.04)" in description(second)


def test_the_pages_say_p_holm_and_why(tmp_path):
    results = correct_for_multiplicity([result("D1", [check("dropout helps")], [verdict("supported", 0.03)],
                                               "supported"),
                                        result("D2", [check()], [verdict("refuted", 0.04, "opposite")], "refuted")])
    report = build_report(results, tmp_path, "header")
    markdown, html = render_markdown(report), render_html(report)
    for page in (markdown, html):
        assert "inconclusive (not after Holm&#x27;s correction)" in page or \
            "inconclusive (not after Holm's correction)" in page
        assert "Holm-adjusted p = 0.12 (a primary check)" in page
        assert "real but below the smallest effect that matters" in page  # the rule says the branch
    assert "not after Holm's correction: supported on its own (p = 0.03)" in markdown


def test_the_pages_show_the_image_interval_and_the_seeds(tmp_path):
    from dataclasses import replace

    measured = replace(verdict("supported", 0.001), image_effect=0.5, image_low=0.25, image_high=0.75, images=10000)
    undecided = replace(verdict("inconclusive", math.nan), seeds_needed=12, seeds_basis="support at the observed effect")
    results = [result("D1", [check()], [measured], "supported"), result("D2", [check()], [undecided], "inconclusive")]
    report = build_report(correct_for_multiplicity(results), tmp_path, "header")
    for page in (render_markdown(report), render_html(report)):
        assert ("Over the 10,000 test images of these runs A − B = +0.5 points, 95% bootstrap CI over images "
                "[+0.25, +0.75]") in page
        assert ("about 12 seeds per group would decide it at this spread: 80% power for the interval to clear the "
                "threshold with the estimate past the smallest effect that matters (0.1) were the true effect the "
                "observed one") in page
        assert "~12 seeds per group would decide it (80% power)" in page  # the summary row
