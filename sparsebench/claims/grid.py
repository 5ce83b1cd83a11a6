"""A "can" claim ("dropout *can* cost accuracy") decided over a declared grid of settings.

One configuration can confirm such a claim but never refute it. So its check names the settings it is
tried in (``Check.grid``, each merged into the check's A side) and is judged in each. The claim holds
if it holds somewhere: **supported** when some setting supports it after Holm's correction across the
settings the profile ran (the family of "it holds here" hypotheses); **refuted** only when every setting
refutes it, each of them run (an intersection: its p is the largest of theirs, no correction needed);
**inconclusive** otherwise. Settings the profile did not run (no record matches them) are left out of
Holm's family, keep the claim from being refuted, and are listed with every setting and what it found there;
a check refuted in every setting it ran, with others not run, is inconclusive "refuted in every setting run,
not in all of its settings" (``UNTRIED``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from sparsebench.claims.catalogue import Check
from sparsebench.claims.checks import ALPHA, UNTRIED, Verdict, judge
from sparsebench.report.stats import family_p, holm


def judge_check(rows: pd.DataFrame, check: Check) -> Verdict:
    """``check`` judged on ``rows``: over its grid when it has one, else once."""
    if not check.grid:
        return _judge(rows, check, check.a)
    return judge_grid(rows, check)


def _judge(rows: pd.DataFrame, check: Check, a: dict) -> Verdict:
    return judge(rows, check.metric, a, check.b, check.test, check.margin, relative=check.relative,
                 paired=check.paired, metric_b=check.metric_b, against=check.against,
                 smallest_effect=check.smallest_effect)


def judge_grid(rows: pd.DataFrame, check: Check) -> Verdict:
    """The deciding cell's verdict (see the module docstring), carrying every cell in ``cells``."""
    judged = [(dict(setting), _judge(rows, check, {**check.a, **setting})) for setting in check.grid]
    ran = [(setting, v) for setting, v in judged if v.ran]
    if not ran:
        return replace(judged[0][1], cells=tuple(judged))
    # The family of "it holds in this setting": a setting that did not support it counts with p = 1.
    p = [family_p(v.p_value, True) if v.verdict == "supported" and math.isfinite(v.p_value) else 1.0 for _, v in ran]
    adjusted = holm(p)
    cells = tuple((setting, replace(v, p_holm=float(q)) if v.verdict == "supported" else v)
                  for (setting, v), q in zip(ran, adjusted))
    cells += tuple((setting, v) for setting, v in judged if not v.ran)
    supported = [(q, v) for q, (_, v) in zip(adjusted, ran) if v.verdict == "supported" and q < ALPHA]
    if supported:
        q, best = min(supported, key=lambda item: item[0])
        return replace(best, p_value=float(q), cells=cells)
    # Refuted only when every setting of the grid ran and refuted: one configuration never refutes a "can"
    # claim, and a profile that runs part of the grid (the paper profile's K3) has not tried the rest.
    if len(ran) == len(judged) and all(v.verdict == "refuted" for _, v in ran):
        # Each p on the family's scale (an opposite branch's one-sided p doubled, TOST's as it is), as a grid's
        # p enters the report's family as it is (claims.evaluate.in_family).
        scaled = [(family_p(v.p_value, v.refuted_as != "negligible") if math.isfinite(v.p_value) else 1.0, v)
                  for _, v in ran]
        p, weakest = max(scaled, key=lambda item: item[0])
        how = {v.refuted_as for _, v in ran}
        return replace(weakest, p_value=p, refuted_as=how.pop() if len(how) == 1 else "opposite or negligible",
                       cells=cells)
    # Undecided: show a setting that supports it before the correction, else one whose interval is undecided.
    chosen = next((v for _, v in ran if v.verdict == "supported"), None) or \
        next((v for _, v in ran if v.verdict == "inconclusive"), ran[0][1])
    # Every setting run refutes it, but not every setting ran: say so, rather than leave "inconclusive" to
    # read as intervals that straddle.
    untried = all(v.verdict == "refuted" for _, v in ran)
    return replace(chosen, verdict="inconclusive", refuted_as="", p_value=math.nan, cells=cells,
                   undecided_as=UNTRIED if untried else chosen.undecided_as)


__all__ = ["judge_check", "judge_grid"]
