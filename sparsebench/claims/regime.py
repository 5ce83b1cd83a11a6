"""A claim answered across scale: its primary check judged in each cell of a regime map (the map profile).

A claim whose answer can depend on scale ("dropout-trained networks generalise better") is answered
over a declared grid: the map experiment's ``axes`` (record column -> values: hidden width, training
images, epochs) around its own setting (the ``center``), one factor at a time (``map_cells``). Each cell
is a selector merged into **both** sides of the check (A and B are the same setting but for what the
check compares), so each cell gives its own interval and verdict by the one rule of
``claims.checks.judge``. A "can" check is decided in each cell over its grid as anywhere else
(``claims.grid``: the grid's settings merge into A alone, the cell into both sides); the claim's
``map.grid`` narrows that grid to the settings the map experiments run.

The rule across the cells (``judge_map``):

- Holm's correction across the cells that ran (a cell without a run on either side it compares did not
  run: it is left out of the family and listed, with the side that lacks runs). A decided cell's p enters as the report's family takes it
  (``report.stats.family_p``: a supported or opposite branch's one-sided p doubled, negligible's TOST p as
  it is); an undecided cell enters with p = 1. A decided cell whose adjusted p is not below 0.05 is
  undecided ("not after Holm's correction").
- After the correction: every planned cell ran and supports the claim -> **supported**; every planned
  cell ran and refutes it -> **refuted** (its p the largest adjusted p of the cells: each must hold);
  at least one cell supports it and at least one refutes it (opposite or negligible) ->
  **regime-dependent**, whose p is the larger of the two smallest adjusted p's of either kind (both must
  hold); otherwise **inconclusive**, saying how many cells support, refute and are undecided.
- A cell where one of the claim's preconditions (``Check.precondition``, judged across the same cells by
  this rule, after its own Holm's correction across them) is not supported is undecided before the
  correction, whichever way its interval falls.
- A cell that did not run never counts as supporting or refuting: with any planned cell missing the
  claim is neither supported nor refuted everywhere (inconclusive, saying so), though it can still be
  regime-dependent when both kinds were found among the cells that ran.

The result is the deciding cell's verdict (the weakest of the cells it rests on) carrying the overall
verdict and every cell in ``cells``, as (selector, verdict) pairs; the cell of the claim's home regime
(the first that matches the claim's ``map.home`` selector) has ``home`` set. Its p is already the map's
adjusted one: it enters the report's family as a grid check's does (``claims.evaluate.in_family``).
A cell whose selector names a column the records lack has no runs either: it counts as not run, and its
verdict says which column (``checks.Problem``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from sparsebench.claims.catalogue import Check
from sparsebench.claims.checks import (
    ALPHA,
    HOLM,
    Verdict,
    outcome,
    unless_preconditions,
)
from sparsebench.claims.grid import judge_check
from sparsebench.report.aggregate import select
from sparsebench.report.stats import family_p, holm

REGIME_DEPENDENT = "regime-dependent"


@dataclass(frozen=True)
class MapLayout:
    """What the cells of a map were made from: the axes (column -> values) and the experiment's own setting."""

    axes: dict[str, list]
    center: dict[str, Any]
    home: dict[str, Any] | None = None  # the claim's home-regime selector
    home_note: str = ""  # where the home regime lies when no cell is it
    grid: list[dict[str, Any]] | None = None  # a "can" check's settings within each cell (None: the check's grid)
    names: dict[str, str] = field(default_factory=dict)  # axis -> its name where the claim's map gives one


def _same(a: Any, b: Any) -> bool:
    """Whether two axis values are the same setting, matched as selectors match records."""
    return not select(pd.DataFrame({"value": [a]}), {"value": b}).empty


def map_cells(axes: dict[str, list], center: dict[str, Any]) -> list[dict[str, Any]]:
    """One-factor-at-a-time cells: the center cell (every axis at ``center``), then per axis each of its
    values other than the center's with every other axis at its center. Raises ValueError for an axis
    without a center value or without values."""
    missing = [column for column in axes if column not in center]
    if missing:
        raise ValueError(f"axes {missing} have no center value: give the experiment's own value of each axis "
                         f"(center has {sorted(center)})")
    empty = [column for column, values in axes.items() if not list(values)]
    if empty:
        raise ValueError(f"axes {empty} have no values: give each axis at least one value")
    base = {column: center[column] for column in axes}
    cells = [dict(base)]
    for column, values in axes.items():
        taken = [center[column]]
        for value in values:
            if not any(_same(value, other) for other in taken):
                taken.append(value)
                cells.append({**base, column: value})
    return cells


def cell_axis(cell: dict[str, Any], center: dict[str, Any]) -> str | None:
    """The axis ``cell`` moves off ``center``; None for the center cell (which lies on every axis)."""
    return next((column for column, value in cell.items() if column in center and not _same(value, center[column])),
                None)


def is_home(cell: dict[str, Any], home: dict[str, Any] | None) -> bool:
    """Whether ``cell`` is the home regime: it holds every value of the ``home`` selector."""
    if not home:
        return False
    return all(column in cell and _same(cell[column], wanted) for column, wanted in home.items())


def _judge_cell(rows: pd.DataFrame, check: Check, cell: dict) -> Verdict:
    # A check of one set of runs (b omitted, or against a constant) takes the cell on its only side.
    b = {**check.b, **cell} if check.b is not None else None
    # Judged as anywhere else (a "can" check over its grid, claims.grid), the cell's setting on both sides.
    return judge_check(rows, replace(check, a={**check.a, **cell}, b=b))


def _family_p(v: Verdict) -> float:
    """A ran cell's p as Holm's correction across the cells reads it; 1 when undecided. A "can" check's
    cell (decided over its grid) carries its grid's p, already on that scale."""
    if v.verdict == "inconclusive" or not math.isfinite(v.p_value):
        return 1.0
    return family_p(v.p_value, v.refuted_as != "negligible" and v.test != "equivalent" and not v.cells)


def _corrected(v: Verdict, q: float) -> Verdict:
    if v.verdict == "inconclusive":
        return v
    if q < ALPHA:
        return replace(v, p_holm=float(q))
    return replace(v, p_holm=float(q), verdict="inconclusive", undecided_as=HOLM, refuted_as="",
                   before_holm=outcome(v))


def judge_map(rows: pd.DataFrame, check: Check, cells: list[dict], home: dict | None = None,
              preconditions: Sequence[Check] = ()) -> Verdict:
    """``check`` judged in each of ``cells`` (see the module docstring): the deciding cell's verdict with
    the overall verdict, its p, and every cell in ``cells`` (home cell marked). ``preconditions``: checks
    judged in each cell too; a cell where one is not supported is undecided (``checks.unless_preconditions``)."""
    if not cells:
        raise ValueError("a regime map needs at least one cell")
    # One home cell: a selector that names fewer than every axis may match several, and the first (the center,
    # as map_cells orders them) is the one the source's setting sits closest to.
    home_at = next((number for number, cell in enumerate(cells) if is_home(cell, home)), None)
    # Each precondition judged across the same cells, as its own row of the report reads it (after Holm's
    # correction across them): a cell is read only where every one holds in that cell.
    gates = [(c.label, judge_map(rows, c, cells, home).cells) for c in preconditions]
    judged = [(dict(cell), replace(unless_preconditions(_judge_cell(rows, check, cell),
                                                        [(label, by_cell[number][1]) for label, by_cell in gates]),
                                   home=number == home_at))
              for number, cell in enumerate(cells)]
    ran = [(cell, v) for cell, v in judged if v.ran]
    if not ran:
        first = judged[0][1]
        return replace(first, verdict="inconclusive", refuted_as="", p_value=math.nan, cells=tuple(judged))
    adjusted = holm([_family_p(v) for _, v in ran])
    after = [(cell, _corrected(v, q)) for (cell, v), q in zip(ran, adjusted)]
    ran_cells = after
    # Every planned cell in its place: the ones that ran, corrected, and those that did not.
    corrected = iter(ran_cells)
    out = tuple(next(corrected) if v.ran else (cell, v) for cell, v in judged)
    supported = [v for _, v in ran_cells if v.verdict == "supported"]
    refuted = [v for _, v in ran_cells if v.verdict == "refuted"]
    complete = len(ran) == len(judged)
    if complete and len(supported) == len(ran):
        weakest = max(supported, key=lambda v: v.p_holm)
        return replace(weakest, p_value=weakest.p_holm, p_holm=math.nan, home=False, cells=out,
                       null="some cell of the map does not support it (Holm-adjusted across the cells)")
    if complete and len(refuted) == len(ran):
        weakest = max(refuted, key=lambda v: v.p_holm)
        how = {v.refuted_as for v in refuted}
        return replace(weakest, p_value=weakest.p_holm, p_holm=math.nan, home=False, cells=out,
                       refuted_as=how.pop() if len(how) == 1 else "opposite or negligible",
                       null="some cell of the map does not refute it (Holm-adjusted across the cells)")
    if supported and refuted:
        # Both must hold: the weaker of the strongest support and the strongest refutation.
        best = [min(supported, key=lambda v: v.p_holm), min(refuted, key=lambda v: v.p_holm)]
        deciding = max(best, key=lambda v: v.p_holm)
        return replace(deciding, verdict=REGIME_DEPENDENT, refuted_as="", p_value=deciding.p_holm, p_holm=math.nan,
                       home=False, cells=out, null="no cell of the map supports it, or none refutes it (Holm-adjusted "
                                                   "across the cells)")
    # Undecided: show a cell that was decided before the correction, else the first undecided one.
    chosen = next((v for _, v in ran_cells if v.verdict != "inconclusive"), None) or \
        next((v for _, v in ran_cells if v.before_holm), ran_cells[0][1])
    return replace(chosen, verdict="inconclusive", refuted_as="", undecided_as="", before_holm="", unmet="",
                   before_precondition="", p_value=math.nan, p_holm=math.nan, home=False, null="", cells=out)


def map_counts(v: Verdict) -> dict[str, int]:
    """How many cells of a map support, refute, stay undecided, and did not run."""
    counts = {"supported": 0, "refuted": 0, "undecided": 0, "not run": 0}
    for _, cell in v.cells:
        key = "not run" if not cell.ran else cell.verdict if cell.verdict in ("supported", "refuted") else "undecided"
        counts[key] += 1
    return counts


__all__ = ["MapLayout", "REGIME_DEPENDENT", "cell_axis", "is_home", "judge_map", "map_cells", "map_counts"]
