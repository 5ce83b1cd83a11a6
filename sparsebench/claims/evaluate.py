"""A claim's verdict from the records: its checks through ``claims.checks.judge``, its table, its figure;
a protocol's reproduction table beside the paper's.

A claim's verdict is its primary check's (``Claim.primary_index``); its other checks are reported
beside it and decide nothing, but for its preconditions (``Check.precondition``): where one is not
supported, the primary check is undecided (on a regime map, in each cell where one is not). A protocol (a paper's table) has no checks and no verdict.

Multiplicity: a report tests many claims at once. Each claim's primary check (``Claim.primary_index``:
the check marked ``primary``, else the first) is one hypothesis of the report's family, and
``correct_for_multiplicity`` adjusts their p-values by Holm's method across every claim of the report:
a primary check that its interval decided (supported, opposite, negligible) but whose adjusted p is
at least 0.05 becomes inconclusive ("not after Holm's correction"), and its claim's verdict is combined
again. Undecided primary checks count in the family with p = 1 (they reject nothing, but they were
tested); ``identical`` checks are exact comparisons without a p-value and stay out of it, as do checks the
profile plans no run for (not run, not tested).

Every check counts the runs it rests on against the runs the profile plans for each side (a side with
fewer says how many are missing: failed, busy in another process, or not run). Whether the verdict
depends on the training budget: the primary check is judged again at the early-stopping epoch
(``claims.budget``), and the page says whether it changes there.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsebench.claims.budget import at_early_stop
from sparsebench.claims.catalogue import Claim, Table
from sparsebench.claims.checks import (
    ALPHA,
    HOLM,
    MIXED_EXPERIMENTS,
    NO_COLUMN,
    NO_SELECTOR_COLUMN,
    NOT_MEASURED,
    NOT_PLANNED,
    Problem,
    Verdict,
    outcome,
    spread_of,
    unless_preconditions,
)
from sparsebench.claims.grid import judge_check
from sparsebench.claims.mapfigure import plot_regime_map
from sparsebench.claims.regime import MapLayout, judge_map, map_cells
from sparsebench.claims.tuning import RUNNER_UP, SHARED, TUNED, matched_setting
from sparsebench.report.aggregate import make_labels, select, varying_columns
from sparsebench.report.names import is_known_metric
from sparsebench.report.plots import FIGURES
from sparsebench.report.stats import family_p, holm
from sparsebench.report.tables import format_cell, summarize

NOT_RUN = "not run"
LEARNING_RATE = "train.lr"  # the setting every tuned arm chooses (conf/tune)


@dataclass
class CheckNotes:
    """What a check's verdict row must say beside its interval (in words: ``wording.check_notes_text``)."""

    planned_a: int = 0  # runs the profile plans for each side
    planned_b: int = 0


@dataclass
class ReproductionRow:
    label: str
    cells: list[dict]  # per column: published, spread, ours (mean, std, n), honest (mean, std, n), z


@dataclass
class ClaimResult:
    claim: Claim
    verdict: str  # supported | refuted | regime-dependent | inconclusive | not run | protocol
    checks: list[Verdict] = field(default_factory=list)
    runs: int = 0
    table: pd.DataFrame | None = None  # one row per group, one formatted column per metric
    figures: list[Path] = field(default_factory=list)
    reason: str = ""  # why a claim was not run
    outside_profile: bool = False  # not run because the profile does not hold it (the page lists it; no figure row)
    notes: list[CheckNotes] = field(default_factory=list)  # one per check
    experiments: list[str] = field(default_factory=list)  # the experiments of the profile it ran under
    reproduction: list[ReproductionRow] = field(default_factory=list)  # protocols: the rows of the paper's table
    planned: int = 0  # protocols: the runs the profile plans
    short: dict[str, list[int]] = field(default_factory=dict)  # protocols: row of the paper's table -> seeds short of records
    # The primary check judged at the early-stopping epoch (None: not measured there).
    early_stop: Verdict | None = None
    # The map profile: the axes and center its primary check was judged across (None: not judged on a map).
    regime: MapLayout | None = None

    @property
    def incomplete(self) -> bool:
        """Whether a check, or a protocol's table, rests on fewer runs than the profile plans for it."""
        return bool(self.short) or any(check.n_a < note.planned_a or check.n_b < note.planned_b
                   for note, check in zip(self.notes, self.checks))


def held(results: list[ClaimResult]) -> list[ClaimResult]:
    """The results of the claims the profile holds: those the console, the pages and the figure give a row."""
    return [result for result in results if not result.outside_profile]


def decisive_check(result: ClaimResult) -> Verdict | None:
    """The check that decides the claim: its primary check."""
    return result.checks[result.claim.primary_index] if result.checks else None


def matched_reading(result: ClaimResult) -> Verdict | None:
    """The primary check read with B at A's chosen values (its ``matched`` row), where the report has it."""
    primary = result.claim.checks[result.claim.primary_index] if result.claim.checks else None
    if primary is None or not primary.matched or not result.checks:
        return None
    setting = matched_setting(primary.a, primary.b, primary.matched)
    return next((v for c, v in zip(result.claim.checks, result.checks) if c.setting == setting), None)


def runner_up_reading(result: ClaimResult) -> Verdict | None:
    """The primary check read with each near-tied arm at its runner-up (``with_runner_up_row``), where the
    report has it."""
    return next((v for c, v in zip(result.claim.checks, result.checks) if c.setting == RUNNER_UP), None)


def decisive_notes(result: ClaimResult) -> CheckNotes | None:
    check = decisive_check(result)
    return result.notes[result.checks.index(check)] if check is not None and result.notes else None


def claim_verdict(claim: Claim, checks: list[Verdict]) -> str:
    """The claim's verdict: its primary check's."""
    return checks[claim.primary_index].verdict if checks else "inconclusive"


def in_family(check: Verdict) -> float:
    """A primary check's p as Holm's correction reads it (``stats.family_p``); 1 when undecided. A "can"
    check's p is already its grid's adjusted one, a regime map's its cells' (``claims.regime``), on the same
    scale."""
    if not math.isfinite(check.p_value):
        return 1.0
    one_sided = check.refuted_as != "negligible" and check.test != "equivalent" and not check.cells
    return family_p(check.p_value, one_sided)


def correct_for_multiplicity(results: list[ClaimResult]) -> list[ClaimResult]:
    """``results`` with Holm's correction applied across the primary checks of all of them (see the
    module docstring): each primary check carries its adjusted p, and one that it undoes is inconclusive
    (``HOLM``) with the outcome it had in ``before_holm``; the claims' verdicts combined again."""
    family = [(r, result.claim.primary_index) for r, result in enumerate(results) if result.claim.kind == "claim"
              and result.claim.primary_index < len(result.checks)
              and result.checks[result.claim.primary_index].test != "identical"
              and not result.checks[result.claim.primary_index].not_run_here]
    if not family:
        return list(results)
    p = [in_family(results[r].checks[number]) for r, number in family]
    adjusted = holm(p)
    out = list(results)
    for (r, number), p_holm in zip(family, adjusted):
        checks = list(out[r].checks)
        check = checks[number]
        changes = dict(primary=True, p_holm=float(p_holm) if math.isfinite(check.p_value) else math.nan)
        if check.verdict != "inconclusive" and p_holm >= ALPHA:
            changes |= dict(verdict="inconclusive", undecided_as=HOLM, refuted_as="",
                            before_holm=outcome(check))
        checks[number] = replace(check, **changes)
        verdict = out[r].verdict if out[r].verdict == "protocol" else claim_verdict(out[r].claim, checks)
        out[r] = replace(out[r], checks=checks, verdict=verdict)
    return out


def with_map_figures(results: list[ClaimResult], figures_dir: Path) -> list[ClaimResult]:
    """``results`` with each regime map's figure first among its claim's figures, drawn from its primary check
    as Holm's correction across the report left it (``correct_for_multiplicity``), so that the figure's verdict
    is the report's."""
    out = []
    for result in results:
        if result.regime is not None and result.claim.primary_index < len(result.checks):
            drawn = plot_regime_map(result.checks[result.claim.primary_index], result.regime, figures_dir,
                                    name=f"{result.claim.id}_regime_map", title=result.claim.id)
            result = replace(result, figures=[*drawn, *result.figures])
        out.append(result)
    return out


def labelled(rows: pd.DataFrame, claim: Claim, include: Collection[str] = ()) -> pd.DataFrame:
    """``rows`` with the label of each run's group: what varies between the groups these rows hold, and
    the columns ``include`` names."""
    return rows.assign(label=claim_labels(rows, include) if claim.table is None else paper_labels(claim.table, rows))


def chosen_across_cells(rows: pd.DataFrame, axes: Collection[str]) -> list[str]:
    """The settings that vary across a map's cells within an experiment, the map's own axes left out: what
    each arm chose in its cell (its learning rate, dropout's p). A setting that differs only between
    experiments (the pruning fractions one of them measures) names no choice."""
    columns: list[str] = []
    for _, members in rows.groupby("experiment", sort=False):
        columns += [c for c in varying_columns(members, exclude=axes) if c not in columns]
    return columns


def claim_labels(rows: pd.DataFrame, include: Collection[str] = ()) -> pd.Series:
    """Readable group labels: what varies between the groups (and the columns ``include`` names); for runs
    of several experiments, the experiment's name followed by what varies within it (its settings differ in
    many keys at once)."""
    if rows["experiment"].nunique() < 2:
        return make_labels(rows, include=include)
    # Each arm's learning rate, where the arms' differ, is named in every experiment's labels, even one whose
    # own groups share it (K4's two k-winners arms both chose 5e-4, which the other arms did not).
    include = [*include, *(c for c in varying_columns(rows) if c == LEARNING_RATE and c not in include)]
    labels = pd.Series(index=rows.index, dtype=object)
    for experiment, members in rows.groupby("experiment", sort=False):
        inner = make_labels(members, include=include) if members["group"].nunique() > 1 or include \
            else pd.Series("", index=members.index)
        labels[members.index] = [f"{experiment} {label}".strip() for label in inner]
    return labels


def paper_labels(table: Table, rows: pd.DataFrame) -> pd.Series:
    """A protocol's groups named as the paper's table names its rows ("Sparse CNN-2 DSW"), so that its figure
    and table say the same; a group no row selects keeps its label from ``claim_labels``."""
    labels = claim_labels(rows)
    for row in table.rows:
        try:
            chosen = select(rows, row.runs)
        except KeyError:
            continue
        labels[chosen.index] = row.label
    return labels


def compared(rows: pd.DataFrame, claim: Claim) -> pd.DataFrame:
    """The runs of ``rows`` that some check of ``claim`` compares (either side; a "can" check's A in each
    setting of its grid): the groups its table shows. An experiment a claim shares with others runs arms it
    does not read (D1's dropout_rates runs p 0.6 and 0.8 for D3); its figures keep them as context. A claim
    without checks (a paper's protocol), or whose checks select none of these runs, keeps them all."""
    keep = np.zeros(len(rows), dtype=bool)
    for check in claim.checks:
        for where in [*check.a_settings(), *([check.b] if check.b is not None and check.against is None else [])]:
            try:
                keep |= rows.index.isin(select(rows, where).index)
            except KeyError:  # a side selecting on a column these runs lack selects none of them
                continue
    return rows[keep] if keep.any() else rows


def claim_table(rows: pd.DataFrame, metrics: list[str]) -> pd.DataFrame | None:
    """Groups by metrics, each cell ``mean ± half-width of the 95% interval (seeds)``."""
    present = [m for m in metrics if m in rows.columns]
    summary = summarize(rows, present)
    if summary.empty:
        return None
    summary["cell"] = [format_cell(m, h, n) for m, h, n in zip(summary["mean"], summary["half_width"], summary["n"])]
    table = summary.pivot(index="label", columns="metric", values="cell")
    order = list(dict.fromkeys(summary["label"]))
    return table.reindex(index=order, columns=[m for m in present if m in table.columns]).fillna("–")


def _planned_count(planned: pd.DataFrame | None, where: dict | None) -> int:
    if planned is None or where is None or planned.empty:
        return 0
    try:
        return len(select(planned, where))
    except KeyError:
        return 0


def _check_notes(check, verdict: Verdict, planned: pd.DataFrame | None) -> CheckNotes:
    same_runs = check.b is None and check.against is None
    # A grid check: the setting its verdict comes from; a map: the deciding cell, on both sides.
    a = {**check.a, **verdict.a}
    b = a if same_runs else {**check.b, **verdict.b} if check.b is not None else None
    return CheckNotes(planned_a=_planned_count(planned, a),
                      planned_b=_planned_count(planned, b) if check.against is None else 0)


def unless_not_run_here(check, verdict: Verdict, planned: pd.DataFrame | None, rows: pd.DataFrame,
                        settled: bool = True) -> Verdict:
    """``verdict``, or "not run" where this profile cannot make the comparison: it plans no run of a side
    the check compares (``NOT_PLANNED``: a check of another profile; a map plans no secondary setting of
    its centre, nor L1 for D2), or every side's runs are in ``rows`` but
    none records the metric, a known one (``NOT_MEASURED``: a measurement the profile's experiments leave
    off). Either way it is not undecided here, and no run is missing. Kept as it is while the plan is not
    final (``settled`` false: an arm still tuning has no final runs planned yet), and where a selector or
    metric names a column that neither the records, the plan nor the metric names have (a mistake to show,
    not a check of another profile)."""
    two_sided = check.b is not None and check.against is None
    if (planned is None or planned.empty or not settled
            or any(p.kind in (NO_SELECTOR_COLUMN, MIXED_EXPERIMENTS) for p in verdict.problems)):
        return verdict
    # Each side: its name, its selectors (one per grid setting), the runs the verdict found on it.
    sides = [("A", check.a_settings(), verdict.n_a)]
    if two_sided:
        sides.append(("B", [dict(check.b)], verdict.n_b))
    if any(key not in planned.columns for _, each, _ in sides for where in each for key in where):
        return verdict
    unplanned = [(side, _grid_union(each)) for side, each, n in sides
                 if not n and not any(_planned_count(planned, where) for where in each)]
    if unplanned:
        problems = tuple(Problem(NOT_PLANNED, verdict.metric, side, where) for side, where in unplanned)
    else:
        missing = [p.columns[0] for p in verdict.problems if p.kind == NO_COLUMN]
        if not missing or not all(is_known_metric(column) for column in missing) or not all(
                _planned_count(rows, where) for _, each, _ in sides for where in each):
            return verdict
        problems = (Problem(NOT_MEASURED, verdict.metric, columns=tuple(missing)),)
    return replace(verdict, verdict=NOT_RUN, refuted_as="", undecided_as="", seeds_needed=None, problems=problems)


def _grid_union(settings: list[dict]) -> dict:
    """One selector for a side's settings (a "can" check's grid merged into A): each key with its one value,
    or the list of the values it takes across them."""
    keys = dict.fromkeys(key for where in settings for key in where)
    values = {key: [] for key in keys}
    for where in settings:
        for key in keys:
            if where.get(key) not in values[key]:  # values may be lists (percent_on): no set
                values[key].append(where.get(key))
    return {key: each[0] if len(each) == 1 else each for key, each in values.items()}


def contrasts(claim: Claim) -> list[tuple[dict, dict]]:
    """The distinct (A, B) selector pairs of the claim's checks that compare two sets of runs: what its
    figure shows as differences (checks against a constant or another metric of the same runs have none)."""
    pairs = [(a, dict(c.b)) for c in claim.checks if c.b is not None and c.against is None
             for a in c.a_settings()]
    return [pair for number, pair in enumerate(pairs) if pair not in pairs[:number]]


def reproduce(table: Table, rows: pd.DataFrame) -> list[ReproductionRow]:
    """Each row of a paper's table with ours beside it: our mean and standard deviation over seeds (the
    paper's kind of spread), the difference in units of the paper's spread, and the honest figure."""
    out = []
    for row in table.rows:
        try:
            runs = select(rows, row.runs)
        except KeyError:
            runs = rows.iloc[0:0]
        cells = []
        for column, published in zip(table.columns, row.published):
            mean, spread = (published + [None, None])[:2] if published else (None, None)
            ours = spread_of(runs, column.metric, column.error)
            honest = spread_of(runs, column.honest, column.error) if column.honest else None
            z = (ours["mean"] - mean) / spread if spread and mean is not None and ours["n"] else math.nan
            cells.append({"published": mean, "spread": spread, "ours": ours, "honest": honest, "z": z,
                          "disagrees": bool(math.isfinite(z) and abs(z) > 2)})
        out.append(ReproductionRow(row.label, cells))
    return out


def map_layout(claim: Claim, profile: str, axes: dict[str, tuple[dict, dict]] | None) -> MapLayout | None:
    """The map the claim's primary check is judged across: under the map profile, for a claim with a
    ``map`` whose experiment's (axes, center) are given; else None."""
    if profile != "map" or claim.map is None or not axes or claim.map.experiment not in axes:
        return None
    experiment_axes, center = axes[claim.map.experiment]
    return MapLayout(dict(experiment_axes), dict(center), claim.map.home, claim.map.home_note, claim.map.grid,
                     dict(claim.map.axis_names))


def evaluate(claim: Claim, df: pd.DataFrame, figures_dir: Path, unavailable: dict[str, str], profile: str,
             planned: pd.DataFrame | None = None, axes: dict[str, tuple[dict, dict]] | None = None,
             unsettled: Collection[str] = ()) -> ClaimResult:
    """The claim judged on ``df`` (the records of the runs planned for it; any experiment's) under
    ``profile``; ``planned``: one row per planned run (its flattened config, ``experiment``, ``seed``);
    ``axes``: experiment -> (its map axes, its own value of each axis), for the map profile: a claim with a
    ``map`` has its primary check judged in each cell (``claims.regime``) and the map's verdict;
    ``unsettled``: experiments whose plan is not final yet (arms still tuning)."""
    experiments = claim.experiments_for(profile)
    missing = [e for e in experiments if e in unavailable]
    if missing:
        return ClaimResult(claim, NOT_RUN, reason="; ".join(f"{e}: {unavailable[e]}" for e in missing),
                           experiments=experiments)
    rows = df[df["experiment"].isin(experiments)] if "experiment" in df.columns else df.iloc[0:0]
    if rows.empty:
        return ClaimResult(claim, NOT_RUN, reason="no completed run of " + ", ".join(experiments),
                           experiments=experiments)
    planned = planned[planned["experiment"].isin(experiments)] if planned is not None and not planned.empty else planned
    claim = with_runner_up_row(with_shared_row(with_matched_rows(claim, planned), rows, planned), planned)
    rows = labelled(rows, claim)
    layout = map_layout(claim, profile, axes) if claim.kind == "claim" else None
    preconditions = [c for c in claim.checks if c.precondition]
    judged_by = judge_check
    if layout is not None:
        cells = map_cells(layout.axes, layout.center)

        def judged_by(rows_, check_, preconditions_=()):
            narrowed = [setting for setting in check_.grid or () if setting in (layout.grid or ())]
            if narrowed:
                check_ = replace(check_, grid=narrowed)
            return judge_map(rows_, check_, cells, layout.home, preconditions_)
    # Every check is judged over a regime map's cells where there is one, the primary with its
    # preconditions cell by cell: a secondary pooled over the cells would mix regimes into one comparison.
    # A check that selects on an axis of the map itself (one width) is judged where it selects, once.

    def judged(number: int, check_) -> Verdict:
        if layout is not None and set(layout.axes) & {*check_.a, *(check_.b or {})}:
            return judge_check(under(rows, check_.setting), check_)
        if layout is not None and number == claim.primary_index:
            return judged_by(under(rows, check_.setting), check_, preconditions)
        return judged_by(under(rows, check_.setting), check_)
    checks = [judged(number, c) for number, c in enumerate(claim.checks)]
    settled = not set(experiments) & set(unsettled)
    checks = [unless_not_run_here(c, v, under(planned, c.setting), under(rows, c.setting), settled)
              for c, v in zip(claim.checks, checks)]
    # A check not run here has no runs missing.
    notes = [CheckNotes() if v.not_run_here else _check_notes(c, v, under(planned, c.setting))
             for c, v in zip(claim.checks, checks)]
    present = _experiments_in(rows, planned)
    checks = [as_shown(v, present) for v in checks]
    if preconditions and layout is None:  # a precondition the profile does not run is not met either
        checks[claim.primary_index] = unless_preconditions(
            checks[claim.primary_index], [(c.label, v) for c, v in zip(claim.checks, checks) if c.precondition])
    verdict = "protocol" if claim.kind == "protocol" else claim_verdict(claim, checks)
    primary = claim.checks[claim.primary_index] if claim.checks else None
    early_stop = at_early_stop(primary, under(rows, primary.setting), judged_by) \
        if claim.kind == "claim" and not checks[claim.primary_index].not_run_here else None
    early_stop = as_shown(early_stop, present) if early_stop is not None else None
    rows = under(rows, TUNED)  # the table and figures show the runs the verdict reads
    figures = []  # a regime map's figure comes after Holm's correction across the report (with_map_figures)
    if claim.figure:
        # Figures of curves draw the checks' A − B under them. The claim's labels name its groups across
        # experiments: the figure keeps them. A map's draw its centre cell (the standard profile's setting):
        # every cell at once is dozens of groups, and their pooled difference no comparison the claim makes.
        # Labelled again: across the cells a label names the width, images and epochs; in one cell they are
        # the same for every group, and said once, in the page's text. What the arms chose (their learning
        # rate, dropout's p) varies across the cells and is still named.
        drawn = rows if layout is None else labelled(
            select(rows, layout.center), claim, include=chosen_across_cells(rows, layout.axes))
        figures += FIGURES[claim.figure](drawn, figures_dir, name=f"{claim.id}_{claim.figure}",
                                        contrasts=contrasts(claim), keep_labels=True)
    reproduction = reproduce(claim.table, rows) if claim.table is not None else []
    # A protocol has no check to carry the count of its runs, so its result carries the shortfall itself.
    planned_count, short = table_shortfall(claim.table, rows, planned)
    return ClaimResult(claim, verdict, checks, len(rows), claim_table(compared(rows, claim), claim.metrics), figures,
                       notes=notes, experiments=experiments, reproduction=reproduction, planned=planned_count,
                       short=short, early_stop=early_stop, regime=layout)


def _experiments_in(rows: pd.DataFrame, planned: pd.DataFrame | None) -> set[str]:
    """The experiments this profile holds runs of for the claim, recorded or planned."""
    names = set(rows["experiment"]) if "experiment" in rows.columns else set()
    if planned is not None and "experiment" in planned.columns:
        names |= set(planned["experiment"])
    return names


def shown_selector(where: Mapping[str, Any], present: Collection[str]) -> dict[str, Any]:
    """``where`` as a report shows it in a profile holding runs of the experiments ``present``: a card names
    every profile's experiment for a side (``experiment: [mlp_regularizers, map_mlp_regularizers]``), of
    which a page names those this profile has (one: by itself). It selects the same runs here, since the
    others have none. Where the profile has none of them (a side not planned here) the card's list stays,
    so that the page says what was looked for."""
    names = where.get("experiment")
    if not isinstance(names, (list, tuple)):
        return dict(where)
    kept = [name for name in names if name in present]
    if not kept:
        return dict(where)
    return {**where, "experiment": kept[0] if len(kept) == 1 else kept}


def as_shown(verdict: Verdict, present: Collection[str]) -> Verdict:
    """``verdict`` with its sides' selectors, its problems' and its cells' as the page shows them
    (``shown_selector``); every number stays as judged."""
    return replace(
        verdict, a=shown_selector(verdict.a, present), b=shown_selector(verdict.b, present),
        problems=tuple(replace(p, where=shown_selector(p.where, present)) for p in verdict.problems),
        cells=tuple((setting, as_shown(cell, present)) for setting, cell in verdict.cells))


def under(rows: pd.DataFrame | None, setting: str) -> pd.DataFrame | None:
    """The rows a check of ``setting`` reads: of a tuned experiment, its runs under that setting (tuned arms,
    every arm at the shared setting, or a check's matched runs); of an experiment not tuned, all of its runs."""
    if rows is None or rows.empty or "setting" not in rows.columns:
        return rows
    return rows[rows["setting"].fillna("").isin([setting, ""])]


def with_matched_rows(claim: Claim, planned: pd.DataFrame | None) -> Claim:
    """``claim`` with each check that names ``matched`` settings read again with B at A's chosen values (a
    row beside it), where the plan has B's runs for it (a regime map's cells have none)."""
    if planned is None or planned.empty or "setting" not in planned.columns:
        return claim

    extra = []
    for check in claim.checks:
        setting = matched_setting(check.a, check.b, check.matched) if check.matched else None
        try:
            planned_b = setting is not None and not select(planned[planned["setting"] == setting], check.b).empty
        except KeyError:
            planned_b = False
        if planned_b:
            extra.append(replace(check, primary=False, matched=[], setting=setting, precondition=False,
                                 label=f"{check.label}, B run at A's chosen {', '.join(check.matched)} (matched)"))
    return replace(claim, checks=[*claim.checks, *extra]) if extra else claim


def with_shared_row(claim: Claim, rows: pd.DataFrame, planned: pd.DataFrame | None = None) -> Claim:
    """``claim`` with its primary check also read at the shared setting (a secondary row), where its runs
    come from a tuned experiment: tuned against tuned decides, the untuned comparison is shown beside it.
    Not where the plan (``planned``, when given) has no run at the shared setting, as a regime map's has
    not: the row would only say that nothing was run for it."""
    if claim.kind != "claim" or not claim.checks or "setting" not in rows.columns or not (rows["setting"] == TUNED).any():
        return claim
    if planned is not None and "setting" in planned.columns and not (planned["setting"] == SHARED).any():
        return claim
    primary = claim.checks[claim.primary_index]
    if primary.setting == SHARED:  # a check of the code or of speed, at one setting for both by design
        return claim
    shared = replace(primary, primary=False, setting=SHARED,
                     label=f"{primary.label}, every arm at the experiment's shared setting (untuned)")
    checks = list(claim.checks)
    checks[claim.primary_index] = replace(primary, label=f"{primary.label}, each arm tuned alike on validation")
    return replace(claim, checks=[*checks, shared])


def with_runner_up_row(claim: Claim, planned: pd.DataFrame | None) -> Claim:
    """``claim`` with its primary check also read with each near-tied arm at its runner-up (a secondary row,
    ``tuning.runner_up_runs``), where the plan has such runs on a side the check compares."""
    if claim.kind != "claim" or not claim.checks or planned is None or planned.empty or "setting" not in planned:
        return claim
    primary = claim.checks[claim.primary_index]
    try:
        # Runs planned at a runner-up and not as a final run: a near-tied arm's.
        moved = planned[(planned["setting"] == RUNNER_UP) & ~planned["settings"].map(lambda all_: TUNED in all_)]
        planned_here = any(not select(moved, side).empty for side in (primary.a, primary.b) if side is not None)
    except KeyError:  # a plan without the settings column, or a side names a column the plan lacks
        planned_here = False
    if primary.setting != TUNED or not planned_here:
        return claim
    row = replace(primary, primary=False, setting=RUNNER_UP,
                  label=f"{primary.label}, each near-tied arm at its runner-up (the point seed noise could have chosen)")
    return replace(claim, checks=[*claim.checks, row])


def table_shortfall(table: Table | None, rows: pd.DataFrame, planned: pd.DataFrame | None) -> tuple[int, dict]:
    """A paper table's planned runs and, per row, the seeds short of them (``seeds_short``), counted as the
    table reads them: the tuned runs (a run planned under several settings, such as a final run also read at
    the runner-ups, is one run); (0, {}) without a table or a plan."""
    runs = under(planned, TUNED)
    if table is None or runs is None or runs.empty:
        return 0, {}
    return len(runs), seeds_short(table, rows, runs)


def seeds_short(table: Table, rows: pd.DataFrame, planned: pd.DataFrame) -> dict[str, list[int]]:
    """Per row of the paper's table, the seeds that have fewer completed records than runs planned."""
    short: dict[str, list[int]] = {}
    for row in table.rows:
        wanted = _runs_per_seed(planned, row.runs)
        have = _runs_per_seed(rows, row.runs).reindex(wanted.index, fill_value=0)
        seeds = [int(seed) for seed in wanted.index[(have < wanted).to_numpy()]]
        if seeds:
            short[row.label] = seeds
    return short


def _runs_per_seed(frame: pd.DataFrame, where: dict) -> pd.Series:
    try:
        return select(frame, where).groupby("seed").size()
    except KeyError:  # a selector on a column these runs lack: none of them is the row's
        return pd.Series(dtype=int)
