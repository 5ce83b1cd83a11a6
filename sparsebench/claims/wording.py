"""What a check's numbers say, in words: the one-line description of a verdict, why it is inconclusive,
and what its verdict row must say beside its interval. The numbers come from ``claims.checks``; the
pages, the console and the summary figure all take their sentences from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sparsebench.claims.checks import (
    AGAINST,
    ALPHA,
    BEFORE_ANY_INTERVAL,
    HOLM,
    HOLM_TEXT,
    MIXED_EXPERIMENTS,
    NO_COLUMN,
    NO_RUNS,
    NO_SELECTOR_COLUMN,
    NOT_MEASURED,
    NOT_PLANNED,
    ONE_RUN,
    PAIRED,
    PRECONDITION,
    PRECONDITION_TEXT,
    SHARED_RUNS,
    SMALL_TEXT,
    UNPAIRED,
    UNTRIED,
    UNTRIED_TEXT,
    ZERO_SPREAD,
    Problem,
    Verdict,
    outcome,
)
from sparsebench.report.aggregate import display
from sparsebench.report.numbers import absent, bracket, number, signed
from sparsebench.report.stats import (
    EQUIVALENCE,
    EQUIVALENCE_OBSERVED,
    MAX_SEEDS,
    POWER,
    SIGNED,
    SMALL,
    SUPPORT_OBSERVED,
    tost_level,
)


def selector(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={display(v)}" for k, v in where.items()) or "all runs"


def problem_text(problem: Problem, verdict: Verdict) -> str:
    """One reason a check is inconclusive, in words; the numbers it quotes are the verdict's."""
    kind = problem.kind
    if kind == NO_COLUMN:
        return f"no column {problem.columns[0]!r} in the results"
    if kind == NO_SELECTOR_COLUMN:
        return f"{problem.side} ({selector(problem.where)}): no run has {', '.join(map(repr, problem.columns))}"
    if kind == MIXED_EXPERIMENTS:
        return (f"{problem.side} ({selector(problem.where)}) pools runs of {len(problem.columns)} experiments "
                f"({', '.join(problem.columns)}): name the one meant in the side's selector (experiment: ...)")
    if kind == NOT_PLANNED:
        return f"{problem.side} ({selector(problem.where)})"
    if kind == NOT_MEASURED:
        return (f"not measured in this profile: none of its runs records {', '.join(map(repr, problem.columns))} "
                f"(a measurement its experiments leave off, or a misspelt metric in the card)")
    if kind == UNPAIRED:
        return "pairing by seed needs one run per seed on each side"
    if kind == NO_RUNS:
        what = "paired runs" if problem.paired else f"a value of {problem.metric}"
        return f"no run matches {problem.side} ({selector(problem.where)}) with {what}"
    if kind == ONE_RUN:
        return f"{problem.side} has {problem.count} run: an interval over seeds needs at least 2"
    if kind == ZERO_SPREAD:
        if verdict.mode == AGAINST:
            return (f"A is {number(verdict.mean_a)} in every run: with zero spread over seeds no interval can be "
                    f"estimated")
        if verdict.mode == PAIRED:
            return (f"every paired difference is {signed(verdict.effect)}: with zero spread over seeds no interval "
                    f"can be estimated")
        return (f"neither side varies over seeds (A always {number(verdict.mean_a)}, B always "
                f"{number(verdict.mean_b)}): no interval can be estimated from zero spread")
    if kind == SHARED_RUNS:
        return f"A and B select {problem.count} of the same runs"
    raise ValueError(f"no words for the problem {kind!r}")


def reason(verdict: Verdict) -> str:
    """Why the check is inconclusive when that is not its interval (too few runs, no rows), or ''."""
    if any(p.kind == NOT_PLANNED for p in verdict.problems):
        return "not run in this profile, which plans no run of " + " or of ".join(
            problem_text(p, verdict) for p in verdict.problems if p.kind == NOT_PLANNED)
    return "; ".join(problem_text(problem, verdict) for problem in verdict.problems)


def seeds_needed_text(needed: int) -> str:
    return f"{needed}" if needed <= MAX_SEEDS else f"more than {MAX_SEEDS}"


def undecided_text(v: Verdict) -> str:
    """Why a check whose interval lies on one side is inconclusive all the same, or ''."""
    if v.undecided_as == SMALL:
        bound = signed(_signed_bound(v, v.smallest_effect))
        return (f"{SMALL_TEXT}: the {v.level * 100:g}% CI excludes {signed(_signed_bound(v, 0.0))} but the "
                f"estimate does not reach {bound}")
    if v.undecided_as == HOLM:
        return (f"{HOLM_TEXT}: {v.before_holm} on its own (p = {p_number(v.p_value)}), but its Holm-adjusted "
                f"p = {p_number(v.p_holm)} across the report's primary checks is not below {ALPHA:g}")
    if v.undecided_as == PRECONDITION:
        return (f"{PRECONDITION_TEXT}: {v.unmet}, so the arms compared are not doing what the claim speaks of; "
                f"on its own the interval reads {v.before_precondition}")
    if v.undecided_as == UNTRIED:
        unrun = [setting_text(setting) for setting, cell in v.cells if not cell.ran]
        return (f"{UNTRIED_TEXT}: refuted wherever this profile ran it; not run at {' or '.join(unrun)}, where "
                f"it could still hold")
    return ""


def p_number(p: float) -> str:
    return "nan" if math.isnan(p) else f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def p_text(v: Verdict) -> str:
    """The p-value of the branch the check landed in and, for a primary check, its Holm-adjusted p; ''
    when there is neither."""
    parts = []
    if not math.isnan(v.p_value):
        parts.append(f"p = {p_number(v.p_value)} (H0: {v.null})")
    if v.primary:
        parts.append(f"Holm-adjusted p = {p_number(v.p_holm)} (a primary check)" if not math.isnan(v.p_holm)
                     else "A primary check, undecided (counted with p = 1 in Holm's correction)")
    return "; ".join(parts)


def images_text(v: Verdict) -> str:
    """The test set's own uncertainty of an accuracy check: A − B over its test images with the
    bootstrap interval over images, or '' without one."""
    if not v.images:
        return ""
    pct = f"{v.level * 100:g}%"
    spread = (f"{pct} bootstrap CI over images {bracket(v.image_low, v.image_high)}"
              if not math.isnan(v.image_low) else "no interval (every image gives the same difference)")
    return (f"Over the {v.images:,} test images of these runs A − B = {signed(v.image_effect)} points, {spread} "
            f"(the test set's own uncertainty; the verdict rests on the seeds)")


def seeds_text(v: Verdict) -> str:
    """The seeds per group that an a-priori power calculation says would decide an undecided check, or ''."""
    if v.seeds_needed is None:
        return ""
    if v.seeds_basis == EQUIVALENCE:
        band = v.smallest_effect if v.test in SIGNED else v.margin
        basis = f"for TOST to show it negligible within ±{number(band)} were the true effect on the threshold"
    elif v.seeds_basis == EQUIVALENCE_OBSERVED:
        band = v.smallest_effect if v.test in SIGNED else v.margin
        basis = f"for TOST to show it negligible within ±{number(band)} were the true effect the observed one"
    elif v.seeds_basis == SUPPORT_OBSERVED:
        basis = (f"for the interval to clear the threshold with the estimate past the smallest effect that matters "
                 f"({number(v.smallest_effect)}) were the true effect the observed one")
    else:
        basis = "for the one-sided test were the true effect the observed one"
    return (f"about {seeds_needed_text(v.seeds_needed)} seeds per group would decide it at this spread: "
            f"{POWER * 100:g}% power {basis}")


def _signed_bound(v: Verdict, offset: float | None) -> float:
    """threshold + offset on the claimed side of A − B (a ``less`` check's is below −threshold)."""
    threshold = 0.0 if v.margin is None else v.margin
    value = threshold + (offset or 0.0)
    return -value if v.test == "less" else value


def description(v: Verdict) -> str:
    """The check in one line: both sides' means and spreads, the interval, the rule and the outcome."""
    if v.problems and v.problems[0].kind in BEFORE_ANY_INTERVAL:
        return f"{v.problems[0].metric}: {reason(v) if v.not_run_here else 'inconclusive: ' + reason(v)}"

    def side(name: str, where: dict, mean: float, std: float, n: int, groups: tuple) -> str:
        if name in v.missing_sides:
            return f"{name} [{selector(where)}] no run with a value (n=0)"
        if v.against and name == "B":
            return f"B = {number(mean)}, a constant"
        pooled = f", pooling {len(groups)} groups" if len(groups) > 1 else ""
        if n == 1:  # a run stopped part way may hold one seed: one value has no spread to show
            return f"{name} [{selector(where)}] {number(mean)} (n=1, one run: no spread{pooled})"
        return f"{name} [{selector(where)}] {number(mean)} ± {number(std, 2)} sd (n={n}{pooled})"

    pct = f"{v.level * 100:g}%"
    tost = f"{tost_level(v.level) * 100:g}%"
    head = f"{v.metric}: {side('A', v.a, v.mean_a, v.std_a, v.n_a, v.groups_a)} vs " \
           f"{side('B', v.b, v.mean_b, v.std_b, v.n_b, v.groups_b)}"
    dof = f", df {v.dof:.1f}" if not math.isnan(v.dof) else ""

    def interval(low: float, high: float) -> str:  # none from a side of one run: said, not printed as nan
        return f"no {pct} CI" if absent(low) or absent(high) else f"{pct} CI {bracket(low, high)}"

    tost_ci = f", {tost} CI {bracket(v.tost_low, v.tost_high)}" if not absent(v.tost_low) else ""
    if not v.ran:
        numbers, rule = f"no difference to take: {without_runs(v)}", ""
    elif v.test == "identical":
        numbers = f"A − B = {signed(v.effect)} on average, largest |A − B| of a pair {number(v.largest_difference)}"
        rule = f"supported if every pair differs by at most {number(v.margin or 0.0)}"
    elif v.test == "within":
        loss, low, high = v.loss
        numbers = f"loss B − A = {signed(loss)}, {interval(low, high)}{dof}"
        rule = f"supported if the CI lies under margin {number(v.margin)}"
    else:
        numbers = f"A − B = {signed(v.effect)}, {interval(v.low, v.high)}{dof}"
        threshold = 0.0 if v.margin is None else v.margin
        if v.test == "equivalent":
            numbers += tost_ci
            rule = (f"supported if the {tost} CI lies inside ±{number(threshold)} (equivalence, TOST); refuted if "
                    f"the {pct} CI lies wholly outside it")
        else:
            where = {"greater": "above", "less": "below", "at_most": "below"}[v.test]
            bound = number(-threshold if v.test == "less" else threshold) if threshold else "0"
            rule = f"supported if the {pct} CI lies {where} {bound}"
            if v.smallest_effect:
                numbers += tost_ci
                rule += (f" and the estimate reaches {signed(_signed_bound(v, v.smallest_effect))}; refuted "
                         f"(negligible) if the {tost} CI lies inside the band {bound} ± {number(v.smallest_effect)} "
                         f"(equivalence, TOST), else refuted (opposite) if the {pct} CI lies on the other side; "
                         f"inconclusive ({SMALL_TEXT}) if the {pct} CI lies {where} {bound} with the estimate "
                         f"short of the smallest effect")
    notes = [reason(v)] if v.problems else []
    if undecided_text(v):
        notes.append(undecided_text(v))
    if seeds_text(v):
        notes.append(seeds_text(v))
    tail = f" ({'; '.join(notes)})" if notes else ""
    # Why it is undecided opens the notes that follow: said once, not in the outcome as well.
    said = v.verdict if undecided_text(v) else outcome(v)
    return f"{head}; {numbers}; {rule + ': ' if rule else ''}{said}{tail}"


def check_notes_text(notes, verdict: Verdict) -> str:
    """What a check's verdict row says beside its interval (``evaluate.CheckNotes``): sides resting on
    fewer runs than planned."""
    parts = []
    for side, have, planned in (("A", verdict.n_a, notes.planned_a), ("B", verdict.n_b, notes.planned_b)):
        if planned and have < planned:
            parts.append(f"{side} rests on {have} of the {planned} runs planned "
                         f"({planned - have} failed, held by another process, or not run)")
    return "; ".join(parts)


def setting_text(setting: Mapping[str, Any]) -> str:
    """One setting of a "can" check's grid as the page names it: ``regularizer.p=0.5``."""
    return ", ".join(f"{key}={value}" for key, value in setting.items())


def grid_text(v: Verdict) -> str:
    """A "can" check's settings with what each found (``claims.grid``), or ''."""
    if not v.cells:
        return ""
    parts = []
    for setting, cell in v.cells:
        where = setting_text(setting)
        if not cell.ran:
            parts.append(f"{where}: not run in this profile")
            continue
        found = outcome(cell) + f", {signed(cell.effect)} {bracket(cell.low, cell.high)}"
        if not math.isnan(cell.p_holm):
            found += f", Holm-adjusted p across the settings {p_number(cell.p_holm)}"
        parts.append(f"{where}: {found}")
    return "decided over its settings (supported if one supports it after Holm's correction across them, refuted " \
           "only if every one refutes it): " + "; ".join(parts)


def decision(v: Verdict) -> str:
    """The outcome two readings of a check are compared by (the last epoch against the early-stopping one, a
    choice against its runner-up): ``outcome``, but a "can" check refuted wherever it ran with a setting not
    run is plain inconclusive. That reason says which settings ran, the same in both readings, and not what
    their intervals decided (refuted at every rate run, or undecided at one, is the same verdict)."""
    return v.verdict if v.undecided_as == UNTRIED else outcome(v)


def outcome_before_holm(v: Verdict) -> str:
    """The decision the check's own interval gave, before Holm's correction across the report or a
    precondition not met withdrew it."""
    return v.before_holm or v.before_precondition or decision(v)


def reads_alike(reading: Verdict, primary: Verdict) -> bool:
    """Whether another reading of the primary check (at the early-stopping epoch, with B matched, at the
    runner-ups) reaches the decision the primary's own interval reached, before Holm's correction."""
    return decision(reading) == outcome_before_holm(primary)


def budget_changes(primary: Verdict, early: Verdict | None) -> bool | None:
    """Whether the primary check's outcome changes at the early-stopping epoch (None: not measured there).
    Both are read before Holm's correction, which only the profile's own budget goes through."""
    return None if early is None else not reads_alike(early, primary)


def early_stop_text(primary: Verdict | None, early: Verdict | None, measured: bool) -> str:
    """Whether the primary check's verdict changes when judged at the early-stopping (best-validation)
    epoch instead of the last: the budget check that replaces a convergence mark."""
    if primary is None or primary.not_run_here:
        return ""
    if early is None:
        return ("budget not checked: this metric is not measured again at the early-stopping epoch" if measured
                else "")
    same = budget_changes(primary, early) is False
    at = f"{outcome(early)}, {signed(early.effect)} {bracket(early.low, early.high)}"
    if same:
        withdrawn_by = ("Holm's correction" if primary.before_holm
                        else "its precondition" if primary.before_precondition else "")
        return (f"the same verdict at the early-stopping (best-validation) epoch ({at})" if not withdrawn_by
                else f"at the early-stopping (best-validation) epoch the same as its own interval gives before "
                     f"{withdrawn_by} withdrew it ({at})")
    return f"the verdict changes at the early-stopping (best-validation) epoch: {at}"

# A regime map's axes in words (``claims.regime``): the record column -> what it varies.
AXIS_NAMES = {"model.hidden": "width", "dataset.train_subset": "training images", "train.epochs": "epochs",
              "regularizer.p": "dropout rate", "train.lr": "learning rate"}


def axis_name(column: str, names: dict[str, str] | None = None) -> str:
    """An axis in words: ``names`` (a claim's map's own, RegimeMap.axis_names) first, then the usual name."""
    return (names or {}).get(column) or AXIS_NAMES.get(column, column)


def axis_value(value: Any) -> str:
    """An axis value in words: a width of equal layers as one number (256 for [256, 256]), no training
    subset as "all", whole or half thousands as 6k and 12.5k."""
    if value is None:
        return "all"
    if isinstance(value, (list, tuple)):
        parts = [axis_value(v) for v in value]
        return parts[0] if len(set(parts)) == 1 else "-".join(parts)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return display(value)
    if float(value).is_integer() and value >= 1000 and value % 500 == 0:
        return f"{value / 1000:g}k"  # training images: 6k, 12.5k, 50k (a width of 1024 stays 1024)
    return f"{int(value)}" if float(value).is_integer() else f"{value:g}"


def axis_order(value: Any) -> float:
    """Where an axis value lies on its axis: the widest layer of a width; no training subset (every image)
    beyond any subset."""
    if value is None:
        return math.inf
    if isinstance(value, (list, tuple)):
        return max((axis_order(v) for v in value), default=math.nan)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def without_runs(v: Verdict) -> str:
    """The sides of a check that have no run with a value, in words ("B without a run")."""
    return f"{' and '.join(v.missing_sides)} without a run"


def shown_setting(cell: Verdict) -> dict:
    """A "can" check's verdict (decided over its grid): the grid setting whose numbers it shows, or {}."""
    return next((setting for setting, _ in cell.cells if all(cell.a.get(k) == v for k, v in setting.items())), {})


def cell_kind(cell: Verdict) -> str:
    """What a regime map's cell found, in words: holds, flips (opposite), negligible, undecided (by its interval
    or by a precondition not met), not run."""
    if not cell.ran:
        return "not run"
    if cell.verdict == "supported":
        return "holds"
    if cell.verdict == "refuted":
        # A within / at most / equivalence check has no direction to flip: it fails its margin.
        # A "can" check refuted over its grid may have found both (claims.grid).
        return {"opposite": "flips (opposite)", "negligible": "negligible",
                "opposite or negligible": "negligible or flips"}.get(cell.refuted_as, "fails its margin")
    return WITHHELD if cell.undecided_as == PRECONDITION else "undecided"


WITHHELD = f"undecided ({PRECONDITION_TEXT})"  # a cell decided on its own, withheld by a precondition
MAP_KINDS = ("holds", "flips (opposite)", "negligible", "negligible or flips", "fails its margin", "undecided",
             WITHHELD, "not run")


def _where_on_axis(column: str, values: list, all_values: list, names: dict[str, str] | None = None) -> str | None:
    """``values`` of one axis as a bound when they are a tail of it (width ≥ 512), every value tried, or
    None (not a range)."""
    name = axis_name(column, names)
    ordered = sorted(all_values, key=axis_order)
    if len(values) == len(ordered):
        return f"every {name} tried"
    keys = sorted(axis_order(v) for v in values)
    if len(values) > 1 and all(not math.isnan(k) for k in keys):
        if [axis_order(v) for v in ordered[-len(values):]] == keys:
            return f"{name} ≥ {axis_value(min(values, key=axis_order))}"
        if [axis_order(v) for v in ordered[:len(values)]] == keys:
            return f"{name} ≤ {axis_value(max(values, key=axis_order))}"
    return None


def where_text(v: Verdict, names: dict[str, str] | None = None, home_regime: bool = True) -> str:
    """Where on a regime map (``claims.regime``: cells as ``map_cells`` makes them, the center first) the
    claim holds, flips, is negligible or undecided, one factor at a time, and the home regime's cell; ''
    without cells. The center cell lies on every axis: a range of an axis takes it in (width ≥ 256 when
    the center is 256 and holds with the wider ones); otherwise it is named on its own, "the center".
    ``names``: the map's own names of its axes (``MapLayout.names``)."""
    if not v.cells:
        return ""
    center, center_verdict = v.cells[0]
    on_axis: dict[str, list] = {column: [(center[column], center_verdict)] for column in center}
    for cell, verdict in v.cells[1:]:
        moved = [c for c in center if c in cell and axis_value(cell[c]) != axis_value(center[c])]
        for column in moved[:1]:
            on_axis[column].append((cell[column], verdict))
    center_kind = cell_kind(center_verdict)
    phrases: dict[str, list[str]] = {kind: [] for kind in MAP_KINDS}
    covered = False
    for column, points in on_axis.items():
        if len(points) < 2:
            continue  # an axis of the center alone says nothing of its own
        for kind in MAP_KINDS:
            off = [value for value, verdict in points[1:] if cell_kind(verdict) == kind]
            with_center = ([points[0][0]] if center_kind == kind else []) + off
            ranged = _where_on_axis(column, with_center, [value for value, _ in points], names) if with_center else None
            if ranged and center_kind == kind:
                covered = True
            elif off:
                ranged = _where_on_axis(column, off, [value for value, _ in points], names) if len(off) > 1 else None
            if ranged or off:
                phrases[kind].append(ranged or f"{axis_name(column, names)} " + ", ".join(
                    axis_value(x) for x in sorted(off, key=axis_order)))
    center_words = ", ".join(f"{axis_name(c, names)} {axis_value(value)}" for c, value in center.items())
    if not covered:
        phrases[center_kind].append(f"the center ({center_words})")
    parts = [f"{kind} at " + " and at ".join(found) for kind, found in phrases.items() if found]
    home = [(cell, verdict) for cell, verdict in v.cells if verdict.home]
    # A secondary check (``home_regime`` false) leaves the home regime to its primary's line.
    if home_regime and home:
        cell, verdict = home[0]
        moved = [c for c in cell if c in center and axis_value(cell[c]) != axis_value(center[c])]
        at = ", ".join(f"{axis_name(c, names)} {axis_value(cell[c])}" for c in moved) or f"the center ({center_words})"
        parts.append(f"home regime: {at} ({cell_kind(verdict)})")
    elif home_regime:
        parts.append("home regime: not on the map")
    return "; ".join(parts)
