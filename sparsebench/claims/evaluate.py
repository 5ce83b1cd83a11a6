"""A claim's verdict from the records: its checks through ``report.stats.compare``, its table, its figure.

A claim is supported when every check is supported, refuted when any check is refuted, and
inconclusive otherwise. A protocol (a paper's table) has no checks and no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sparsebench.claims.catalogue import Claim
from sparsebench.report import plots
from sparsebench.report.aggregate import make_labels
from sparsebench.report.stats import Verdict, compare
from sparsebench.report.tables import format_cell, summarize

NOT_RUN = "not run"


@dataclass
class ClaimResult:
    claim: Claim
    verdict: str  # supported | refuted | inconclusive | not run | protocol
    checks: list[Verdict] = field(default_factory=list)
    runs: int = 0
    table: pd.DataFrame | None = None  # one row per group, one formatted column per metric
    figures: list[Path] = field(default_factory=list)
    reason: str = ""  # why a claim was not run


def decisive_check(result: ClaimResult) -> Verdict | None:
    """The check a one-line summary shows: the first whose verdict is the claim's (the refuting check of
    a refuted claim, an undecided one of an inconclusive claim), else the first."""
    for check in result.checks:
        if check.verdict == result.verdict:
            return check
    return result.checks[0] if result.checks else None


def combine(verdicts: list[str]) -> str:
    if any(v == "refuted" for v in verdicts):
        return "refuted"
    return "supported" if verdicts and all(v == "supported" for v in verdicts) else "inconclusive"


def claim_labels(rows: pd.DataFrame) -> pd.Series:
    """Readable group labels: what varies between the groups; for runs of several experiments, the
    experiment's name followed by what varies within it (its settings differ in many keys at once)."""
    if rows["experiment"].nunique() < 2:
        return make_labels(rows)
    labels = pd.Series(index=rows.index, dtype=object)
    for experiment, members in rows.groupby("experiment", sort=False):
        inner = make_labels(members) if members["group"].nunique() > 1 else pd.Series("", index=members.index)
        labels[members.index] = [f"{experiment} {label}".strip() for label in inner]
    return labels


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


def evaluate(claim: Claim, df: pd.DataFrame, figures_dir: Path, unavailable: dict[str, str]) -> ClaimResult:
    """The claim judged on ``df`` (the records of the runs planned for it; any experiment's)."""
    missing = [e for e in claim.experiments if e in unavailable]
    if missing:
        return ClaimResult(claim, NOT_RUN, reason="; ".join(f"{e}: {unavailable[e]}" for e in missing))
    rows = df[df["experiment"].isin(claim.experiments)] if "experiment" in df.columns else df.iloc[0:0]
    if rows.empty:
        return ClaimResult(claim, NOT_RUN, reason="no completed run of " + ", ".join(claim.experiments))
    rows = rows.assign(label=claim_labels(rows))
    rows.attrs[plots.KEEP_LABELS] = True
    checks = [compare(rows, c.metric, c.a, c.b, c.test, c.margin, relative=c.relative, paired=c.paired,
                      metric_b=c.metric_b, against=c.against) for c in claim.checks]
    verdict = "protocol" if claim.kind == "protocol" else combine([c.verdict for c in checks])
    figures = []
    if claim.figure:
        draw = getattr(plots, f"plot_{claim.figure}")
        figures = draw(rows, figures_dir, name=f"{claim.id}_{claim.figure}")
    return ClaimResult(claim, verdict, checks, len(rows), claim_table(rows, claim.metrics), figures)
