"""What a check's numbers say, in words: the one-line description of a verdict, why it is inconclusive,
and what its verdict row must say beside its interval. The numbers come from ``claims.checks``; the
pages, the console and the summary figure all take their sentences from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sparsebench.claims.checks import (AGAINST, BEFORE_ANY_INTERVAL, NO_COLUMN, NO_RUNS, NO_SELECTOR_COLUMN, ONE_RUN,
                                       PAIRED, SHARED_RUNS, UNPAIRED, ZERO_SPREAD, Problem, Verdict)
from sparsebench.report.aggregate import display
from sparsebench.report.stats import MAX_SEEDS


def number(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}g}"


def signed(x: float, digits: int = 4) -> str:
    return ("+" if x > 0 else "") + number(x, digits)


def selector(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={display(v)}" for k, v in where.items()) or "all runs"


def problem_text(problem: Problem, verdict: Verdict) -> str:
    """One reason a check is inconclusive, in words; the numbers it quotes are the verdict's."""
    kind = problem.kind
    if kind == NO_COLUMN:
        return f"no column {problem.columns[0]!r} in the results"
    if kind == NO_SELECTOR_COLUMN:
        return f"{problem.side} ({selector(problem.where)}): no run has {', '.join(map(repr, problem.columns))}"
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
    return "; ".join(problem_text(problem, verdict) for problem in verdict.problems)


def seeds_needed_text(needed: int) -> str:
    return f"{needed}" if needed <= MAX_SEEDS else f"more than {MAX_SEEDS}"


def description(v: Verdict) -> str:
    """The check in one line: both sides' means and spreads, the interval, the rule and the outcome."""
    if v.problems and v.problems[0].kind in BEFORE_ANY_INTERVAL:
        return f"{v.problems[0].metric}: inconclusive: {reason(v)}"

    def side(name: str, where: dict, mean: float, std: float, n: int, groups: tuple) -> str:
        pooled = f", pooling {len(groups)} groups" if len(groups) > 1 else ""
        return f"{name} [{selector(where)}] {number(mean)} ± {number(std, 2)} sd (n={n}{pooled})"

    pct = f"{v.level * 100:g}%"
    head = f"{v.metric}: {side('A', v.a, v.mean_a, v.std_a, v.n_a, v.groups_a)} vs " \
           f"{side('B', v.b, v.mean_b, v.std_b, v.n_b, v.groups_b)}"
    dof = f", df {v.dof:.1f}" if not math.isnan(v.dof) else ""
    if v.test == "identical":
        numbers = f"A − B = {signed(v.effect)} on average, largest |A − B| of a pair {number(v.largest_difference)}"
        rule = f"supported if every pair differs by at most {number(v.margin or 0.0)}"
    elif v.test == "within":
        loss, low, high = v.loss
        numbers = f"loss B − A = {signed(loss)}, {pct} CI [{signed(low)}, {signed(high)}]{dof}"
        rule = f"supported if the CI lies under margin {number(v.margin)}"
    else:
        numbers = f"A − B = {signed(v.effect)}, {pct} CI [{signed(v.low)}, {signed(v.high)}]{dof}"
        threshold = 0.0 if v.margin is None else v.margin
        if v.test == "equivalent":
            rule = f"supported if the CI lies inside ±{number(threshold)}"
        else:
            where = {"greater": "above", "less": "below", "at_most": "below"}[v.test]
            bound = number(-threshold if v.test == "less" else threshold) if threshold else "0"
            rule = f"supported if the CI lies {where} {bound}"
            if v.smallest_effect:
                rule += (f" and not wholly inside the negligible band ±{number(v.smallest_effect)}; refuted if it "
                         f"lies on the other side (opposite) or wholly inside the band (negligible)")
    outcome = v.verdict + (f" ({v.refuted_as})" if v.refuted_as else "")
    notes = [reason(v)] if v.problems else []
    if v.seeds_needed is not None:
        notes.append(f"about {seeds_needed_text(v.seeds_needed)} seeds per group would decide it at this spread")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return f"{head}; {numbers}; {rule}: {outcome}{tail}"


def check_notes_text(notes, verdict: Verdict) -> str:
    """What a check's verdict row says beside its interval (``evaluate.CheckNotes``): sides resting on
    fewer runs than planned, runs that had not converged or whose convergence was not judged."""
    parts = []
    for side, have, planned in (("A", verdict.n_a, notes.planned_a), ("B", verdict.n_b, notes.planned_b)):
        if planned and have < planned:
            parts.append(f"{side} rests on {have} of the {planned} runs planned "
                         f"({planned - have} failed, held by another process, or not run)")
    if notes.unconverged:
        parts.append(f"{notes.unconverged} of its {notes.used} runs had not converged")
    if notes.unjudged:
        parts.append(f"convergence not judged for {notes.unjudged} of its {notes.used} runs (a set budget per task)")
    return "; ".join(parts)
