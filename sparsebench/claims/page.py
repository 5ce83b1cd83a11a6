"""The claims report: CLAIMS.md, claims.html (figures inline) and claims.json, from claim results.

The report is built once as a content model (``Report``: header, summary rows, sections with their
checks, tables and figures, shortfall notes) and rendered from it by the Jinja2 templates in
``templates/`` (Markdown and HTML) and as JSON. ``write_report`` renders all three pages before it writes
any, and marks a complete report with ``manifest.json`` (every file of the report with its SHA-256),
written last; ``report_problems`` tells a complete report folder from one whose writer was interrupted.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from sparsebench.atomic import atomic_write_json, atomic_write_text
from sparsebench.claims.catalogue import Card
from sparsebench.claims.checks import HOLM, NOT_MEASURED, PRECONDITION, UNTRIED, Verdict
from sparsebench.claims.evaluate import (
    ClaimResult,
    decisive_check,
    decisive_notes,
    held,
    matched_reading,
    runner_up_reading,
)
from sparsebench.claims.regime import MapLayout, cell_axis, map_counts
from sparsebench.claims.tuning import TUNED, arm_of
from sparsebench.claims.tuning import table as tuning_table
from sparsebench.claims.wording import (
    HOLM_TEXT,
    PRECONDITION_TEXT,
    SMALL_TEXT,
    UNTRIED_TEXT,
    axis_name,
    axis_order,
    axis_value,
    budget_changes,
    cell_kind,
    check_notes_text,
    description,
    early_stop_text,
    grid_text,
    images_text,
    outcome,
    p_number,
    p_text,
    reads_alike,
    reason,
    shown_setting,
    undecided_text,
    where_text,
    without_runs,
)
from sparsebench.report.names import metric_label, metric_name
from sparsebench.report.numbers import bracket, number, signed
from sparsebench.report.plots import figure_title
from sparsebench.report.stats import MAX_SEEDS, SMALL
from sparsebench.report.style import VERDICT_INK
from sparsebench.report.tables import markdown_table

RULE = ("The measured effect shown for a claim is that of its primary check. A verdict comes "
        "from the seeds, never from one run, and never from an epoch chosen on the test set. Each check declares "
        "the smallest effect that matters s: for \"A is larger than B\", refuted as negligible when the 90% "
        "interval of the difference of means (Welch) lies inside ±s (equivalence by two one-sided tests); "
        "supported when the 95% interval lies above zero and the estimate reaches s; inconclusive when the 95% "
        "interval lies above zero but the estimate is below s (real but below the smallest effect that matters); "
        "refuted as opposite when the 95% interval lies below zero; inconclusive otherwise, with the seeds per "
        "group that an 80%-power calculation says would decide it. For \"little or no loss\", supported when the "
        "interval of the loss lies under the declared margin; checks marked paired compare runs of the same "
        "seed; groups without any spread over seeds give no interval. Each decided check gives the p-value of "
        "its branch; each claim's primary check is corrected by Holm's method across the report's claims, and "
        "one whose adjusted p is not below 0.05 is inconclusive (not after Holm's correction). Accuracy checks "
        "also show the difference with a bootstrap interval over the test images (the test set's own "
        "uncertainty), which does not change the verdict. A claim's verdict is its primary check's (its card "
        "names it); the other checks are reported beside it. A \"can\" claim is decided over a declared grid of "
        "settings: supported when one supports it after Holm's correction across them, refuted only when every "
        "one refutes it. Under the map profile a claim with a regime map has its primary check judged in each "
        "cell of the map (one factor at a time, the cell's setting on both sides) with Holm's correction across "
        "the cells that ran: supported or refuted when every planned cell is, regime-dependent when some cell "
        "supports it and another refutes it (the page says where each holds), inconclusive otherwise. Each "
        "primary check is judged again at the early-stopping (best-validation) epoch: a "
        "verdict marked ‡ changes there; one marked † rests on fewer runs than the profile plans. Where an arm "
        "the primary check reads tuned chose a point that led the next best by less than seed noise could (a near "
        "tie: the tuning section gives the rule), its row says so: the verdict is about the choice made, which "
        "another trial seed or host could have made otherwise.")

OVERVIEW_CAPTION = (
    "One row per claim, its primary check: the measured effect (dot; each verdict has its own colour and shape) and "
    "its 95% interval (bar), divided by the "
    "check's smallest effect that matters, or by its margin for within / at most / equivalent checks, and turned so "
    "that the claimed direction points right. The grey band [−1, 1] is then every row's negligible band: a greater / "
    "less check is supported when its bar lies right of 0 and its dot right of 1, refuted when its 90% interval (not "
    "drawn) lies inside the band (negligible) or its bar left of 0 (opposite); a within / at most check is supported when its bar lies right of −1; an equivalence "
    "check when it lies inside the band. The axis is linear inside ±1 and logarithmic beyond. On the right: the "
    "verdict and the effect in the metric's own units.")

SMOKE_BANNER = ("Smoke profile: these runs are seconds long on 2,000 training images, one epoch and two seeds. "
                "They test that the pipeline runs end to end, not the claims: every verdict below means nothing "
                "about the papers. Run profile=standard (or paper) for verdicts.")
# What ± means in a claim's table (``evaluate.claim_table``); a paper's table says its own in its caption.
TABLE_NOTE = "Each cell: mean ± half-width of the 95% t-interval over seeds (number of seeds in brackets)."

SUMMARY_HEADER = ["claim", "statement", "measured effect (95% CI)", "seeds", "verdict", "notes", "figure"]
PAGES = ("CLAIMS.md", "claims.html", "claims.json")
FIGURES_FOLDER = "figures"  # beside the pages: every figure the report draws
MANIFEST = "manifest.json"  # written last: its absence, or a file that differs from it, marks an unfinished report
TEMPLATES = Path(__file__).parent / "templates"


# ----------------------------------------------------------------------------------------------------
# Phrases


def effect_text(check: Verdict) -> str:
    """The measured effect of a check and its interval, in one phrase."""
    if check.not_run_here:
        return ("not measured in this profile" if check.problems[0].kind == NOT_MEASURED
                else "not planned in this profile")
    if not check.ran:
        return f"no difference yet: {without_runs(check)}"
    if check.test == "identical":
        return f"largest |Δ| of a pair {number(abs(check.largest_difference), 3)} (margin {number(check.margin or 0)})"
    if check.test == "within":
        loss, low, high = check.loss
        return f"loss {signed(loss)} {bracket(low, high)}, margin {number(check.margin)}"
    text = f"Δ {signed(check.effect)} {bracket(check.low, check.high)}"
    if check.margin is not None and check.test in ("at_most", "equivalent"):
        text += f", margin {number(check.margin, 3)}"
    if check.smallest_effect:
        text += f", negligible within ±{number(check.smallest_effect)}"
    return text


def described(check: Verdict) -> str:
    """The check's one-line description with its metric named in words rather than by its path."""
    text = description(check)
    if text.startswith(check.metric + ":"):
        text = metric_name(check.metric).name + text[len(check.metric):]
    return text


def human_table(table: pd.DataFrame) -> pd.DataFrame:
    """A claim's table (groups by metrics) with its metrics named in words and units, the longer of the two
    lists running down the page: one row per group of runs, or, when there are more metrics than groups,
    one row per metric (long names read well down a column, not across many headers)."""
    if len(table.columns) > len(table.index):
        out = table.T
        out.insert(0, "metric", [metric_label(c) for c in out.index])
    else:
        out = table.rename(columns=metric_label)
        out.insert(0, "runs", list(table.index))
    out.columns.name = None  # the pivot's name would head a row of its own in HTML
    return out.reset_index(drop=True)


def seeds_text(check: Verdict) -> str:
    return f"{check.n_a}" if check.against or check.a == check.b else f"{check.n_a} vs {check.n_b}"


def verdict_text(result: ClaimResult) -> str:
    """The verdict with its qualifiers: how it is refuted, what withdrew a verdict its interval had reached
    (Holm's correction across the report, a precondition not met), ‡ a verdict that changes at the
    early-stopping epoch, † fewer runs than planned."""
    decisive = decisive_check(result)
    text = result.verdict
    if decisive is not None and decisive.refuted_as and result.verdict == "refuted":
        text += f" ({decisive.refuted_as})"
    elif (decisive is not None and result.verdict == "inconclusive"
          and decisive.undecided_as in (HOLM, PRECONDITION, UNTRIED)):
        text = outcome(decisive)
    if decisive is not None and budget_changes(decisive, result.early_stop):
        text += " ‡"
    if result.incomplete:
        text += " †"
    return text


def _why(result: ClaimResult, near_ties: str = "") -> str:
    """What a summary row adds: the reason an undecided check gives, the seeds that would decide it,
    the runs missing, a verdict that changes at the early-stopping epoch, and ``near_ties``
    (``near_tie_text``)."""
    decisive, notes = decisive_check(result), decisive_notes(result)
    parts = [result.claim.card.reported_as] if result.claim.card is not None and result.claim.card.reported_as else []
    if result.regime is not None and decisive is not None and decisive.cells:
        parts.append(regime_text(decisive, result.regime))
    if decisive is not None:
        if decisive.problems:
            parts.append(reason(decisive))
        if undecided_text(decisive):
            parts.append(undecided_text(decisive))
        if decisive.verdict == "inconclusive" and decisive.seeds_needed is not None:
            needed = decisive.seeds_needed
            parts.append(f"{f'~{needed}' if needed <= MAX_SEEDS else f'more than {MAX_SEEDS}'} seeds per group would "
                         f"decide it (80% power)")
    if notes is not None and decisive is not None and check_notes_text(notes, decisive):
        parts.append(check_notes_text(notes, decisive))
    if decisive is not None and budget_changes(decisive, result.early_stop):
        parts.append(f"‡ {outcome(result.early_stop)} at the early-stopping epoch")
    matched = matched_reading(result)
    if decisive is not None and matched is not None and matched.ran and not reads_alike(matched, decisive):
        keys = ", ".join(result.claim.checks[result.claim.primary_index].matched)
        parts.append(f"with B at A's chosen {keys}: {outcome(matched)}, {signed(matched.effect)} "
                     f"{bracket(matched.low, matched.high)}")
    if near_ties:
        parts.append(near_ties)
    again = runner_up_reading(result)
    if decisive is not None and again is not None and again.ran:
        same = reads_alike(again, decisive)
        parts.append(f"with the near-tied arms at their runner-ups: {outcome(again)}, {signed(again.effect)} "
                     f"{bracket(again.low, again.high)}"
                     + ("" if same else ": the verdict holds for the choice made, not for both"))
    return "; ".join(parts)


def near_tie_text(result: ClaimResult, tunings: Sequence, tables: dict | None = None) -> str:
    """The arms its primary check reads tuned whose choice is a near tie (``ArmTuning.near_tie``), in words;
    '' where there is none. Such a verdict answers for the choice made, which another trial seed or host
    could have made otherwise. ``tables``: each tuning's ``tuning_table`` where the report has made them."""
    if not result.claim.checks:
        return ""
    check = result.claim.checks[result.claim.primary_index]
    if check.setting != TUNED:
        return ""
    ties = []
    for tuning in (t for t in tunings if t.experiment in result.experiments):
        rows = (tables or {}).get(tuning.experiment) or tuning_table(tuning)
        for where in [*check.a_settings(), check.b]:
            arm = None if where is None else arm_of(tuning, where)
            row = None if arm is None else rows[tuning.arms.index(arm)]
            if row is not None and row["near_tie"]:
                # A one-arm experiment is one side of the claim: its name says which.
                name = tuning.experiment if len(tuning.arms) == 1 else arm.label
                ties.append(f"{name} led {_point(row['runner_up']['point'], row['chosen'])} by {_gap(row)}")
    return f"tuned choice a near tie: {'; '.join(dict.fromkeys(ties))}" if ties else ""


def seed_ranges(seeds: Sequence[int]) -> str:
    """Seeds written as runs of consecutive numbers: 0–2, 5, 7–9."""
    groups: list[list[int]] = []
    for seed in sorted(seeds):
        if groups and seed == groups[-1][-1] + 1:
            groups[-1].append(seed)
        else:
            groups.append([seed])
    return ", ".join(f"{g[0]}–{g[-1]}" if len(g) > 1 else f"{g[0]}" for g in groups)


def shortfall_text(result: ClaimResult) -> str:
    """A protocol's runs without a record, in words: how many of the planned, and which seeds of which
    row of the paper's table, so that a table on fewer seeds than the paper's never reads as complete."""
    if not result.short:
        return ""
    where = "; ".join(f"{label}, seed{'s' if len(seeds) > 1 else ''} {seed_ranges(seeds)}"
                      for label, seeds in result.short.items())
    return (f"† {result.runs} of the {result.planned} planned runs have a completed record; without one (not run "
            f"yet, or failed): {where}.")


def _fixed(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}"


def _cell(stats: dict | None, decimals: int) -> str:
    """Our mean ± standard deviation (seeds): one decimal more than the paper prints, so that a difference
    smaller than its last digit still shows; whole numbers stay whole."""
    if not stats or not stats["n"]:
        return "–"
    places = decimals + 1 if decimals else 0
    spread = f" ± {_fixed(stats['std'], places)}" if stats["n"] > 1 and math.isfinite(stats["std"]) else ""
    return f"{_fixed(stats['mean'], places)}{spread} ({stats['n']})"


def regime_text(v: Verdict, layout: MapLayout, home_regime: bool = True) -> str:
    """Where on its regime map the claim holds and flips (``wording.where_text``), the count of each kind of
    cell, and (``home_regime``: the primary check's text) where the home regime lies when no cell is it."""
    counts = map_counts(v)
    where = where_text(v, layout.names, home_regime)
    if not any(cell.ran for _, cell in v.cells):
        where = f"{NO_CELL_RAN}; " + where
    if home_regime and not any(cell.home for _, cell in v.cells) and layout.home_note:
        where += f" ({layout.home_note})"
    tally = ", ".join(f"{number} {kind}" for kind, number in counts.items() if number)
    text = f"{where} ({len(v.cells)} cells: {tally})"
    agreeing = [kind for kind in ("supported", "refuted") if counts[kind] == len(v.cells) - counts["not run"]]
    if counts["not run"] and agreeing:
        text += (f"; every cell that ran is {agreeing[0]}, but {counts['not run']} planned cell(s) did not run: "
                 f"not {agreeing[0]} across the map")
    return text


def cell_words(cell: dict, layout: MapLayout) -> str:
    """A cell of a map in words: the axis it moves (width 1024), or the center with every axis's value."""
    column = cell_axis(cell, layout.center)
    if column is None:
        return "the center: " + ", ".join(f"{axis_name(c, layout.names)} {axis_value(x)}" for c, x in cell.items())
    return f"{axis_name(column, layout.names)} {axis_value(cell[column])}"


def deciding_cell(v: Verdict, layout: MapLayout) -> str:
    """The cell whose numbers a map's verdict carries (its selector is on both sides of the verdict)."""
    return next((cell_words(cell, layout) for cell, _ in v.cells if all(v.a.get(c) == x for c, x in cell.items())),
                "no cell ran")


CENTER_FIGURE = ". The claim's other figures show the map's centre cell alone (the standard profile's setting)"
NO_CELL_RAN = "no cell of the map has runs on both sides yet"
MAP_HEADER = ("axis", "value", "A − B [95% CI]", "verdict", "p (Holm across the cells)", "runs A vs B", "home")


def _grid_setting(cell: Verdict) -> str:
    """A "can" check's cell (decided over its grid): the grid setting whose numbers the cell shows, or ''."""
    return ", ".join(f"{key}={value}" for key, value in shown_setting(cell).items())


def _cell_verdict(cell: Verdict) -> str:
    kind = cell_kind(cell)
    if cell.cells and cell.verdict == "refuted":  # a "can" check is refuted only where every setting refutes it
        return f"{kind} at each of its {len(cell.cells)} settings"
    if kind == "not run" and cell.n_a + cell.n_b:  # one side ran: say which did not
        return f"not run ({' and '.join(cell.missing_sides)}: no run yet)"
    if kind == "undecided" and cell.undecided_as == HOLM:
        return f"{kind} ({HOLM_TEXT}; {cell.before_holm} on its own)"
    if cell.undecided_as == PRECONDITION:
        return f"undecided ({PRECONDITION_TEXT}: {cell.unmet}; {cell.before_precondition} on its own)"
    if cell.undecided_as == UNTRIED:
        return f"undecided ({UNTRIED_TEXT})"
    return f"{kind} ({SMALL_TEXT})" if kind == "undecided" and cell.undecided_as == SMALL else kind


def regime_rows(v: Verdict, layout: MapLayout) -> tuple[tuple[str, ...], ...]:
    """One row per cell of the map (``MAP_HEADER``): the center first, then each axis in turn."""
    placed = []
    for cell, verdict in v.cells:
        column = cell_axis(cell, layout.center)
        order = -1 if column is None else list(layout.axes).index(column) if column in layout.axes else len(layout.axes)
        placed.append((order, axis_order(cell.get(column)) if column else 0.0, cell, column, verdict))
    placed.sort(key=lambda item: (item[0], item[1]))
    rows = []
    for _, _, cell, column, verdict in placed:
        axis = "center" if column is None else axis_name(column, layout.names)
        value = cell_words(cell, layout).removeprefix("the center: ") if column is None else axis_value(cell[column])
        effect = (f"{signed(verdict.effect)} {bracket(verdict.low, verdict.high)}"
                  if verdict.n_a and math.isfinite(verdict.low) else "–")
        if effect != "–" and _grid_setting(verdict):
            effect += f" at {_grid_setting(verdict)}"
        p = p_number(verdict.p_holm) if math.isfinite(verdict.p_holm) else "–"
        runs = f"{verdict.n_a}" if verdict.against else f"{verdict.n_a} vs {verdict.n_b}"
        rows.append((axis, value, effect, _cell_verdict(verdict), p, runs, "★ home" if verdict.home else ""))
    return tuple(rows)


# ----------------------------------------------------------------------------------------------------
# The content model


@dataclass(frozen=True)
class SummaryRow:
    """A claim's row of the summary table: its deciding check."""

    claim_id: str
    statement: str
    effect: str
    seeds: str
    verdict: str  # the verdict's word, which names its colour
    verdict_text: str
    notes: str
    figure: str | None  # the claim's PNG, relative to the report folder
    has_figures: bool


@dataclass(frozen=True)
class CheckLine:
    label: str
    verdict: str
    outcome: str  # the verdict with how it is refuted
    description: str
    smallest_effect: str  # "value (why)", or empty when the check declares none
    notes: str
    p: str = ""  # the p-value of the branch it landed in; a primary check's Holm-adjusted p
    images: str = ""  # accuracy checks: the difference with its bootstrap interval over test images


@dataclass(frozen=True)
class PaperColumn:
    name: str
    subheads: tuple[str, ...]  # paper, ours, Δ / paper's spread[, ours, honest]


@dataclass(frozen=True)
class Reproduction:
    """A protocol's table: per column of the paper's the paper's value, ours as the paper measured it,
    the difference in units of the paper's spread (! beyond 2), and the honest figure."""

    caption: str  # Markdown: the title in bold
    columns: tuple[PaperColumn, ...]
    rows: tuple[tuple[str, ...], ...]  # the network, then the cells of each column in turn

    @property
    def header(self) -> list[str]:
        return ["network"] + [f"{c.name}: {h}" if i == 0 else h for c in self.columns for i, h in enumerate(c.subheads)]

    @property
    def starts(self) -> set[int]:
        """The places (from 1, after the network) of each column's first cell."""
        places, start = set(), 1
        for column in self.columns:
            places.add(start)
            start += len(column.subheads)
        return places


@dataclass(frozen=True)
class RegimeTable:
    """A claim's regime map: where it holds (``caption``) and one row per cell (``MAP_HEADER``)."""

    caption: str
    rows: tuple[tuple[str, ...], ...]
    header: tuple[str, ...] = MAP_HEADER


@dataclass(frozen=True)
class Section:
    claim_id: str
    kind: str  # claim | protocol
    statement: str
    source: str
    experiments: tuple[str, ...]
    verdict: str
    verdict_text: str
    reason: str
    note: str
    shortfall: str
    reproduction: Reproduction | None
    checks: tuple[CheckLine, ...]
    table: pd.DataFrame | None  # groups (or metrics) by metrics (or groups), cells already written
    figure: str | None  # the claim's PNG, relative to the report folder
    images: tuple[Path, ...]  # every PNG of the claim, for the HTML page to inline
    data: dict  # the claim's entry of claims.json
    budget: str = ""  # whether the primary check's verdict changes at the early-stopping epoch
    card: Card | None = None  # what the claim means, written before the runs
    seeds_run: int | None = None  # the fewest seeds a side of its primary check had (beside the card's plan)
    regime: RegimeTable | None = None  # the map profile: its primary check across the map's cells


@dataclass(frozen=True)
class TuningSection:
    """How one experiment's arms were tuned (``claims.tuning``): each arm's grid, trials and choice."""

    experiment: str
    caption: str
    table: pd.DataFrame
    figure: str | None  # its PNG, relative to the report folder
    images: tuple[Path, ...]


@dataclass(frozen=True)
class Report:
    header: str
    overview: Path | None  # the summary figure's PNG
    overview_link: str | None
    summary: tuple[SummaryRow, ...]  # none in a report of paper protocols alone
    unused: tuple[str, ...]
    sections: tuple[Section, ...]  # in the order of the results
    data: dict  # claims.json
    files: tuple[Path, ...]  # the figures the pages show or name
    rule: str = RULE
    caption: str = OVERVIEW_CAPTION
    summary_header: tuple[str, ...] = tuple(SUMMARY_HEADER)
    colours: dict = field(default_factory=lambda: dict(VERDICT_INK))  # the hues of the figures' verdict marks
    tuning: tuple[TuningSection, ...] = ()
    banner: str = ""  # said first, in a box: what the profile's verdicts are worth (smoke: nothing)
    outside: str = ""  # the claims the profile does not hold, named in one line (no row, no section)
    table_note: str = TABLE_NOTE


def _png(paths: Sequence[Path]) -> Path | None:
    return next((Path(p) for p in paths if Path(p).suffix == ".png"), None)


def _relative(path: Path | None, out: Path) -> str | None:
    return None if path is None else str(Path(path).relative_to(out))


def _summary_row(result: ClaimResult, out: Path, near_ties: str = "") -> SummaryRow:
    decisive = decisive_check(result)
    mapped = decisive is not None and result.regime is not None and bool(decisive.cells)
    if mapped and not any(cell.ran for _, cell in decisive.cells):
        effect, seeds = f"{metric_label(decisive.metric)}: {NO_CELL_RAN}", "–"
    elif decisive is not None:
        at = f" in the deciding cell ({deciding_cell(decisive, result.regime)})" if mapped else ""
        effect, seeds = f"{metric_label(decisive.metric)}{at}: {effect_text(decisive)}", seeds_text(decisive)
    else:
        effect, seeds = result.reason or "–", "–"
    return SummaryRow(result.claim.id, result.claim.statement, effect, seeds, result.verdict, verdict_text(result),
                      _why(result, near_ties) or "–", _relative(_png(result.figures), out), bool(result.figures))


def _reproduction(result: ClaimResult) -> Reproduction:
    table = result.claim.table
    subheads = ("paper", "ours", "Δ / paper's spread")
    columns = tuple(PaperColumn(c.name, subheads + (("ours, honest",) if c.honest else ())) for c in table.columns)
    rows = []
    for row in result.reproduction:
        cells = [row.label]
        for column, cell in zip(table.columns, row.cells):
            places = column.decimals
            published = "–" if cell["published"] is None else (_fixed(cell["published"], places) + (
                f" ± {_fixed(cell['spread'], places)}" if cell["spread"] else " (no spread given)"))
            z = "–" if not math.isfinite(cell["z"]) else f"{cell['z']:+.1f}" + (" !" if cell["disagrees"] else "")
            cells += [published, _cell(cell["ours"], places), z]
            if column.honest:
                cells.append(_cell(cell["honest"], places))
        rows.append(tuple(cells))
    caveat = "" if table.confirmed else (" **Unconfirmed:** these published numbers could not be checked against the "
                                         "paper's text here; treat them as unverified until someone does.")
    if table.has_spread:
        spreads = (f"± is the paper's {table.spread}; ours is the same kind over our seeds (count in brackets). "
                   f"Δ / paper's spread: (ours − paper) / the paper's spread, marked ! beyond 2.")
    else:  # nothing to measure a difference against
        spreads = (f"The paper's spread: {table.spread}. Ours: mean ± standard deviation over our seeds (count in "
                   f"brackets); no Δ in units of a spread the paper does not give.")
    caption = f"**{table.title}** Source: {table.source}. {spreads}{caveat}" + (f" {table.note}" if table.note else "")
    return Reproduction(caption, columns, tuple(rows))


def _check_data(check, verdict: Verdict, notes) -> dict:
    numbers = {f.name: getattr(verdict, f.name) for f in fields(verdict) if f.name not in ("problems", "mode", "cells")}
    if verdict.cells:
        numbers["cells"] = [{"setting": dict(setting), "outcome": outcome(cell), "effect": cell.effect, "low": cell.low,
                             "high": cell.high, "p_value": cell.p_value, "p_holm": cell.p_holm, "n_a": cell.n_a,
                             "n_b": cell.n_b, "home": cell.home} for setting, cell in verdict.cells]
    numbers |= {"a": dict(verdict.a), "b": dict(verdict.b), "groups_a": list(verdict.groups_a),
                "groups_b": list(verdict.groups_b), "reason": reason(verdict), "description": description(verdict),
                "outcome": outcome(verdict), "p_text": p_text(verdict), "images_text": images_text(verdict)}
    return {"label": check.label, "metric_name": metric_label(verdict.metric),
            "smallest_effect_reason": check.smallest_effect_reason, **numbers,
            "notes": check_notes_text(notes, verdict) if notes is not None else ""}


def _section(result: ClaimResult, out: Path) -> Section:
    claim = result.claim
    all_notes = result.notes or [None] * len(result.checks)
    primary = decisive_check(result)
    mapped = result.regime is not None and primary is not None and bool(primary.cells)

    def across(c, v: Verdict) -> str:
        """A map's deciding cell and where the claim holds (its primary check; any other check, judged in the
        same cells, where it holds), or a "can" check's settings."""
        if mapped and v is primary:
            return (f"judged in each cell of the regime map ({len(v.cells)} cells, each in the table below); the "
                    f"numbers here are the deciding cell's ({deciding_cell(v, result.regime)})")
        if mapped and v.cells and not v.not_run_here:
            what = "a precondition of the primary check, judged" if c.precondition else "judged"
            where = regime_text(v, result.regime, home_regime=False)
            return (f"{what} in each cell of the regime map: {where}; the numbers here are the deciding cell's "
                    f"({deciding_cell(v, result.regime)})")
        return grid_text(v)

    checks = tuple(
        CheckLine(c.label, v.verdict, outcome(v), described(v),
                  f"{number(c.smallest_effect)} ({c.smallest_effect_reason})" if c.smallest_effect is not None else "",
                  "; ".join(filter(None, (check_notes_text(n, v) if n is not None else "", across(c, v)))),
                  p_text(v), images_text(v))
        for c, v, n in zip(claim.checks, result.checks, all_notes))
    regime = RegimeTable(regime_text(primary, result.regime) + CENTER_FIGURE, regime_rows(primary, result.regime)) \
        if mapped else None
    budget = early_stop_text(primary, result.early_stop, claim.kind == "claim")
    reproduction = _reproduction(result) if result.reproduction else None
    data = {"id": claim.id, "kind": claim.kind, "statement": claim.statement, "verdict": result.verdict,
            "verdict_text": verdict_text(result), "reason": result.reason, "runs": result.runs,
            "experiments": result.experiments, "figures": [_relative(p, out) for p in result.figures],
            "checks": [_check_data(c, v, n) for c, v, n in zip(claim.checks, result.checks, all_notes)],
            "reproduction": [{"network": row.label, **{column.name: cell for column, cell in
                                                       zip(claim.table.columns, row.cells)}}
                             for row in result.reproduction] if result.reproduction else None,
            **({"planned_runs": result.planned, "seeds_short": result.short} if result.planned else {}),
            **({"card": dataclasses.asdict(claim.card)} if claim.card is not None else {}),
            **({"early_stop": _check_data(claim.checks[claim.primary_index], result.early_stop, None)}
               if result.early_stop is not None else {}),
            **({"regime_map": {"axes": result.regime.axes, "center": result.regime.center, "home": result.regime.home,
                               "home_note": result.regime.home_note, "where": regime.caption,
                               "counts": map_counts(primary), "header": list(MAP_HEADER),
                               "rows": [list(row) for row in regime.rows]}} if regime is not None else {})}
    return Section(claim.id, claim.kind, claim.statement, claim.source,
                   tuple(result.experiments or claim.all_experiments()), result.verdict, verdict_text(result),
                   result.reason, claim.note or "", shortfall_text(result), reproduction, checks,
                   human_table(result.table) if result.table is not None else None,
                   _relative(_png(result.figures), out),
                   tuple(Path(p) for p in result.figures if Path(p).suffix == ".png"), data, budget, claim.card,
                   _seeds_run(result), regime)


def _seeds_run(result: ClaimResult) -> int | None:
    """The fewest runs a side of the claim's primary check had (None before any check was judged)."""
    primary = result.claim.primary_index
    if primary >= len(result.checks):
        return None
    verdict = result.checks[primary]
    sides = [verdict.n_a] if verdict.against else [verdict.n_a, verdict.n_b]
    return min(sides)


def build_report(results: Sequence[ClaimResult], out: Path, header: str, unused: Sequence[str] = (),
                 overview: Sequence[Path] = (), info: dict | None = None, tunings: Sequence = ()) -> Report:
    """The report's content, once for all its pages. ``header``: the line under the title; ``overview``:
    the summary figure's files (``overview.plot_claims_overview``), shown first; ``info``: the run's facts
    that head claims.json; ``tunings``: the ``claims.tuning.Tuning`` of each tuned experiment the claims read."""
    out = Path(out)
    # A claim the profile does not hold has no row and no section: one line names them all. claims.json
    # keeps its entry, marked, so that a reader of the data need not parse the reason.
    rows = held(results)
    sections = tuple(_section(r, out) for r in rows)
    # Each tuning's table once: its near-tie column reads every final run's record.
    tables = {t.experiment: tuning_table(t) for t in tunings}
    summary = tuple(_summary_row(r, out, near_tie_text(r, tunings, tables)) for r in rows if r.claim.kind == "claim")
    outside = outside_text(results)
    tuning = tuple(_tuning_section(t, out, tables[t.experiment]) for t in tunings)
    png = _png(overview)
    files = tuple(dict.fromkeys(Path(p) for p in [*overview, *(f for r in results for f in r.figures),
                                                   *(f for t in tuning for f in t.images)]))
    banner = SMOKE_BANNER if (info or {}).get("profile") == "smoke" else ""
    return Report(header, png, _relative(png, out), summary, tuple(unused), sections,
                  {**(info or {}), "claims": [s.data for s in sections] + [_outside_data(r) for r in results
                                                                           if r.outside_profile],
                   "tuning": tables}, files, tuning=tuning, banner=banner,
                  outside=outside)


def outside_text(results: Sequence[ClaimResult]) -> str:
    """One line for the claims a profile does not hold, grouped by why ('' when there are none)."""
    reasons: dict[str, list[str]] = {}
    for result in results:
        if result.outside_profile:
            reasons.setdefault(result.reason, []).append(result.claim.id)
    return "; ".join(f"Not run here: {', '.join(ids)} ({why})" for why, ids in reasons.items()) + \
        ("." if reasons else "")


def _outside_data(result: ClaimResult) -> dict:
    claim = result.claim
    return {"id": claim.id, "kind": claim.kind, "statement": claim.statement, "verdict": result.verdict,
            "verdict_text": verdict_text(result), "reason": result.reason, "outside_profile": True}


def _not_yet(row: dict) -> str:
    """An arm without a choice: how far its trials got (a long tuning, resumed across sittings, shows its
    progress; the scores so far choose nothing until every trial of the rung is in)."""
    if row["all_failed"]:
        return "none: every trial failed"
    planned = sum(row["trials"]) + row["beyond"]
    return f"not yet ({row['recorded']} of {planned} trials recorded)"


def _tuning_section(tuning, out: Path, arm_rows: list[dict] | None = None) -> TuningSection:
    """The tuning's table, caption and figure; ``arm_rows``: its ``tuning_table`` where already made."""
    from sparsebench.claims.tuning_figure import plot_tuning

    figures = plot_tuning(tuning, out / "figures")
    rows, marks = [], set()
    arm_rows = tuning_table(tuning) if arm_rows is None else arm_rows
    for arm, row in zip(tuning.arms, arm_rows):
        edges = row["edges"]
        marks |= set(edges.values()) - {""}
        chosen = ", ".join(f"{k} {v}" + (f" ({edges[k]})" if edges[k] else "")
                           for k, v in (row["chosen"] or {}).items()) or _not_yet(row)
        beyond = {0: "", 1: " + 1 beyond an edge"}.get(row["beyond"], f" + {row['beyond']} beyond the edges")
        rows.append({"arm": row["arm"], "points tried": row["points"],
                     "trials per rung": " → ".join(str(n) for n in row["trials"]) + beyond,
                     "chosen": chosen, metric_label(tuning.spec.metric): _score(row["score"]),
                     "runner-up (score, behind by)": _runner_up(row)})
    epochs = "; ".join(dict.fromkeys(" → ".join(str(e) for e in tuning.rung_epochs(arm)) for arm in tuning.arms))
    # An experiment of one arm is one side of a claim whose other sides are tuned in experiments of their own.
    whom = (f"Each arm of `{tuning.experiment}` tuned alike on the validation split: the same number of points each"
            if len(tuning.arms) != 1 else
            f"`{tuning.experiment}` (one arm) tuned on the validation split: {len(tuning.arms[0].points)} points")
    # One rung is no halving: every point runs the final runs' whole budget (the continual arms, whose task
    # epochs cannot be cut).
    if len(tuning.spec.rungs) > 1:
        schedule = f"successive halving over {epochs} epochs (the best 1/{tuning.spec.eta} of a rung go on)"
        chosen_at = " at the last rung"
    else:
        per_task = " a task" if tuning.arms[0].jobs[0].config.continual is not None else ""
        unit = "epoch" if epochs == "1" else "epochs"
        schedule = f"every point at the final runs' whole budget ({epochs} {unit}{per_task})"
        chosen_at = ""
    caption = (f"{whom}, {schedule}, trials on seed {tuning.spec.seed} (no final run's), chosen by "
               f"{tuning.spec.metric}{chosen_at}. The test set is not read.")
    rounds = tuning.spec.extend_edges
    plural = "s" if rounds > 1 else ""
    blocked = [f"{arm.label}: {why}" for arm in tuning.arms for why in arm.blocked.values()]
    if rounds and (blocked or any(row["beyond"] for row in arm_rows)):
        caption += (f" A choice at an edge of its grid had that setting tried one step beyond it (the edge times its "
                    f"ratio to its neighbour), at the last rung's budget, and the choice made again, up to {rounds} "
                    f"round{plural}: (beyond the grid) marks a choice found so.")
    if any(mark.startswith("edge") for mark in marks):
        still = (f" after {rounds} round{plural} beyond it, or where no step beyond it could be tried" if rounds else "")
        caption += (" (edge): the chosen value is the smallest or largest of the three or more tried for that "
                    f"setting{still}, so a wider grid might choose beyond it.")
    if blocked:
        caption += " No step tried: " + "; ".join(blocked) + "."
    if "one of two" in marks:
        caption += (" (one of two): two values of that setting were tried, so whether a value beyond the one "
                    "chosen would do better cannot be seen.")
    caption += (" The runner-up is the last rung's next best point; near tie: the choice leads it by less than "
                "1.96 x sqrt(2) x the standard deviation of the chosen point's score over its final runs' seeds (the "
                "95% range of the difference of two single-seed trials), so another trial seed could choose it.")
    if tuning.missing:
        caption += f" Not finished: {tuning.missing}."
    png = _png(figures)
    return TuningSection(tuning.experiment, caption, pd.DataFrame(rows), _relative(png, out),
                         tuple(Path(p) for p in figures if Path(p).suffix == ".png"))


def _runner_up(row: dict) -> str:
    """The runner-up's point (the settings where it differs from the choice), its score and the gap."""
    second, chosen = row.get("runner_up"), row["chosen"] or {}
    if second is None or row["score"] is None:
        return "–"
    tie = "; near tie" if row.get("near_tie") else ""
    return f"{_point(second['point'], chosen)}: {number(second['score'])} ({_gap(row)}){tie}"


def _gap(row: dict) -> str:
    """How far the choice of a ``tuning_table`` row led its runner-up."""
    return number(abs(row["score"] - row["runner_up"]["score"]))


def _point(point: dict, chosen: dict) -> str:
    """The settings where a point differs from the chosen one."""
    return ", ".join(f"{k} {v}" for k, v in point.items() if chosen.get(k) != v)


def _score(value) -> str:
    if value is None:
        return "–"
    return "failed" if not math.isfinite(value) else number(value)


# ----------------------------------------------------------------------------------------------------
# Rendering


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _image(path: Path) -> Markup:
    """The PNG inline, its alt text the figure's title, a link to the file itself (beside the page, in its
    figures folder) to see it at full size on a narrow screen."""
    path = Path(path)
    data = base64.b64encode(path.read_bytes()).decode()
    alt = html.escape(figure_title(path) or path.stem.replace("_", " "))
    link = html.escape(f"{path.parent.name}/{path.name}")
    return Markup(f'<a class="figure" href="{link}"><img alt="{alt}" title="{alt}" src="data:image/png;base64,{data}">'
                  f'</a>')


def _alt(path: Path) -> str:
    """A figure's alt text in Markdown: its title (brackets would end the alt text)."""
    title = figure_title(path) or Path(path).stem.replace("_", " ")
    return title.replace("[", "(").replace("]", ")").replace("\n", " ")


def _unbroken(cell: str) -> Markup:
    """A cell of a paper's table that breaks only before its seed count: ``99.134 ± 0.037`` stays on one line,
    so that a wide table can fit its box by wrapping cells (the P-KW table ran past 1400 px)."""
    return Markup(html.escape(cell).replace(" ± ", "\u00a0±\u00a0"))


def _html_numbers(table: pd.DataFrame) -> Markup:
    return Markup(table.to_html(index=False, escape=True, border=0, classes="numbers"))


def _escaped(value) -> str:
    # Every value the HTML template prints is escaped (as html.escape does) unless it is markup made here.
    return value if isinstance(value, Markup) else html.escape(str(value))


def _style() -> str:
    """style.css, one rule a line, on one line."""
    return "".join(line.strip() for line in (TEMPLATES / "style.css").read_text(encoding="utf-8").splitlines())


@cache
def _environment(kind: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False,
                             finalize=_escaped if kind == "html" else None)
    env.filters.update(md_cell=_md_cell, markdown_table=markdown_table, html_numbers=_html_numbers, image=_image,
                       unbroken=_unbroken, alt=_alt)
    return env


def render_markdown(report: Report) -> str:
    text = _environment("md").get_template("claims.md.j2").render(report=report)
    return text.rstrip("\n") + "\n"


def render_html(report: Report) -> str:
    return _environment("html").get_template("claims.html.j2").render(report=report, style=Markup(_style()))


def render_json(report: Report) -> str:
    return json.dumps(report.data, indent=1, default=str) + "\n"


# ----------------------------------------------------------------------------------------------------
# Writing


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_report(out: Path) -> None:
    """Mark the report folder unfinished before anything in it changes (figures included)."""
    (Path(out) / MANIFEST).unlink(missing_ok=True)


def write_report(results: Sequence[ClaimResult], out: Path, header: str, unused: Sequence[str] = (),
                 overview: Sequence[Path] = (), info: dict | None = None, tunings: Sequence = ()) -> list[Path]:
    """CLAIMS.md, claims.html and claims.json of ``results`` (see ``build_report``), all rendered before
    any is written, each written atomically, then ``manifest.json`` naming every file of the report with
    its SHA-256. An interrupted writer leaves no manifest, or one that the files no longer match."""
    out = Path(out)
    report = build_report(results, out, header, unused, overview, info, tunings)
    pages = dict(zip(PAGES, (render_markdown(report), render_html(report), render_json(report))))
    start_report(out)
    written = [atomic_write_text(out / name, text) for name, text in pages.items()]
    _remove_stale_figures(out / FIGURES_FOLDER, report.files)
    files = {str(path.relative_to(out)): _sha256(path) for path in [*written, *report.files]}
    atomic_write_json(out / MANIFEST, {"complete": True, "files": files})
    return written


def _remove_stale_figures(folder: Path, kept: Sequence[Path]) -> None:
    """Delete the figures in ``folder`` that this report did not draw: an earlier report's (a claim run then
    and not now, a figure since renamed) would otherwise sit beside the pages as if they were current."""
    if not folder.is_dir():
        return
    drawn = {Path(p).resolve() for p in kept}
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and path.resolve() not in drawn:
            path.unlink(missing_ok=True)


def report_problems(out: Path) -> list[str]:
    """Why the report folder ``out`` is not one complete report (its writer stopped part way, or a file
    changed since), one line each; empty for a complete report."""
    out = Path(out)
    try:
        files = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{out / MANIFEST} is missing or unreadable: the report was not written to the end; run "
                f"sparsebench-claims again to write it whole"]
    problems = []
    for name, digest in files.items():
        path = out / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif _sha256(path) != digest:
            problems.append(f"{path} differs from the one the report was written with")
    return problems
