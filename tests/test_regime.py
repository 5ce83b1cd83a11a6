"""Regime maps (claims.regime): the cells of a map, a check judged in each with Holm's correction across
them, the overall verdict (regime-dependent included), its words, its figure and its place in the report.

Every p-value and adjusted p is computed here from scipy's Welch test and Holm's step-down rule written
out by hand, never read back from the code under test.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats as sps

from sparsebench.claims.catalogue import (
    Card,
    Check,
    Claim,
    HomeRegime,
    RegimeMap,
    Seeds,
    _check_claim,
    _experiments,
)
from sparsebench.claims.evaluate import (
    correct_for_multiplicity,
    evaluate,
    in_family,
    with_map_figures,
)
from sparsebench.claims.mapfigure import plot_regime_map
from sparsebench.claims.page import regime_rows, regime_text, verdict_text, write_report
from sparsebench.claims.regime import REGIME_DEPENDENT, MapLayout, judge_map, map_cells
from sparsebench.claims.wording import where_text
from sparsebench.errors import ConfigError
from sparsebench.report import plots

HIDDEN, SUBSET = "model.hidden", "dataset.train_subset"
AXES = {HIDDEN: [[128, 128], [256, 256], [1024, 1024]], SUBSET: [6000, None]}
CENTER = {HIDDEN: [256, 256], SUBSET: None}
CENTER_CELL = {HIDDEN: [256, 256], SUBSET: None}
NARROW = {HIDDEN: [128, 128], SUBSET: None}
WIDE = {HIDDEN: [1024, 1024], SUBSET: None}
FEW_IMAGES = {HIDDEN: [256, 256], SUBSET: 6000}
BAND = 0.1  # the smallest effect that matters, in accuracy points
CHECK = Check("dropout generalises better", "test/accuracy", {"regularizer.name": "dropout"},
              {"regularizer.name": "none"}, smallest_effect=BAND, smallest_effect_reason="10 test images")
EXPERIMENT = "mlp_regularizers"

# Spreads over 5 seeds, different on each side so that no two samples are shifted copies of each other.
NOISE_A = np.array([-0.03, 0.01, 0.0, 0.04, -0.02])
NOISE_B = np.array([0.02, -0.01, 0.03, -0.03, -0.01])


def side_values(effect: float, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) accuracies over 5 seeds whose means differ by ``effect``."""
    return 98.0 + effect + scale * NOISE_A, 98.0 + scale * NOISE_B


def frame(cells: dict[int, tuple[dict, float | None]]) -> tuple[pd.DataFrame, dict]:
    """Records of each cell (selector, effect A − B; None: no run) and the (A, B) values of each, by cell."""
    rows, values = [], {}
    for number, (cell, effect) in cells.items():
        if effect is None:
            continue
        a, b = side_values(effect, scale=1.0 + number)
        values[number] = (a, b)
        for name, sample in (("dropout", a), ("none", b)):
            for seed, value in enumerate(sample):
                rows.append({"experiment": EXPERIMENT, "group": f"{name}-{number}", "seed": seed, **cell,
                             "regularizer.name": name, "test/accuracy": float(value)})
    return pd.DataFrame(rows), values


def welch_p(a: np.ndarray, b: np.ndarray, alternative: str, shift: float = 0.0) -> float:
    return float(sps.ttest_ind(a + shift, b, equal_var=False, alternative=alternative).pvalue)


def holm_by_hand(p: list[float]) -> list[float]:
    """Holm's step-down adjustment: the i-th smallest of m p's times (m − i), 0-based, running maximum, at most 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, (len(p) - rank) * p[i])
        out[i] = min(1.0, running)
    return out


def test_map_cells_one_factor_at_a_time():
    cells = map_cells(AXES, CENTER)
    # The center once, then each axis's other values with the other axis at its center: 1 + 2 + 1.
    assert cells == [CENTER_CELL, NARROW, WIDE, FEW_IMAGES]
    # A center value outside the axis's values (20 epochs, mapped at 40 and 80) and a repeated value.
    cells = map_cells({"train.epochs": [40, 80, 40.0], HIDDEN: [[256, 256]]}, {"train.epochs": 20, HIDDEN: [256, 256]})
    assert cells == [{"train.epochs": 20, HIDDEN: [256, 256]}, {"train.epochs": 40, HIDDEN: [256, 256]},
                     {"train.epochs": 80, HIDDEN: [256, 256]}]
    with pytest.raises(ValueError, match=r"axes \['train.epochs'\] have no center value"):
        map_cells({"train.epochs": [20, 80]}, {})


def regime_dependent_records():
    # Wide: dropout clearly better (+1 point); narrow: clearly worse (−1); the center: no difference
    # (negligible within ±0.1); 6k images: never run.
    return frame({0: (CENTER_CELL, 0.0), 1: (NARROW, -1.0), 2: (WIDE, 1.0), 3: (FEW_IMAGES, None)})


def test_a_map_that_holds_in_one_cell_and_flips_in_another_is_regime_dependent():
    df, values = regime_dependent_records()
    v = judge_map(df, CHECK, map_cells(AXES, CENTER), home={HIDDEN: [1024, 1024]})
    # Each cell's own p, by scipy's Welch test: the center negligible (TOST: the larger of the two one-sided
    # p's against ±band), narrow opposite, wide supported; supported and opposite enter Holm's family
    # doubled (a one-sided test at 0.025 under the two-sided 95% interval), negligible as it is.
    a, b = values[0]
    p_center = max(welch_p(a, b, "greater", +BAND), welch_p(a, b, "less", -BAND))
    p_narrow = 2 * welch_p(*values[1], "less")
    p_wide = 2 * welch_p(*values[2], "greater")
    q_center, q_narrow, q_wide = holm_by_hand([p_center, p_narrow, p_wide])
    cells = dict((i, cell) for i, (_, cell) in enumerate(v.cells))
    assert [c for c, _ in v.cells] == [CENTER_CELL, NARROW, WIDE, FEW_IMAGES]
    assert (cells[0].verdict, cells[0].refuted_as) == ("refuted", "negligible")
    assert (cells[1].verdict, cells[1].refuted_as) == ("refuted", "opposite")
    assert cells[2].verdict == "supported"
    assert [cells[i].p_holm for i in range(3)] == pytest.approx([q_center, q_narrow, q_wide], rel=1e-6)
    # Each cell's setting is on both sides: B is the cell's own "none" runs, not every cell's pooled.
    assert cells[2].effect == pytest.approx(values[2][0].mean() - values[2][1].mean())
    assert cells[2].n_b == 5
    # The cell that did not run is listed, counts for nothing, and is not in Holm's family (m = 3 above).
    assert cells[3].n_a == 0 and cells[3].verdict == "inconclusive" and math.isnan(cells[3].p_holm)
    assert v.verdict == REGIME_DEPENDENT
    # Both must hold: the larger of the smallest adjusted p among supporting and among refuting cells.
    assert v.p_value == pytest.approx(max(q_wide, min(q_center, q_narrow)), rel=1e-6)
    assert [cell.home for _, cell in v.cells] == [False, False, True, False]
    assert where_text(v) == ("holds at width 1024; flips (opposite) at width 128; negligible at the center (width 256, "
                             "training images all); not run at training images 6k; home regime: width 1024 (holds)")
    # A map whose experiment gives an axis another meaning names it so (K4's train.epochs: epochs a task).
    names = {HIDDEN: "units a layer"}
    assert where_text(v, names).startswith("holds at units a layer 1024; flips (opposite) at units a layer 128; "
                                           "negligible at the center (units a layer 256, training images all)")
    rows = regime_rows(v, MapLayout(AXES, CENTER, names=names))
    assert [row[0] for row in rows] == ["center", "units a layer", "units a layer", "training images"]


def test_every_cell_supporting_is_supported_and_a_missing_cell_keeps_it_from_being():
    every = {i: (cell, 1.0) for i, cell in enumerate([CENTER_CELL, NARROW, WIDE, FEW_IMAGES])}
    df, values = frame(every)
    v = judge_map(df, CHECK, map_cells(AXES, CENTER))
    adjusted = holm_by_hand([2 * welch_p(*values[i], "greater") for i in range(4)])
    assert v.verdict == "supported"
    assert v.p_value == pytest.approx(max(adjusted), rel=1e-6)  # every cell must hold
    assert not any(cell.home for _, cell in v.cells)
    # The same records but one planned cell never ran: the others support it, yet not "everywhere".
    df, values = frame({**every, 3: (FEW_IMAGES, None)})
    v = judge_map(df, CHECK, map_cells(AXES, CENTER))
    assert v.verdict == "inconclusive" and math.isnan(v.p_value)
    assert [cell.verdict for _, cell in v.cells] == ["supported", "supported", "supported", "inconclusive"]
    assert where_text(v).startswith("holds at every width tried; not run at training images 6k")
    assert regime_text(v, MapLayout(AXES, CENTER)).endswith(
        "(4 cells: 3 supported, 1 not run); every cell that ran is supported, but 1 planned cell(s) did not run: "
        "not supported across the map")


def test_every_cell_opposite_is_refuted_opposite():
    df, values = frame({i: (cell, -1.0) for i, cell in enumerate([CENTER_CELL, NARROW, WIDE, FEW_IMAGES])})
    v = judge_map(df, CHECK, map_cells(AXES, CENTER))
    adjusted = holm_by_hand([2 * welch_p(*values[i], "less") for i in range(4)])
    assert (v.verdict, v.refuted_as) == ("refuted", "opposite")
    assert v.p_value == pytest.approx(max(adjusted), rel=1e-6)


def test_the_regime_map_figure_is_written(tmp_path):
    df, _ = regime_dependent_records()
    v = judge_map(df, CHECK, map_cells(AXES, CENTER), home={HIDDEN: [1024, 1024]})
    paths = plot_regime_map(v, MapLayout(AXES, CENTER, {HIDDEN: [1024, 1024]}), tmp_path, name="X1_regime_map",
                            title="X1")
    assert [p.name for p in paths] == ["X1_regime_map.png", "X1_regime_map.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:4] == b"%PDF"


def test_the_regime_map_figure_gives_the_verdict_holms_correction_across_the_report_left(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, out, name, *a, **k: drawn.setdefault(name, fig) and [])
    df, _ = regime_dependent_records()
    v = judge_map(df, CHECK, map_cells(AXES, CENTER))
    withdrawn = replace(v, verdict="inconclusive", undecided_as="holm", before_holm="regime-dependent")
    plot_regime_map(withdrawn, MapLayout(AXES, CENTER), tmp_path, name="X1_regime_map", title="X1")
    title = drawn["X1_regime_map"].get_suptitle()
    assert title.startswith("X1: inconclusive across the map")
    assert "regime-dependent before Holm's correction across the report's claims" in title
    plot_regime_map(v, MapLayout(AXES, CENTER), tmp_path, name="X1_kept", title="X1")
    assert drawn["X1_kept"].get_suptitle().startswith("X1: regime-dependent across the map")
    assert "before Holm's correction across the report" not in drawn["X1_kept"].get_suptitle()


CARD = Card("literal", "strongest", HomeRegime("MLPs", "the paper", "map"), Seeds(5, "power"))


def test_the_catalogue_rejects_a_map_experiment_the_map_profile_does_not_run():
    experiments = _experiments()
    check = Check("x", "test/accuracy", {"regularizer.name": "dropout"}, {"regularizer.name": "none"},
                  smallest_effect=0.1, smallest_effect_reason="10 images")
    per_profile = {"default": ["mlp_regularizers"], "map": ["dropout_rates"]}
    _check_claim(Claim("X1", "s", "src", per_profile, [check], [], card=CARD, map=RegimeMap("dropout_rates")),
                 experiments)
    with pytest.raises(ConfigError, match=r"^claims/X1.map.experiment='mlp_regularizers' is not allowed: must be one "
                                          r"of the claim's experiments under the map profile \(dropout_rates\)"):
        _check_claim(Claim("X1", "s", "src", per_profile, [check], [], card=CARD, map=RegimeMap("mlp_regularizers")),
                     experiments)
    with pytest.raises(ConfigError, match=r"claims/X1.map.experiment='nope'"):
        _check_claim(Claim("X1", "s", "src", per_profile, [check], [], card=CARD, map=RegimeMap("nope")), experiments)


def test_a_claim_file_gives_its_map_as_yaml():
    text = """
id: X1
statement: s
source: src
experiments: [mlp_regularizers]
checks: []
metrics: []
map: {experiment: mlp_regularizers, home: {model.hidden: [1024, 1024], dataset.train_subset: null}, home_note: wider than the map}
"""
    claim = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Claim), OmegaConf.create(text)))
    assert claim.map == RegimeMap("mlp_regularizers", {HIDDEN: [1024, 1024], SUBSET: None}, "wider than the map")


def test_a_mapped_claim_is_regime_dependent_in_the_report(tmp_path):
    df, values = regime_dependent_records()
    claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK], ["test/accuracy"], card=CARD,
                  map=RegimeMap(EXPERIMENT, home={HIDDEN: [1024, 1024]}))
    out = tmp_path / "report"
    # The same accuracies at the early-stopping epoch: the budget check is judged over the map's cells too.
    df = df.assign(**{"early_stop/test/accuracy": df["test/accuracy"]})
    result = evaluate(claim, df, out / "figures", {}, "map", axes={EXPERIMENT: (AXES, CENTER)})
    assert result.verdict == REGIME_DEPENDENT and len(result.checks[0].cells) == 4
    assert result.early_stop.verdict == REGIME_DEPENDENT and len(result.early_stop.cells) == 4
    # The map's figure is drawn after Holm's correction across the report, with the verdict it left.
    assert not any(p.name.startswith("X1_regime_map") for p in result.figures)
    [drawn] = with_map_figures(correct_for_multiplicity([result]), out / "figures")
    assert drawn.figures[0].name == "X1_regime_map.png" and drawn.figures[0].exists()
    # Another profile judges the same check once, on the runs pooled: no map.
    assert evaluate(claim, df, out / "other", {}, "standard", axes={EXPERIMENT: (AXES, CENTER)}).regime is None
    # In the report's family the map's p is already adjusted across its cells: it enters as it is.
    [corrected] = correct_for_multiplicity([result])
    primary = corrected.checks[0]
    assert in_family(result.checks[0]) == result.checks[0].p_value
    assert primary.p_holm == pytest.approx(result.checks[0].p_value) and corrected.verdict == REGIME_DEPENDENT
    write_report([corrected], out, "Profile map, fixture.")
    page = (out / "CLAIMS.md").read_text()
    assert "**regime-dependent**" in page and "Regime map: holds at width 1024; flips (opposite) at width 128" in page
    a, b = values[2]
    wide = next(line for line in page.splitlines() if line.startswith("| width | 1024 |"))
    assert f"{a.mean() - b.mean():+.4g} [" in wide and "| holds |" in wide and "★ home" in wide
    assert "| training images | 6k | – | not run | – | 0 vs 0 |" in page
    assert 'class="regime-dependent"' in (out / "claims.html").read_text()


def test_a_cell_with_one_side_not_run_is_not_run_and_says_which_side(tmp_path):
    # A regime map half way: the wide cell's dropout runs are done, its dense runs not yet.
    df, values = frame({0: (CENTER_CELL, 1.0), 1: (NARROW, 1.0), 2: (WIDE, 1.0), 3: (FEW_IMAGES, 1.0)})
    df = df[~((df["model.hidden"].map(tuple) == (1024, 1024)) & (df["regularizer.name"] == "none"))]
    v = judge_map(df, CHECK, map_cells(AXES, CENTER))
    # The three cells with both sides are the family (Holm over 3, not 4); the fourth did not run.
    adjusted = holm_by_hand([2 * welch_p(*values[i], "greater") for i in (0, 1, 3)])
    assert [cell.p_holm for _, cell in v.cells if not math.isnan(cell.p_holm)] == pytest.approx(adjusted, rel=1e-6)
    assert v.verdict == "inconclusive"
    assert regime_text(v, MapLayout(AXES, CENTER)).endswith(
        "(4 cells: 3 supported, 1 not run); every cell that ran is supported, but 1 planned cell(s) did not run: "
        "not supported across the map")
    assert "not run at width 1024" in where_text(v)
    claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK], ["test/accuracy"], card=CARD,
                  map=RegimeMap(EXPERIMENT, home={HIDDEN: [1024, 1024]}))
    result = evaluate(claim, df, tmp_path / "figures", {}, "map", axes={EXPERIMENT: (AXES, CENTER)})
    write_report(correct_for_multiplicity([result]), tmp_path, "Profile map, fixture.")
    page = (tmp_path / "CLAIMS.md").read_text()
    assert "| width | 1024 | – | not run (B: no run yet) | – | 5 vs 0 | ★ home |" in page
    assert "nan" not in page.lower()


def test_a_map_with_no_cell_run_on_both_sides_says_so_in_words(tmp_path):
    df, _ = frame({0: (CENTER_CELL, 1.0)})
    df = df[df["regularizer.name"] == "dropout"]  # only A's runs anywhere
    claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK], ["test/accuracy"], card=CARD,
                  map=RegimeMap(EXPERIMENT))
    result = evaluate(claim, df, tmp_path / "figures", {}, "map", axes={EXPERIMENT: (AXES, CENTER)})
    assert result.verdict == "inconclusive"
    write_report(correct_for_multiplicity([result]), tmp_path, "Profile map, fixture.")
    page = (tmp_path / "CLAIMS.md").read_text()
    assert "no cell of the map has runs on both sides yet" in page
    assert "nan" not in page.lower()


def test_axis_values_in_words():
    from sparsebench.claims.wording import axis_value

    # By hand: equal layers as one width, no subset as all, whole or half thousands of images shortened.
    assert [axis_value(v) for v in ([256, 256], [512, 256], None, 6000, 12500, 50000, 1024, 2048, 80, 0.5)] == \
        ["256", "512-256", "all", "6k", "12.5k", "50k", "1024", "2048", "80", "0.5"]


def test_a_map_of_a_within_margin_check_names_the_cells_that_fail_it(tmp_path):
    # "Little loss": loss B − A under 0.5 points. The center loses 0.1 (holds), 1024 loses 2 points (fails).
    within = Check("k-winners costs little", "test/accuracy", {"regularizer.name": "dropout"},
                   {"regularizer.name": "none"}, test="within", margin=0.5)
    df, values = frame({0: (CENTER_CELL, -0.1), 1: (NARROW, -0.1), 2: (WIDE, -2.0), 3: (FEW_IMAGES, -0.1)})
    v = judge_map(df, within, map_cells(AXES, CENTER))
    assert v.verdict == REGIME_DEPENDENT
    assert [cell.verdict for _, cell in v.cells] == ["supported", "supported", "refuted", "supported"]
    assert "fails its margin at width 1024" in where_text(v)
    paths = plot_regime_map(v, MapLayout(AXES, CENTER), tmp_path, name="K2_regime_map", title="K2")
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


CAN_CHECK = Check("some rate costs accuracy", "test/accuracy", {"regularizer.name": "dropout"},
                  {"regularizer.name": "none"}, test="less", smallest_effect=BAND, smallest_effect_reason="10 images",
                  grid=[{"regularizer.p": 0.2}, {"regularizer.p": 0.4}, {"regularizer.p": 0.6}])


def can_records() -> tuple[pd.DataFrame, dict]:
    """The center: p 0.6 costs 1 point, p 0.2 nothing measurable; width 1024: both rates score higher than none
    (opposite); width 128 not run. No p 0.4 anywhere: the map runs two of the check's three rates."""
    shifts = {0: (CENTER_CELL, {0.2: 0.0, 0.6: -1.0}), 2: (WIDE, {0.2: 0.8, 0.6: 0.6})}
    rows, values = [], {}
    for number, (cell, by_rate) in shifts.items():
        b = 98.0 + NOISE_B
        rows += [{"experiment": EXPERIMENT, "group": f"none-{number}", "seed": s, **cell, "regularizer.name": "none",
                  "regularizer.p": np.nan, "test/accuracy": float(v)} for s, v in enumerate(b)]
        for rate, shift in by_rate.items():
            a = 98.0 + shift + (1 + rate) * NOISE_A
            values[number, rate] = (a, b)
            rows += [{"experiment": EXPERIMENT, "group": f"dropout-{rate}-{number}", "seed": s, **cell,
                      "regularizer.name": "dropout", "regularizer.p": rate, "test/accuracy": float(v)} for s, v in enumerate(a)]
    return pd.DataFrame(rows), values


def test_a_can_check_is_decided_over_the_maps_grid_in_each_cell(tmp_path):
    df, values = can_records()
    claim = Claim("X2", "Dropout can cost accuracy.", "fixture", [EXPERIMENT], [CAN_CHECK], ["test/accuracy"],
                  card=CARD, map=RegimeMap(EXPERIMENT, grid=[{"regularizer.p": 0.2}, {"regularizer.p": 0.6}]))
    out = tmp_path / "report"
    result = evaluate(claim, df, out / "figures", {}, "map", axes={EXPERIMENT: (AXES, CENTER)})
    cells = [cell for _, cell in result.checks[0].cells]
    # The center: over the map's two rates, p 0.6 supports it; Holm over the two (p 0.2 counts as 1) doubles its
    # p, already doubled as a one-sided test under the 95% interval.
    center_p = min(1.0, 2 * 2 * welch_p(*values[0, 0.6], "less"))
    assert cells[0].verdict == "supported" and cells[0].a["regularizer.p"] == 0.6
    assert cells[0].p_value == pytest.approx(center_p, rel=1e-6)
    assert [setting for setting, _ in cells[0].cells] == [{"regularizer.p": 0.2}, {"regularizer.p": 0.6}]
    # Width 1024: both rates opposite, so the "can" check is refuted there, its p the weaker rate's, doubled.
    wide_p = 2 * max(welch_p(*values[2, rate], "greater") for rate in (0.2, 0.6))
    assert (cells[2].verdict, cells[2].refuted_as) == ("refuted", "opposite")
    assert cells[2].p_value == pytest.approx(wide_p, rel=1e-6)
    # Across the cells the grid's p's enter as they are (not doubled again); width 128 and 6k did not run.
    q_center, q_wide = holm_by_hand([center_p, wide_p])
    assert [cells[0].p_holm, cells[2].p_holm] == pytest.approx([q_center, q_wide], rel=1e-6)
    assert not cells[1].ran and not cells[3].ran
    assert result.verdict == REGIME_DEPENDENT
    write_report(correct_for_multiplicity([result]), out, "Profile map, fixture.")
    page = (out / "CLAIMS.md").read_text()
    center = next(line for line in page.splitlines() if line.startswith("| center |"))
    a, b = values[0, 0.6]
    assert f"| {a.mean() - b.mean():+.4g} [" in center and "] at regularizer.p=0.6 | holds |" in center
    assert "at regularizer.p=0.6 | flips (opposite) at each of its 2 settings |" in page  # the weaker rate's numbers
    # Under another profile the check keeps its own grid: p 0.4 was not run and is listed as such.
    other = evaluate(claim, df, tmp_path / "other", {}, "standard")
    assert [(setting, cell.ran) for setting, cell in other.checks[0].cells][-1] == ({"regularizer.p": 0.4}, False)


def test_a_secondary_check_is_judged_cell_by_cell_on_a_map_not_pooled_over_the_cells(tmp_path):
    """Pooled over the cells a secondary check would compare a mixture of regimes; in each cell it says where
    it holds, as the primary does. The map's grid narrows a secondary "can" check as it would the primary."""
    df, values = can_records()
    claim = Claim("X3", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK, CAN_CHECK], ["test/accuracy"],
                  card=CARD, map=RegimeMap(EXPERIMENT, grid=[{"regularizer.p": 0.2}, {"regularizer.p": 0.6}]))
    result = evaluate(claim, df, tmp_path / "figures", {}, "map", axes={EXPERIMENT: (AXES, CENTER)})
    primary, can = result.checks
    # The primary's centre cell: both rates' runs against none's, by hand.
    a_center = np.concatenate([values[0, 0.2][0], values[0, 0.6][0]])
    assert [cell for cell, _ in primary.cells][0] == CENTER_CELL
    assert primary.cells[0][1].effect == pytest.approx(a_center.mean() - values[0, 0.2][1].mean())
    # The secondary "can" check: in the centre p 0.6 supports it, Holm over the map's two rates; at width 1024
    # both rates are opposite; as the primary of a claim of its own would read (the test above).
    cells = [cell for _, cell in can.cells]
    center_p = min(1.0, 2 * 2 * welch_p(*values[0, 0.6], "less"))
    wide_p = 2 * max(welch_p(*values[2, rate], "greater") for rate in (0.2, 0.6))
    assert cells[0].verdict == "supported" and cells[0].p_value == pytest.approx(center_p, rel=1e-6)
    assert [setting for setting, _ in cells[0].cells] == [{"regularizer.p": 0.2}, {"regularizer.p": 0.6}]
    assert (cells[2].verdict, cells[2].refuted_as) == ("refuted", "opposite")
    assert cells[2].p_value == pytest.approx(wide_p, rel=1e-6)
    assert can.verdict == REGIME_DEPENDENT and can.n_a == 5  # the deciding cell's runs, not 10 cells' pooled
    write_report(correct_for_multiplicity([result]), tmp_path / "report", "Profile map, fixture.")
    line = next(x for x in (tmp_path / "report" / "CLAIMS.md").read_text().splitlines()
                if x.startswith("- some rate costs accuracy"))
    assert "judged in each cell of the regime map: holds at" in line
    # A check that names a width of its own is judged at that width, once: no cell overrides its selector.
    wide_only = Check("at width 1024", "test/accuracy", {"regularizer.name": "dropout", HIDDEN: [1024, 1024]},
                      {"regularizer.name": "none", HIDDEN: [1024, 1024]}, smallest_effect=BAND,
                      smallest_effect_reason="10 test images")
    pinned = evaluate(dataclasses.replace(claim, checks=[CHECK, wide_only]), df, tmp_path / "pinned", {}, "map",
                      axes={EXPERIMENT: (AXES, CENTER)}).checks[1]
    a_wide = np.concatenate([values[2, 0.2][0], values[2, 0.6][0]])
    assert not pinned.cells and (pinned.n_a, pinned.n_b) == (10, 5)
    assert pinned.effect == pytest.approx(a_wide.mean() - values[2, 0.2][1].mean())


def test_the_catalogue_rejects_a_map_grid_outside_the_checks_grid():
    experiments = _experiments()
    per_profile = {"default": ["mlp_regularizers"], "map": ["mlp_regularizers"]}
    good = RegimeMap("mlp_regularizers", grid=[{"regularizer.p": 0.2}])
    _check_claim(Claim("X2", "s", "src", per_profile, [CAN_CHECK], [], card=CARD, map=good), experiments)
    with pytest.raises(ConfigError, match=r"^claims/X2.map.grid=.*is not allowed: must be some of the grid settings "
                                          r"of one of the claim's \"can\" checks"):
        _check_claim(Claim("X2", "s", "src", per_profile, [CAN_CHECK], [], card=CARD,
                           map=RegimeMap("mlp_regularizers", grid=[{"regularizer.p": 0.5}])), experiments)
    with pytest.raises(ConfigError, match=r"it has none"):
        _check_claim(Claim("X2", "s", "src", per_profile, [CHECK], [], card=CARD, map=good), experiments)


def test_a_map_axis_name_for_an_axis_its_experiment_does_not_have_is_refused_before_any_run(tmp_path, mnist_dir):
    from sparsebench.claims.catalogue import load_catalogue
    from sparsebench.claims.plan import plan
    from sparsebench.errors import ConfigError

    k4 = load_catalogue()["K4"]
    assert k4.map.axis_names == {"train.epochs": "epochs a task", "dataset.train_subset": "images a task"}
    typo = replace(k4, map=replace(k4.map, axis_names={"train.epoch": "epochs a task"}))
    with pytest.raises(ConfigError) as error:
        plan([typo], "map", [f"dataset.root={mnist_dir}", f"results_dir={tmp_path}"])
    assert "claims/K4.map.axis_names=['train.epoch'] is not allowed: must name settings of map_continual_mlp (" \
        in str(error.value)
    assert "train.epochs" in str(error.value)
    # A grid of the user's own without the axes K4's card names (a width axis alone) plans: the names go unused.
    (tmp_path / "mine" / "map_axes").mkdir(parents=True)
    (tmp_path / "mine" / "map_axes" / "narrow.yaml").write_text(
        "mlp: {model.hidden: [[128, 128]]}\ncontinual: {model.hidden: [[128, 128], [2048, 2048]]}\n")
    narrow = plan([k4], "map", [f"dataset.root={mnist_dir}", f"results_dir={tmp_path}", "map_axes=narrow",
                                f"hydra.searchpath=[file://{tmp_path / 'mine'}]"])
    assert narrow.axes["map_continual_mlp"][0] == {"model.hidden": [[128, 128], [2048, 2048]]}


def test_a_mapped_claims_own_figure_draws_the_maps_centre_cell_alone(tmp_path):
    """Curves of every cell at once are dozens of groups and their pooled A − B no comparison the claim
    makes: under the map profile the claim's figure gets the centre cell's runs; under another, all of them."""
    from sparsebench.claims import evaluate as evaluating

    drawn = []
    evaluating.FIGURES.add("curves", lambda rows, out, **_: drawn.append(rows) or [])
    try:
        df, _ = regime_dependent_records()
        # Each arm's tuned learning rate: 0.1 at the centre, the dropout arm's 0.2 in the wide cell.
        wide_dropout = df[HIDDEN].map(lambda h: list(h) == [1024, 1024]) & (df["regularizer.name"] == "dropout")
        df["train.lr"] = np.where(wide_dropout, 0.2, 0.1)
        claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK], ["test/accuracy"],
                      card=CARD, map=RegimeMap(EXPERIMENT), figure="curves")
        evaluate(claim, df, tmp_path, {}, "map", axes={EXPERIMENT: (AXES, CENTER)})
        evaluate(claim, df, tmp_path, {}, "standard", axes={EXPERIMENT: (AXES, CENTER)})
    finally:
        evaluating.FIGURES.remove("curves")
    centre = df[df[HIDDEN].map(lambda h: list(h) == [256, 256]) & df[SUBSET].isna()]
    assert len(drawn[0]) == len(centre) == 10 and drawn[0][HIDDEN].map(tuple).unique().tolist() == [(256, 256)]
    assert len(drawn[1]) == len(df)
    # Its groups are named by the regularizer and by what the arms chose, which differs across the cells (the
    # learning rate), not by the width and images every group in the cell shares; across the cells the
    # width tells the groups apart.
    assert sorted(drawn[0]["label"].unique()) == ["regularizer=dropout lr=0.1", "regularizer=none lr=0.1"]
    assert all("hidden" in label for label in drawn[1]["label"].unique())


# A precondition of CHECK (a manipulation check): dropout's runs train to a higher loss than the dense
# net's, i.e. the dropout arm regularizes at all. Its values barely vary, so that "no difference" is
# shown to be negligible (TOST inside ±LOSS_BAND) rather than left undecided.
LOSS_BAND = 0.05
ACTS = Check("dropout raises the training loss", "train/loss", {"regularizer.name": "dropout"},
             {"regularizer.name": "none"}, smallest_effect=LOSS_BAND, smallest_effect_reason="fixture",
             precondition=True)


def with_training_loss(df: pd.DataFrame, acting: dict[int, bool]) -> pd.DataFrame:
    """``df`` with a training loss: in each cell of ``acting`` (number -> whether dropout acts there), the
    dropout runs' loss 0.5 above the dense net's where it acts, the same where it does not."""
    out = df.copy()
    out["train/loss"] = 0.2 + 0.001 * np.resize(NOISE_A, len(out))
    for number, acts in acting.items():
        cell = out["group"] == f"dropout-{number}"
        out.loc[cell, "train/loss"] += 0.5 if acts else 0.0
    return out


def test_a_cell_whose_precondition_is_not_supported_is_undecided_whichever_way_its_interval_falls(tmp_path):
    # Every cell ran: the center negligible, narrow opposite, wide and 6k supported. Dropout acts (its
    # training loss is higher) everywhere but at width 1024 and at 6k images.
    df, values = frame({0: (CENTER_CELL, 0.0), 1: (NARROW, -1.0), 2: (WIDE, 1.0), 3: (FEW_IMAGES, 1.0)})
    df = with_training_loss(df, {0: True, 1: True, 2: False, 3: False})
    cells = map_cells(AXES, CENTER)
    # Without the precondition the map holds in two cells and flips in one: regime-dependent.
    assert judge_map(df, CHECK, cells).verdict == REGIME_DEPENDENT
    v = judge_map(df, CHECK, cells, preconditions=[ACTS])
    by_cell = [cell for _, cell in v.cells]
    assert [cell.verdict for cell in by_cell] == ["refuted", "refuted", "inconclusive", "inconclusive"]
    for cell in by_cell[2:]:
        assert cell.undecided_as == "precondition" and cell.before_precondition == "supported"
        assert cell.unmet == "dropout raises the training loss: refuted (negligible)"
        assert math.isnan(cell.p_value)
    # The two undecided cells enter Holm's family with p = 1 (m = 4), the decided ones with their own p.
    a, b = values[0]
    p_center = max(welch_p(a, b, "greater", +BAND), welch_p(a, b, "less", -BAND))
    p_narrow = 2 * welch_p(*values[1], "less")
    q_center, q_narrow, _, _ = holm_by_hand([p_center, p_narrow, 1.0, 1.0])
    assert [by_cell[0].p_holm, by_cell[1].p_holm] == pytest.approx([q_center, q_narrow], rel=1e-6)
    # Nothing supports it where the arm acts, and not every cell refutes it: inconclusive.
    assert v.verdict == "inconclusive"
    rows = regime_rows(v, MapLayout(AXES, CENTER))
    wide = next(row for row in rows if row[1] == "1024")
    assert wide[3] == ("undecided (a precondition not met: dropout raises the training loss: refuted (negligible); "
                       "supported on its own)")
    # The same precondition met in every cell changes nothing.
    acting = with_training_loss(df, dict.fromkeys(range(4), True))
    assert judge_map(acting, CHECK, cells, preconditions=[ACTS]) == judge_map(acting, CHECK, cells)


def test_a_claims_precondition_not_met_leaves_it_undecided_in_the_report(tmp_path):
    # One setting (no map): dropout clearly better on test accuracy, but its training loss no higher.
    df, values = frame({0: (CENTER_CELL, 1.0)})
    claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK, ACTS],
                  ["test/accuracy", "train/loss"], card=CARD)
    out = tmp_path / "report"
    unmet = evaluate(claim, with_training_loss(df, {0: False}), out / "figures", {}, "standard")
    met = evaluate(claim, with_training_loss(df, {0: True}), out / "figures", {}, "standard")
    assert met.verdict == "supported" and met.checks[1].verdict == "supported"
    assert unmet.verdict == "inconclusive" and unmet.checks[0].undecided_as == "precondition"
    # Its interval is the same as where the precondition holds; only the decision is withheld.
    assert unmet.checks[0].effect == pytest.approx(values[0][0].mean() - values[0][1].mean())
    assert (unmet.checks[0].low, unmet.checks[0].high) == (met.checks[0].low, met.checks[0].high)
    # Undecided, it counts with p = 1 in Holm's correction across the report and stays undecided.
    [corrected] = correct_for_multiplicity([unmet])
    assert corrected.verdict == "inconclusive" and math.isnan(corrected.checks[0].p_holm)
    assert verdict_text(corrected) == "inconclusive (a precondition not met)"
    write_report([corrected], out, "Profile standard, fixture.")
    page = (out / "CLAIMS.md").read_text()
    assert ("**inconclusive (a precondition not met)**" in page
            and "a precondition not met: dropout raises the training loss: refuted (negligible), so the arms compared "
                "are not doing what the claim speaks of; on its own the interval reads supported" in page)


def test_the_catalogue_refuses_a_primary_check_marked_as_its_own_precondition():
    claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [replace(CHECK, precondition=True)],
                  ["test/accuracy"], card=CARD)
    with pytest.raises(ConfigError, match=r"claims/X1.checks\[1\].precondition.*cannot be its own precondition"):
        _check_claim(claim, _experiments())


def test_a_maps_preconditions_gate_its_cells_in_the_report_and_the_budget_line_says_what_withdrew_it(tmp_path):
    # The map of the test above, through evaluate: the precondition's own row is judged across the cells too.
    df, _ = frame({0: (CENTER_CELL, 0.0), 1: (NARROW, -1.0), 2: (WIDE, 1.0), 3: (FEW_IMAGES, 1.0)})
    df = with_training_loss(df, {0: True, 1: True, 2: False, 3: False})
    df = df.assign(**{"early_stop/test/accuracy": df["test/accuracy"]})
    claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK, ACTS],
                  ["test/accuracy", "train/loss"], card=CARD, map=RegimeMap(EXPERIMENT))
    result = evaluate(claim, df, tmp_path / "figures", {}, "map", axes={EXPERIMENT: (AXES, CENTER)})
    primary, acts = result.checks
    assert [cell.undecided_as for _, cell in primary.cells] == ["", "", "precondition", "precondition"]
    assert result.verdict == "inconclusive"
    # Dropout acts in two cells and not in two: its own row is regime-dependent across the same cells.
    assert acts.verdict == REGIME_DEPENDENT
    assert [cell.verdict for _, cell in acts.cells] == ["supported", "supported", "refuted", "refuted"]
    # The budget check is not gated: at the early-stopping epoch (the same accuracies) the map reads as its
    # cells' own intervals do, regime-dependent.
    assert result.early_stop.verdict == REGIME_DEPENDENT
    # One setting, no map: the page says which rule withdrew the verdict the early-stopping epoch repeats.
    one, _ = frame({0: (CENTER_CELL, 1.0)})
    one = with_training_loss(one, {0: False}).assign(**{"early_stop/test/accuracy": lambda d: d["test/accuracy"]})
    plain = replace(claim, map=None)
    write_report(correct_for_multiplicity([evaluate(plain, one, tmp_path / "f", {}, "standard")]), tmp_path / "one",
                 "Profile standard, fixture.")
    page = (tmp_path / "one" / "CLAIMS.md").read_text()
    assert ("at the early-stopping (best-validation) epoch the same as its own interval gives before its "
            "precondition withdrew it (supported" in page)
    assert "the same verdict at the early-stopping" not in page


def test_a_precondition_the_profile_runs_no_run_of_is_not_met():
    # The precondition compares L1 with L2, and the profile plans neither: its row reads "not run", and the
    # primary check, decided on its own, is withheld: nothing shows the arms do what the claim speaks of.
    df, _ = frame({0: (CENTER_CELL, 1.0)})
    df = with_training_loss(df, {0: True})
    planned = df[["experiment", "regularizer.name", "seed", HIDDEN, SUBSET]]
    untested = replace(ACTS, a={"regularizer.name": "l1"}, b={"regularizer.name": "l2"})
    claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK, untested],
                  ["test/accuracy"], card=CARD)
    result = evaluate(claim, df, None, {}, "standard", planned=planned)
    assert result.checks[1].verdict == "not run"
    assert result.verdict == "inconclusive" and result.checks[0].before_precondition == "supported"
    assert result.checks[0].unmet == "dropout raises the training loss: not run"


@pytest.mark.parametrize("change, fix", [(dict(setting="shared"), "setting 'tuned' as the primary's"),
                                         (dict(matched=["train.lr"]), "no matched"),
                                         (dict(grid=[{"regularizer.p": 0.2}]), "no grid")])
def test_the_catalogue_refuses_a_precondition_read_on_other_runs_than_the_primary_checks(change, fix):
    claim = Claim("X1", "Dropout generalises better.", "fixture", [EXPERIMENT], [CHECK, replace(ACTS, **change)],
                  ["test/accuracy"], card=CARD)
    with pytest.raises(ConfigError, match=r"claims/X1.checks\[2\].precondition") as error:
        _check_claim(claim, _experiments())
    assert fix in str(error.value)


def test_a_cell_withheld_by_a_precondition_is_named_so_in_words_and_in_the_figure(tmp_path):
    df, _ = frame({0: (CENTER_CELL, 0.0), 1: (NARROW, -1.0), 2: (WIDE, 1.0), 3: (FEW_IMAGES, 1.0)})
    df = with_training_loss(df, {0: True, 1: True, 2: False, 3: False})
    v = judge_map(df, CHECK, map_cells(AXES, CENTER), preconditions=[ACTS])
    assert where_text(v) == ("flips (opposite) at width 128; negligible at the center (width 256, training images "
                             "all); undecided (a precondition not met) at width 1024 and at training images 6k; home "
                             "regime: not on the map")
    [figure] = [p for p in plot_regime_map(v, MapLayout(AXES, CENTER), tmp_path, name="withheld") if p.suffix == ".png"]
    assert figure.exists()


def test_a_maps_centre_labels_name_what_each_arm_chose_across_cells_not_what_differs_between_experiments():
    """Two experiments of one claim's map: the first measures pruning at some fractions, the second at none
    (a measurement setting, the same in every cell of each); the first's dropout arm chose lr 0.1 at the
    centre and 0.2 in the wide cell. The centre's labels name the learning rate, not the fractions."""
    from sparsebench.claims.evaluate import chosen_across_cells
    from sparsebench.report.aggregate import varying_columns

    rows = []
    for experiment, fractions in (("first", "[0.5,0.9]"), ("second", "[]")):
        for width, lr in (("[256,256]", 0.1), ("[1024,1024]", 0.2 if experiment == "first" else 0.1)):
            for seed in (0, 1):
                rows.append({"experiment": experiment, "regularizer.name": "dropout", "train.lr": lr,
                             "prune.fractions": fractions, "model.hidden": width, "seed": seed,
                             "group": f"{experiment}-{width}"})
    df = pd.DataFrame(rows)
    assert chosen_across_cells(df, axes=["model.hidden"]) == ["train.lr"]
    # Across both experiments at once the fractions differ too: what the labels named before.
    assert "prune.fractions" in varying_columns(df, exclude=["model.hidden"])
