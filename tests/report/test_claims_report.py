"""The claims report as a reader sees it: the summary figure of every claim, and the report written from a
small records fixture (human metric names, the summary figure first, difference panels, the paper table's
marks), with every number checked against a hand computation."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest
from report_records import ACCURACY, NEAR_ZERO, write_record, write_results

from sparsebench.claims import overview, page
from sparsebench.claims.catalogue import Check, Claim, Column, Row, Table
from sparsebench.claims.checks import ZERO_SPREAD, Problem, Verdict
from sparsebench.claims.evaluate import (
    CheckNotes,
    ClaimResult,
    contrasts,
    correct_for_multiplicity,
    decisive_check,
    evaluate,
    in_family,
)
from sparsebench.claims.overview import plot_claims_overview, scaled
from sparsebench.claims.page import (
    report_problems,
    verdict_text,
    write_report,
)
from sparsebench.claims.wording import description, early_stop_text
from sparsebench.report import plots
from sparsebench.report.aggregate import load_records


def verdict(test: str, effect: float, low: float, high: float, outcome: str, **extra) -> Verdict:
    return Verdict(metric=extra.pop("metric", "test/accuracy"), test=test, verdict=outcome, effect=effect, low=low,
                   high=high, mean_a=math.nan, std_a=math.nan, n_a=5, mean_b=math.nan, std_b=math.nan, n_b=5,
                   a={"regularizer.name": "dropout"}, b={"regularizer.name": "none"}, groups_a=("dropout",),
                   groups_b=("none",), **extra)


def claim(claim_id: str, kind: str = "claim", **fields) -> Claim:
    return Claim(claim_id, f"statement of {claim_id}", "source", ["exp"], [], [], kind=kind, **fields)


def test_each_test_lands_on_the_common_axis_in_the_claimed_direction():
    """Divided by the smallest effect or the margin; less and at_most turned so that as claimed is right."""
    greater = scaled(verdict("greater", 0.03, 0.01, 0.05, "supported", smallest_effect=0.01))
    assert (greater.x, greater.low, greater.high) == pytest.approx((3.0, 1.0, 5.0))
    less = scaled(verdict("less", -0.5, -0.8, -0.2, "supported", smallest_effect=0.1))
    assert (less.x, less.low, less.high) == pytest.approx((5.0, 2.0, 8.0))
    shifted = scaled(verdict("greater", 1.5, 1.2, 1.8, "supported", smallest_effect=0.2, margin=1.0))
    assert (shifted.x, shifted.low, shifted.high) == pytest.approx((2.5, 1.0, 4.0))  # (A − B − margin) / s
    within = scaled(verdict("within", -0.2, -0.4, 0.0, "supported", margin=0.5))
    assert (within.x, within.low, within.high) == pytest.approx((-0.4, -0.8, 0.0)) and within.scale_name == "margin"
    at_most = scaled(verdict("at_most", 0.01, -0.02, 0.03, "supported", margin=0.04))
    assert (at_most.x, at_most.low, at_most.high) == pytest.approx((-0.25, -0.75, 0.5))
    assert scaled(verdict("identical", 0.0, math.nan, math.nan, "supported")) is None
    assert scaled(verdict("greater", 0.03, 0.01, 0.05, "supported", smallest_effect=0.0)) is None


def constructed_results() -> list[ClaimResult]:
    return [
        ClaimResult(claim("D1"), "supported", [verdict("greater", 0.03, 0.01, 0.05, "supported", smallest_effect=0.01,
                                                       metric="weights/final/global/rel_0.1")]),
        ClaimResult(claim("D2"), "refuted", [verdict("greater", 0.002, -0.001, 0.005, "refuted", smallest_effect=0.01,
                                                     refuted_as="negligible")]),
        ClaimResult(claim("K3"), "inconclusive", [verdict("less", -300.0, -900.0, 300.0, "inconclusive",
                                                          smallest_effect=1100.0, seeds_needed=12,
                                                          metric="noise/pixels/score")]),
        ClaimResult(claim("K2"), "supported", [verdict("within", -0.2, -0.4, 0.0, "supported", margin=0.5)]),
        ClaimResult(claim("S2"), "supported", [verdict("identical", 0.0, math.nan, math.nan, "supported",
                                                       largest_difference=0.0)]),
        ClaimResult(claim("G1"), "inconclusive", [verdict("greater", 0.4, math.nan, math.nan, "inconclusive",
                                                          smallest_effect=0.1,
                                                          problems=(Problem(ZERO_SPREAD),))]),
        ClaimResult(claim("G2"), "not run", reason="no completed run of dropout_rates"),
        ClaimResult(claim("D4-CIFAR"), "not run", reason="not part of the smoke profile", outside_profile=True),
        ClaimResult(claim("P-KW", kind="protocol"), "protocol"),  # no verdict: no row
    ]


def test_the_primary_check_decides_and_a_verdict_that_changes_at_early_stopping_is_marked():
    primary = verdict("within", 0.8, 0.7, 0.9, "refuted", margin=0.5)
    secondary = verdict("less", -3.0, -5.0, -1.0, "supported", smallest_effect=0.1)
    # The claim's first check is its primary (none is marked): its verdict is the claim's, the other's not.
    result = ClaimResult(claim("K2"), "refuted", [primary, secondary], notes=[CheckNotes(5, 5), CheckNotes(5, 5)])
    assert decisive_check(result) is primary
    assert verdict_text(result) == "refuted"
    # The same verdict at the early-stopping epoch: no mark; another: marked, and the row says which.
    same = dataclasses.replace(result, early_stop=verdict("within", 0.7, 0.6, 0.8, "refuted", margin=0.5))
    assert verdict_text(same) == "refuted"
    changed = dataclasses.replace(result, early_stop=verdict("within", 0.3, -0.1, 0.6, "inconclusive", margin=0.5))
    assert verdict_text(changed) == "refuted ‡"
    assert "‡ inconclusive at the early-stopping epoch" in page._summary_row(changed, Path(".")).notes
    assert early_stop_text(primary, changed.early_stop, True).startswith(
        "the verdict changes at the early-stopping (best-validation) epoch: inconclusive, +0.3")
    assert early_stop_text(primary, None, True).startswith("budget not checked")


def test_summary_figure_has_a_row_per_claim_coloured_by_verdict(tmp_path, monkeypatch):
    results = constructed_results()
    paths = plot_claims_overview(results, tmp_path)
    assert sorted(p.name for p in paths) == ["claims_overview.pdf", "claims_overview.png"]
    height, width = matplotlib.image.imread(tmp_path / "claims_overview.png").shape[:2]
    assert width > 1000 and height > 7 * 60  # seven rows of at least 60 pixels

    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out_dir, name, formats: drawn.append(fig) or [])
    plot_claims_overview(results, tmp_path)
    ax = drawn[0].axes[0]
    labels = [label.get_text() for label in ax.get_yticklabels()]
    # A claim the profile holds but did not run keeps its row; one the profile does not hold is only named.
    assert [label.split()[0] for label in labels] == ["D1", "D2", "K3", "K2", "S2", "G1", "G2"]
    assert ax.get_xlabel().endswith("\nnot in this profile, so not drawn: D4-CIFAR")
    assert labels[0] == "D1  near-zero share, |w| < 0.1·σ_init\ndropout vs none"
    dots = {round(line.get_ydata()[0]): line for line in ax.get_lines() if len(line.get_xdata()) == 1}
    # The dot of each row at the effect on the common axis (hand-scaled), in its verdict's colour and shape:
    # Okabe-Ito's bluish green circle, vermillion cross, so that the two read apart without colour too.
    assert dots[0].get_xdata()[0] == pytest.approx(3.0)
    assert (dots[0].get_color(), dots[0].get_marker()) == ("#009E73", "o")
    assert dots[1].get_xdata()[0] == pytest.approx(0.2)
    assert (dots[1].get_color(), dots[1].get_marker()) == ("#D55E00", "X")
    assert dots[2].get_xdata()[0] == pytest.approx(300 / 1100)  # less: turned, so as claimed is right
    assert dots[4].get_marker() == "D" and dots[4].get_xdata()[0] == 0.0  # identical: a diamond at 0
    assert dots[5].get_markerfacecolor() == "white"  # no interval: hollow, at its point estimate 4
    assert dots[5].get_xdata()[0] == pytest.approx(4.0)
    assert 6 not in dots  # not run: no marker
    texts = [text.get_text() for text in ax.texts]
    assert any(t.startswith("no interval: neither side varies") for t in texts)
    assert any(t == "not run: no completed run of dropout_rates" for t in texts)
    assert not any("smoke profile" in t for t in texts)
    assert any(t.startswith("identical run by run") for t in texts)
    bars = [line for line in ax.get_lines()
            if len(line.get_ydata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]]  # not the vertical 0 line
    ends = sorted(end for line in bars for end in line.get_xdata())
    assert ends == pytest.approx(sorted([1.0, 5.0, -0.1, 0.5, -300 / 1100, 900 / 1100, -0.8, 0.0]))
    side = drawn[0].axes[1]
    assert any(t.get_text().replace("\n", " ").startswith(
        "inconclusive Δ −300 [−900, +300]; 1 = smallest effect 1,100; ~12 seeds per group") for t in side.texts)
    # The figure writes numbers as the page does (report.numbers), with a typographic minus.
    assert overview._g(-11219.4) == "−11,219" and overview._g(8815.0) == page.signed(8815.0) == "+8,815"
    assert plot_claims_overview([results[-1]], tmp_path / "none") == []
    # Claims all not run (a plan with run=false): no figure of empty rows; the page's list says "not run".
    assert plot_claims_overview(results[-3:], tmp_path / "not-run") == []
    assert not (tmp_path / "not-run").exists()


# ----------------------------------------------------------------------------------------------------
# The report on a small records fixture


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """mean(a) − mean(b) with its 95% Welch interval, from the textbook formula."""
    from scipy.stats import t

    mean = lambda v: sum(v) / len(v)  # noqa: E731
    var = lambda v: sum((x - mean(v)) ** 2 for x in v) / (len(v) - 1)  # noqa: E731
    sa, sb = var(a) / len(a), var(b) / len(b)
    dof = (sa + sb) ** 2 / (sa ** 2 / (len(a) - 1) + sb ** 2 / (len(b) - 1))
    half = t.ppf(0.975, dof) * math.sqrt(sa + sb)
    return mean(a) - mean(b), mean(a) - mean(b) - half, mean(a) - mean(b) + half


NEAR_ZERO_CHECK = Check(label="dropout leaves more weights below 0.001", metric="weights/final/global/abs_0.001",
                        a={"regularizer.p": 0.5}, b={"regularizer.name": "none"}, test="greater",
                        smallest_effect=0.01, smallest_effect_reason="a point of the share")
ACCURACY_CHECK = Check(label="dropout costs accuracy", metric="test/accuracy", a={"regularizer.p": 0.5},
                       b={"regularizer.name": "none"}, test="less", smallest_effect=0.1,
                       smallest_effect_reason="10 images")


@pytest.fixture(scope="module")
def built_report(tmp_path_factory):
    """The claims report of the 9-run fixture: two claims (one with two checks on the same runs, one
    without any run) and a paper protocol whose first row disagrees with ours. Built once (its figures
    take seconds); each test gets a copy in ``report``."""
    tmp_path = tmp_path_factory.mktemp("report")
    df, _ = load_records(write_results(tmp_path / "results"))
    sparse = Claim("X1", "Dropout leaves more near-zero weights.", "fixture", ["exp"],
                   [NEAR_ZERO_CHECK, ACCURACY_CHECK], ["weights/final/global/abs_0.001", "test/accuracy"],
                   figure="noise_curves")
    missing = Claim("X2", "Something never run.", "fixture", ["other"], [NEAR_ZERO_CHECK], [])
    table = Table("Table 1: test accuracy (%).", "fixture", "standard deviation over 3 seeds",
                  [Column("test accuracy (%)", "test/accuracy")],
                  [Row("Plain", {"regularizer.name": "none"}, [[95.0, 0.5]]),
                   Row("Dropout 0.5", {"regularizer.p": 0.5}, [[96.2, 0.5]])])
    protocol = Claim("P-X", "A paper's table.", "fixture", ["exp"], [], ["test/accuracy"], kind="protocol",
                     table=table)
    out = tmp_path / "report"
    results = [evaluate(c, df, out / "figures", {}, "smoke") for c in (sparse, missing, protocol)]
    figure = plot_claims_overview(results, out / "figures")
    header = "Profile smoke, fixture."
    write_report(results, out, header, [], figure, {"overview": [str(p.relative_to(out)) for p in figure]})
    return out, results


@pytest.fixture
def report(built_report, tmp_path):
    """A copy of the built report, with its results pointing at the copy's figures, for a test to change."""
    built, results = built_report
    out = shutil.copytree(built, tmp_path / "report")
    return out, [dataclasses.replace(result, figures=[out / path.relative_to(built) for path in result.figures])
                 for result in results]


def test_report_numbers_and_verdicts_on_the_fixture(report):
    out, (sparse, missing, protocol) = report
    effect, low, high = welch(NEAR_ZERO[("dropout", 0.5)], NEAR_ZERO[("none", None)])
    check = sparse.checks[0]
    assert (check.effect, check.low, check.high) == pytest.approx((effect, low, high))
    assert sparse.verdict == "supported" and missing.verdict == "not run"
    text = (out / "CLAIMS.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| X1 |"))
    # The deciding check's metric named in words with its unit, and its numbers.
    assert (f"near-zero share, \\|w\\| < 0.001 (fraction of weights): Δ {effect:+,.4g} [{low:+,.4g}, {high:+,.4g}], "
            f"negligible within ±0.01") in row
    # No convergence mark any more: whether the verdict depends on the budget is the early-stopping check.
    assert "weights/final/global" not in row.split("[figure]")[0] and "**supported**" in row


def test_report_reads_like_a_results_section(report):
    out, (sparse, _, protocol) = report
    text = (out / "CLAIMS.md").read_text()
    # The summary figure comes first, before the table of claims.
    assert text.index("](figures/claims_overview.png)") < text.index("| X1 |")
    # Tables and check descriptions name metrics in words: no metric path is left in the claim's section.
    section = text[text.index("## X1:"):text.index("## X2:")]
    assert "weights/final/global/abs_0.001" not in section and "test/accuracy" not in section
    # Three groups, two metrics: a row per group, the metrics' names and units heading the columns.
    assert "| runs | near-zero share, \\|w\\| < 0.001 (fraction of weights) | test accuracy (%) |" in section
    accuracy = ACCURACY[("none", None)]
    # The paper's first row lies (98.1 − 95) / 0.5 = 6.2 spreads away: marked, in bold; the second agrees.
    assert f"{(sum(accuracy) / 3 - 95.0) / 0.5:+.1f}" == "+6.2"
    # Ours one decimal beyond the paper's two: mean 98.1, standard deviation 0.1 of (98.0, 98.2, 98.1).
    assert "| Plain | 95.00 ± 0.50 | 98.100 ± 0.100 (3) | **+6.2 !** |" in text
    assert "!" not in next(line for line in text.splitlines() if line.startswith("| Dropout 0.5 |"))
    page = (out / "claims.html").read_text()
    assert page.index('alt="Every claim') < page.index('<td><a href="#X1">X1</a>')
    marked = re.findall(r'<td class="([^"]*)">([^<]*)</td>', page)
    assert [value for classes, value in marked if "disagrees" in classes] == ["+6.2 !"]
    assert '<th colspan="3" class="start group">test accuracy (%)</th>' in page
    assert "near-zero share, |w| &lt; 0.001 (fraction of weights)" in page
    # The claim's figure has the difference of its checks' sides under the curves.
    assert contrasts(sparse.claim) == [({"regularizer.p": 0.5}, {"regularizer.name": "none"})]
    assert sorted(Path(p).name for p in sparse.figures) == ["X1_noise_curves.pdf", "X1_noise_curves.png"]
    report_json = json.loads((out / "claims.json").read_text())
    assert sorted(report_json["overview"]) == ["figures/claims_overview.pdf", "figures/claims_overview.png"]
    assert report_json["claims"][0]["checks"][1]["metric_name"] == "test accuracy (%)"


PAGES = ("CLAIMS.md", "claims.html", "claims.json")


def test_a_complete_report_lists_every_file_with_its_hash(report):
    import hashlib

    out, _ = report
    manifest = json.loads((out / "manifest.json").read_text())
    expected = ["CLAIMS.md", "claims.html", "claims.json", "figures/X1_noise_curves.pdf", "figures/X1_noise_curves.png",
                "figures/claims_overview.pdf", "figures/claims_overview.png"]
    assert sorted(manifest["files"]) == expected
    assert all(manifest["files"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest() for name in expected)
    assert report_problems(out) == []
    # A figure redrawn after the report (a later run killed before its pages): no longer the report's.
    (out / "figures" / "X1_noise_curves.png").write_bytes(b"another figure")
    assert report_problems(out) == [f"{out / 'figures' / 'X1_noise_curves.png'} differs from the one the report was "
                                    f"written with"]


def test_figures_of_an_earlier_report_that_this_one_did_not_draw_are_removed(report):
    out, results = report
    (out / "figures" / "D9_from_an_earlier_report.png").write_bytes(b"an earlier report's figure")
    # The same claims again, now without the overview (a plan where nothing ran draws none).
    write_report(results, out, "Profile smoke, the second report.")
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["X1_noise_curves.pdf", "X1_noise_curves.png"]
    assert report_problems(out) == []
    assert "claims_overview" not in (out / "CLAIMS.md").read_text()


def test_a_writer_killed_between_two_pages_leaves_the_folder_marked_unfinished(report, monkeypatch):
    """The folder is either the previous complete report or says it is unfinished, never a silent mix."""
    out, results = report
    before = {name: (out / name).read_bytes() for name in PAGES}
    write_text = page.atomic_write_text

    def killed_at_the_html(path, text):
        if Path(path).name == "claims.html":
            raise KeyboardInterrupt("killed")
        return write_text(path, text)

    monkeypatch.setattr(page, "atomic_write_text", killed_at_the_html)
    with pytest.raises(KeyboardInterrupt):
        write_report(results, out, "Profile smoke, the second report.")
    after = {name: (out / name).read_bytes() for name in PAGES}
    assert after["CLAIMS.md"] != before["CLAIMS.md"] and after["claims.html"] == before["claims.html"]  # a mix...
    assert not (out / "manifest.json").exists()  # ...marked as one
    assert len(report_problems(out)) == 1 and "not written to the end" in report_problems(out)[0]
    monkeypatch.undo()
    write_report(results, out, "Profile smoke, the second report.")
    assert report_problems(out) == [] and "the second report" in (out / "claims.html").read_text()


def test_a_page_that_fails_to_render_leaves_the_previous_report_whole(report, monkeypatch):
    out, results = report
    before = {name: (out / name).read_bytes() for name in [*PAGES, "manifest.json"]}

    def broken(report):
        raise RuntimeError("template error")

    monkeypatch.setattr(page, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_report(results, out, "Profile smoke, the second report.")
    assert {name: (out / name).read_bytes() for name in before} == before and report_problems(out) == []


def test_contrasts_are_the_distinct_pairs_of_a_claims_checks():
    from sparsebench.claims.catalogue import load_catalogue

    catalogue = load_catalogue()
    none = {"regularizer.name": "none"}
    # D1's checks name their experiment: dropout_rates' arms are dropout too (its usual rates, a grid).
    usual = [{"experiment": ["dropout_rates", "map_dropout_rates"], "regularizer.p": p} for p in (0.2, 0.4)]
    assert contrasts(catalogue["D1"]) == [
        ({"regularizer.name": "dropout", "experiment": ["mlp_regularizers", "map_mlp_regularizers"]}, none),
        *[(a, none) for a in usual]]
    # A "can" check: each setting of its grid against B, never the settings pooled.
    dropout_at = [{"regularizer.name": "dropout", "regularizer.p": p} for p in (0.2, 0.4, 0.5, 0.6)]
    assert contrasts(catalogue["K2"]) == [({"regularizer.name": "kwinners"}, {"regularizer.name": "none"}),
                                          *[(a, {"regularizer.name": "none"}) for a in dropout_at]]
    assert contrasts(catalogue["K3"]) == [(a, {"regularizer.name": "none"}) for a in dropout_at]
    assert contrasts(catalogue["G2"]) == []  # another metric of the same runs, and a constant: no pair of sides


def test_the_longer_list_of_a_claims_table_runs_down_the_page():
    import pandas as pd

    from sparsebench.claims.page import human_table

    cells = pd.DataFrame({"test/accuracy": ["98 (3)", "96 (3)"], "train/loss": ["0.1 (3)", "0.2 (3)"],
                          "activations/mean/hoyer": ["0.3 (3)", "0.4 (3)"]}, index=["none", "dropout"])
    cells.columns.name = "metric"
    turned = human_table(cells)  # three metrics, two groups: a row per metric
    assert list(turned.columns) == ["metric", "none", "dropout"]
    assert list(turned["metric"]) == ["test accuracy (%)", "training loss (cross-entropy, nats)",
                                      "Hoyer sparsity of activations, mean over hidden layers (0 dense, 1 one-hot)"]
    assert list(turned["dropout"]) == ["96 (3)", "0.2 (3)", "0.4 (3)"]
    kept = human_table(cells[["test/accuracy"]])  # one metric, two groups: a row per group
    assert list(kept.columns) == ["runs", "test accuracy (%)"] and list(kept["runs"]) == ["none", "dropout"]


def test_a_protocol_on_fewer_runs_than_planned_names_the_seeds_each_row_lacks(results, tmp_path):
    """The fixture has seeds 0-2 of three settings; the plan here also wants seeds 3, 4 and 6 of the plain
    net and seed 3 of dropout 0.5: 9 of 13 runs, said row by row, and the verdict carries †."""
    import pandas as pd

    df, _ = load_records(results)
    table = Table("Table 1: test accuracy (%).", "fixture", "standard deviation over 3 seeds",
                  [Column("test accuracy (%)", "test/accuracy")],
                  [Row("Plain", {"regularizer.name": "none"}, [[95.0, 0.5]]),
                   Row("Dropout 0.5", {"regularizer.p": 0.5}, [[96.2, 0.5]])])
    protocol = Claim("P-X", "A paper's table.", "fixture", ["exp"], [], ["test/accuracy"], kind="protocol", table=table)
    settings = [("none", None), ("dropout", 0.5), ("dropout", 0.2)]
    wanted = [(name, p, seed) for name, p in settings for seed in (0, 1, 2)]
    wanted += [("none", None, 3), ("none", None, 4), ("none", None, 6), ("dropout", 0.5, 3)]
    planned = pd.DataFrame([{"experiment": "exp", "seed": seed, "regularizer.name": name, "regularizer.p": p}
                            for name, p, seed in wanted])
    out = tmp_path / "report"
    short = evaluate(protocol, df, out / "figures", {}, "smoke", planned)
    assert (short.runs, short.planned, short.short) == (9, 13, {"Plain": [3, 4, 6], "Dropout 0.5": [3]})
    assert verdict_text(short) == "protocol †"
    write_report([short], out, "header")
    sentence = ("† 9 of the 13 planned runs have a completed record; without one (not run yet, or failed): "
                "Plain, seeds 3–4, 6; Dropout 0.5, seed 3.")
    assert sentence in (out / "CLAIMS.md").read_text()
    assert sentence in (out / "claims.html").read_text()
    # A report of a paper's table alone has no verdicts: no empty summary table of claims above it.
    assert "| claim |" not in (out / "CLAIMS.md").read_text() and "<th>claim</th>" not in (out / "claims.html").read_text()
    # Every planned run there: no mark and no sentence.
    whole = evaluate(protocol, df, out / "figures", {}, "smoke", planned.iloc[:9])
    assert (whole.short, verdict_text(whole)) == ({}, "protocol")


# ----------------------------------------------------------------------------------------------------
# The HTML page as a reader opens it: on a phone, from a copy, from a smoke run


class Page(HTMLParser):
    """The ids, in-page links, images (alt) and meta tags of a page, and the tables outside a scroll box."""

    def __init__(self, text: str):
        super().__init__()
        self.ids, self.links, self.alts, self.metas, self.loose_tables, self.open = set(), [], [], [], 0, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag == "img":
            self.alts.append(attrs.get("alt"))
        if tag == "meta":
            self.metas.append(attrs)
        if tag == "table" and not any("scroll" in (c or "") for c in self.open):
            self.loose_tables += 1
        if tag in ("div", "figure"):
            self.open.append(attrs.get("class"))

    def handle_endtag(self, tag):
        if tag in ("div", "figure") and self.open:
            self.open.pop()


def test_the_page_has_contents_that_resolve_and_fits_a_narrow_screen(report):
    out, (sparse, missing, protocol) = report
    text = (out / "claims.html").read_text()
    page = Page(text)
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.metas
    # Every in-page link (the contents, the summary's claim links, back to top) lands on an element.
    assert page.links and set(page.links) <= page.ids
    assert {"top", "X1", "X2", "P-X", "summary", "protocols"} <= set(page.links)
    assert text.count('<a href="#top">back to top</a>') == 4  # the summary and each of the three sections
    assert page.loose_tables == 0  # every table scrolls inside its own box
    # Images: alt text is the figure's title (the titles as the figure functions write them).
    assert sorted(page.alts) == ["Accuracy under input noise (mean over seeds; band: 95% t-interval)",
                                 "Every claim's primary check: measured effect and 95% interval on a common scale"]
    # The Markdown page names its images by the same titles.
    markdown = (out / "CLAIMS.md").read_text()
    assert sorted(re.findall(r"!\[(.*?)\]\(", markdown)) == sorted(page.alts)
    css = re.search(r"<style>(.*?)</style>", text, re.S).group(1)
    assert "img{max-width:100%;height:auto}" in css and ".scroll{overflow-x:auto" in css
    # Verdict words in the hue of the figures' marks (Okabe-Ito), at 60% for text: bluish green (0, 158, 115)
    # becomes (0, 95, 69), blue (0, 114, 178) becomes (0, 68, 107).
    assert ".supported{color:#005f45}" in css and ".inconclusive{color:#00446b}" in css
    # ± is said where each table uses it: the claim's table (95% half-width), the paper's (standard deviation).
    assert "Each cell: mean ± half-width of the 95% t-interval over seeds" in text
    assert "± is the paper's standard deviation over 3 seeds; ours is the same kind" in html.unescape(text)


def test_a_smoke_report_says_its_verdicts_test_the_pipeline(results, tmp_path):
    df, _ = load_records(results)
    claim = Claim("X1", "Dropout leaves more near-zero weights.", "fixture", ["exp"], [NEAR_ZERO_CHECK],
                  ["weights/final/global/abs_0.001"])
    for profile in ("smoke", "standard"):
        out = tmp_path / profile
        write_report([evaluate(claim, df, out / "figures", {}, profile)], out, "header", info={"profile": profile})
        html_text, md = (out / "claims.html").read_text(), (out / "CLAIMS.md").read_text()
        said = "test that the pipeline runs end to end, not the claims"
        assert (said in html_text, said in md) == ((True, True) if profile == "smoke" else (False, False))
        if profile == "smoke":
            assert html_text.index('class="banner"') < html_text.index("<table")


def test_the_page_names_no_absolute_path(results, tmp_path):
    """A report is committed and copied: the folder it was made from appears by its name only."""
    from types import SimpleNamespace

    from sparsebench.claims import cli

    df, _ = load_records(results)
    claim = Claim("X1", "Dropout leaves more near-zero weights.", "fixture", ["exp"], [NEAR_ZERO_CHECK],
                  ["weights/final/global/abs_0.001"], figure="near_zero_curves")
    out = results / "claims-smoke"
    result = evaluate(claim, df, out / "figures", {}, "smoke")
    skipped = [SimpleNamespace(path=results / "exp" / "broken" / "result.json", reason="not a valid record")]
    plan = SimpleNamespace(all_jobs=lambda: [], tunings={})
    cli._write_report([result], out, "smoke", [], plan, {"reused": 9}, results, 0.0, skipped)
    absolute = str(results.resolve())
    assert absolute.startswith("/")
    for name in ("claims.html", "CLAIMS.md", "claims.json"):
        text = (out / name).read_text()
        assert absolute not in text, name
    assert "in results;" in (out / "CLAIMS.md").read_text().replace("`", "")
    assert "exp/broken/result.json: not a valid record" in (out / "claims.html").read_text()


def test_the_task_sequence_claim_shows_its_accuracy_matrices(tmp_path):
    from test_report_continual_plots import sequence_record

    folder = tmp_path / "records"
    for seed in (0, 1):
        write_record(folder, sequence_record("none", seed, 0.7))
        write_record(folder, sequence_record("kwinners", seed, 0.9))
    df, _ = load_records(folder)
    check = Check(label="k-winners forgets less", metric="continual/forgetting", a={"regularizer.name": "kwinners"},
                  b={"regularizer.name": "none"}, test="less", smallest_effect=1.0, smallest_effect_reason="a point")
    claim = Claim("K9", "Sparse networks forget less.", "fixture", ["exp"], [check], ["continual/forgetting"],
                  figure="task_sequence")
    out = tmp_path / "report"
    result = evaluate(claim, df, out / "figures", {}, "standard")
    write_report([result], out, "header")
    names = sorted(Path(p).name for p in result.figures)
    assert names == ["K9_task_sequence.pdf", "K9_task_sequence.png", "K9_task_sequence_matrix.pdf",
                     "K9_task_sequence_matrix.png"]
    alts = Page((out / "claims.html").read_text()).alts
    assert "Accuracy matrix: test accuracy on each task after each task learned (mean over seeds)" in alts


def test_a_known_metric_the_profiles_runs_do_not_measure_is_not_run_there_not_missing_runs(results, tmp_path):
    """A map's runs leave off what no mapped check reads (prune.compare: []): a secondary check of layer-wise
    pruning finds every planned run's record, none with its metric. That is "not measured in this profile",
    with no run counted missing (no † on the claim); a metric no measurement names stays a mistake to show."""
    import pandas as pd

    df, _ = load_records(results)
    planned = pd.DataFrame([{"experiment": "exp", "seed": seed, "regularizer.name": name}
                            for name in ("none", "dropout") for seed in (0, 1, 2)])
    layerwise = "prune/by_method/layerwise/margin_crossing/one_shot"
    assert layerwise not in df.columns
    unmeasured = Check(label="layer-wise", metric=layerwise, a={"regularizer.name": "dropout"},
                       b={"regularizer.name": "none"}, test="greater")
    typo = Check(label="typo", metric="prune/by_methd/layerwise/margin_crossing/one_shot",
                 a={"regularizer.name": "dropout"}, b={"regularizer.name": "none"}, test="greater")
    result = evaluate(Claim("X5", "s", "source", ["exp"], [ACCURACY_CHECK, unmeasured], ["test/accuracy"]), df,
                      tmp_path / "figures", {}, "smoke", planned)
    measured_not = result.checks[1]
    assert measured_not.verdict == "not run" and not result.incomplete
    assert description(measured_not) == (f"{layerwise}: not measured in this profile: none of its runs records "
                                         f"'{layerwise}' (a measurement its experiments leave off, or a misspelt "
                                         f"metric in the card)")
    assert page.effect_text(measured_not) == "not measured in this profile"
    mistaken = evaluate(Claim("X4", "s", "source", ["exp"], [ACCURACY_CHECK, typo], ["test/accuracy"]), df,
                        tmp_path / "figures", {}, "smoke", planned)
    assert mistaken.checks[1].verdict == "inconclusive" and mistaken.incomplete
    assert "no column" in description(mistaken.checks[1])
    # A side planned but without a record yet: missing runs, not a measurement left off.
    against_l2 = Check(label="layer-wise v L2", metric=layerwise, a={"regularizer.name": "dropout"},
                       b={"regularizer.name": "l2"}, test="greater")
    assert df[df["regularizer.name"] == "l2"].empty
    partial = evaluate(Claim("X3", "s", "source", ["exp"], [ACCURACY_CHECK, against_l2], ["test/accuracy"]), df,
                       tmp_path / "figures", {}, "smoke",
                       pd.concat([planned, pd.DataFrame([{"experiment": "exp", "seed": 0, "regularizer.name": "l2"}])]))
    assert partial.checks[1].verdict == "inconclusive" and partial.incomplete


def test_a_check_whose_sides_the_profile_plans_no_run_of_is_not_run_there_not_inconclusive(results, tmp_path):
    """A secondary check of settings this profile never runs (a map plans no p = 0.8 at its centre) says so,
    and a primary one stays out of Holm's family with no budget mark; one whose settings are planned but
    have no record, or whose arms are still tuning, or whose selector names a column nothing has, stays
    inconclusive."""
    import pandas as pd

    from sparsebench.claims.budget import early_stop_metric

    df, _ = load_records(results)
    # Every run re-measured at its early-stopping epoch (the fixture's records are not): the budget check reads it.
    df[early_stop_metric("test/accuracy")] = df["test/accuracy"] - 0.1
    seeds = (0, 1, 2)
    planned = pd.DataFrame([{"experiment": "exp", "seed": seed, "regularizer.name": name, "regularizer.p": p}
                            for name, p in [("none", None), ("dropout", 0.5)] for seed in seeds])
    underfits = Check(label="underfits at 0.8", metric="test/accuracy", a={"regularizer.p": 0.8},
                      b={"regularizer.p": 0.4}, test="less")
    claimed = Claim("X9", "statement of X9", "source", ["exp"], [ACCURACY_CHECK, underfits], ["test/accuracy"])
    result = evaluate(claimed, df, tmp_path / "figures", {}, "smoke", planned)
    secondary = result.checks[1]
    assert (secondary.verdict, result.incomplete) == ("not run", False)
    assert description(secondary) == ("test/accuracy: not run in this profile, which plans no run of A "
                                      "(regularizer.p=0.8) or of B (regularizer.p=0.4)")
    assert page.effect_text(secondary) == "not planned in this profile"
    # Planned but never run: the shortfall is counted, the check undecided.
    more = pd.concat([planned, pd.DataFrame([{"experiment": "exp", "seed": s, "regularizer.name": "dropout",
                                              "regularizer.p": p} for p in (0.8, 0.4) for s in seeds])])
    waiting = evaluate(claimed, df, tmp_path / "figures", {}, "smoke", more)
    assert (waiting.checks[1].verdict, waiting.incomplete) == ("inconclusive", True)
    # While an arm is still tuning its final runs are not planned yet: undecided, not "not run".
    tuning = evaluate(claimed, df, tmp_path / "figures", {}, "smoke", planned, unsettled={"exp"})
    assert tuning.checks[1].verdict == "inconclusive"
    # A selector naming a column nobody has is a mistake to show.
    typo = Check(label="typo", metric="test/accuracy", a={"regularizer.pp": 0.8}, b={"regularizer.p": 0.5})
    mistaken = evaluate(Claim("X7", "s", "source", ["exp"], [ACCURACY_CHECK, typo], ["test/accuracy"]), df,
                        tmp_path / "figures", {}, "smoke", planned)
    assert mistaken.checks[1].verdict == "inconclusive" and "regularizer.pp" in description(mistaken.checks[1])
    # One side planned is not enough: the other, never planned, makes it a check of another profile too.
    lone_side = Check(label="one side", metric="test/accuracy", a={"regularizer.p": 0.8}, b={"regularizer.name": "none"},
                      test="less")
    gridded = Check(label="can", metric="test/accuracy", a={"regularizer.name": "dropout"}, b={"regularizer.name": "none"},
                    test="less", grid=({"regularizer.p": 0.7}, {"regularizer.p": 0.8}))
    halves = evaluate(Claim("X6", "s", "source", ["exp"], [ACCURACY_CHECK, lone_side, gridded], ["test/accuracy"]), df,
                      tmp_path / "figures", {}, "smoke", planned)
    assert [c.verdict for c in halves.checks[1:]] == ["not run", "not run"] and not halves.incomplete
    assert description(halves.checks[1]) == ("test/accuracy: not run in this profile, which plans no run of A "
                                             "(regularizer.p=0.8)")
    assert "no run of A (regularizer.name=dropout, regularizer.p=[0.7,0.8])" in description(halves.checks[2])
    # A primary check the profile plans nothing for is not one of the report's tested hypotheses, and has no
    # verdict to compare at the early-stopping epoch.
    only = Claim("X8", "statement of X8", "source", ["exp"], [underfits], ["test/accuracy"])
    lone = evaluate(only, df, tmp_path / "figures", {}, "smoke", planned)
    assert result.early_stop is not None and lone.early_stop is None and verdict_text(lone) == "not run"
    corrected = correct_for_multiplicity([lone, result])
    assert corrected[0].checks[0].primary is False and corrected[1].checks[0].primary is True
    # ... so the family is the other claim's primary check alone, and Holm leaves its p as it enters.
    decided = result.checks[0]
    assert math.isfinite(decided.p_value)
    assert corrected[1].checks[0].p_holm == pytest.approx(in_family(decided))


def test_a_side_naming_every_profiles_experiment_is_shown_with_the_one_this_profile_has(results, tmp_path):
    """A card names each profile's experiment for a side (``experiment: [exp, map_exp]``); a page of a
    profile that runs ``exp`` alone names ``exp`` alone, and judges the same runs as a side naming it alone.
    A side none of whose experiments this profile has keeps the card's list, to say what was looked for."""
    import pandas as pd

    df, _ = load_records(results)
    planned = pd.DataFrame([{"experiment": "exp", "seed": seed, "regularizer.name": name, "regularizer.p": p}
                            for name, p in (("none", None), ("dropout", 0.2), ("dropout", 0.5))
                            for seed in (0, 1, 2)])
    listed = Check(label="dropout v none", metric="test/accuracy",
                   a={"regularizer.p": 0.5, "experiment": ["exp", "map_exp"]},
                   b={"regularizer.name": "none", "experiment": ["other_exp", "exp"]}, test="greater")
    elsewhere = Check(label="v a map's dense net", metric="test/accuracy", a={"regularizer.p": 0.5},
                      b={"regularizer.name": "none", "experiment": ["map_exp", "paper_exp"]}, test="greater")
    result = evaluate(Claim("X6", "s", "source", ["exp"], [listed, elsewhere], ["test/accuracy"]), df,
                      tmp_path / "figures", {}, "smoke", planned)
    shown, not_here = result.checks
    assert shown.a == {"regularizer.p": 0.5, "experiment": "exp"}
    assert shown.b == {"regularizer.name": "none", "experiment": "exp"}
    assert "experiment=exp]" in description(shown) and "map_exp" not in description(shown)
    # The numbers are those of the runs of exp, read from the records by hand.
    a = df[(df["regularizer.p"] == 0.5)]["test/accuracy"]
    b = df[(df["regularizer.name"] == "none")]["test/accuracy"]
    assert (shown.n_a, shown.n_b) == (3, 3)
    assert shown.effect == pytest.approx(a.mean() - b.mean())
    assert not_here.verdict == "not run"
    assert not_here.b["experiment"] == ["map_exp", "paper_exp"]
    assert 'experiment=["map_exp","paper_exp"]' in description(not_here)


def test_a_claims_table_shows_the_groups_its_checks_compare_and_its_figure_every_group(results, tmp_path):
    """The records hold none, dropout p 0.2 and p 0.5 (3 seeds each); a claim whose checks compare p 0.5
    with none tables those two groups, each with the mean of its own 3 runs; the p 0.2 runs, which another
    claim sharing the experiment reads, stay in its figure."""
    from sparsebench.claims import evaluate as evaluating

    df, _ = load_records(results)
    drawn = []
    evaluating.FIGURES.add("every_group", lambda rows, out, **_: drawn.append(rows) or [])
    try:
        result = evaluate(Claim("X7", "s", "source", ["exp"], [ACCURACY_CHECK], ["test/accuracy"],
                                figure="every_group"), df, tmp_path / "figures", {}, "smoke")
    finally:
        evaluating.FIGURES.remove("every_group")
    assert len(result.table) == 2
    means = sorted(float(cell.split(" ± ")[0]) for cell in result.table["test/accuracy"])
    by_hand = sorted([df[df["regularizer.p"] == 0.5]["test/accuracy"].mean(),
                      df[df["regularizer.name"] == "none"]["test/accuracy"].mean()])
    assert means == pytest.approx(by_hand, abs=0.01)
    assert sorted(drawn[0]["regularizer.p"].dropna().unique()) == [0.2, 0.5]
