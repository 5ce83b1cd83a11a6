"""The summary figure at the top of the claims report: every claim's primary check on one axis.

Each row is one claim (``evaluate.decisive_check``): the measured effect with its 95% interval,
divided by the check's smallest effect that matters (greater / less) or by its margin (within /
at_most / equivalent), so that one band, [-1, 1], is the negligible band of every row, and turned so
that the claimed direction points right:

- greater / less: (A − B − margin) / smallest effect, negated for less. Supported when the interval lies
  right of 0 and not wholly inside the band; refuted when it lies left of 0 or wholly inside the band.
- within (A loses at most the margin against B): (A − B) / margin; supported when right of −1.
- at_most (A exceeds B by at most the margin): (B − A) / margin; supported when right of −1.
- equivalent: (A − B) / margin; supported when inside the band.

The axis is linear inside the band and logarithmic outside it (matplotlib's symlog), since effects run
from a fraction of the smallest effect to hundreds of it. Rows are coloured and shaped by verdict
(``report.style.VERDICT_STYLES``: a reader who cannot tell the colours apart tells the shapes; a regime map's row
also marks each of its cells with a tick in that cell's colour, its dot the deciding cell); a check without
an interval shows its point estimate hollow with the reason; an ``identical`` check (run-by-run
equality, no interval) shows a diamond at 0 with the largest difference of a pair; a claim the profile
holds but did not run says why on its row; the claims the profile does not hold are named under the axis.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sparsebench.claims.checks import Verdict
from sparsebench.claims.evaluate import ClaimResult, decisive_check, held
from sparsebench.claims.page import verdict_text
from sparsebench.claims.wording import reason
from sparsebench.report import plots
from sparsebench.report.names import arm_label, metric_name
from sparsebench.report.numbers import number, signed
from sparsebench.report.stats import MAX_SEEDS, SIGNED
from sparsebench.report.style import VERDICT_INK, VERDICT_STYLES

NAME = "claims_overview"


@dataclass(frozen=True)
class Scaled:
    """A check's effect on the common axis: ``x`` in [``low``, ``high``], in units of ``scale``."""

    x: float
    low: float
    high: float
    scale: float  # the smallest effect or the margin, in the metric's units
    scale_name: str  # "smallest effect" | "margin"


def scaled(check: Verdict) -> Scaled | None:
    """``check``'s effect and interval on the common axis (see the module docstring); None for an
    ``identical`` check or one without a scale (a smallest effect or margin of 0 or missing)."""
    if check.test in SIGNED:
        scale, scale_name = check.smallest_effect, "smallest effect"
        threshold = check.margin or 0.0
        sign = 1.0 if check.test == "greater" else -1.0
    elif check.test in ("within", "at_most", "equivalent"):
        scale, scale_name, threshold = check.margin, "margin", 0.0
        sign = -1.0 if check.test == "at_most" else 1.0
    else:
        return None
    if not scale or not math.isfinite(scale):
        return None
    ends = sorted(sign * (end - threshold) / scale for end in (check.low, check.high))
    return Scaled(sign * (check.effect - threshold) / scale, ends[0], ends[1], abs(scale), scale_name)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _sides(check: Verdict) -> str:
    a = " + ".join(map(arm_label, check.groups_a)) or ", ".join(f"{k}={v}" for k, v in check.a.items()) or "all runs"
    if "constant" in check.b:
        return f"{a} against {number(check.b['constant'])}"
    if check.b == check.a:
        return f"{a}, run by run"
    b = " + ".join(map(arm_label, check.groups_b)) or ", ".join(f"{k}={v}" for k, v in check.b.items())
    return f"{a} vs {b}"


def _row_label(result: ClaimResult, check: Verdict | None) -> str:
    if check is None:
        return f"{result.claim.id}  {_short(result.claim.statement, 52)}"
    return f"{result.claim.id}  {_short(metric_name(check.metric).name, 50)}\n{_short(_sides(check), 56)}"


def _g(x: float, sign: bool = True) -> str:
    """``x`` as the page writes it, with a typographic minus."""
    return (signed(x) if sign else number(x)).replace("-", "−")


def _right_text(result: ClaimResult, check: Verdict | None, where: Scaled | None) -> str:
    head = verdict_text(result)
    if check is None:
        return head
    if check.test == "identical":
        return head
    # The words and sign the report's table uses (``page.effect_text``): a within check is read as A's loss.
    word, (effect, low, high) = ("loss", check.loss) if check.test == "within" else \
        ("Δ", (check.effect, check.low, check.high))
    numbers = f"{word} {_g(effect)}" if math.isfinite(effect) else ""
    if math.isfinite(low):
        numbers += f" [{_g(low)}, {_g(high)}]"
    if where is not None:
        numbers += f"; 1 = {where.scale_name} {_g(where.scale, sign=False)}"
    if check.verdict == "inconclusive" and check.seeds_needed is not None:
        needed = check.seeds_needed
        numbers += f"; {f'~{needed}' if needed <= MAX_SEEDS else f'more than {MAX_SEEDS}'} seeds per group would decide"
    return f"{head}\n{textwrap.fill(numbers, 50)}" if numbers else head


def _cell_ticks(ax, check: Verdict, y: float, limit: float) -> None:
    """A regime map's row: every cell that ran as a tick at its effect, in its own verdict's colour, so a
    regime-dependent claim shows where its cells lie on both sides and not only its deciding cell."""
    for _, cell in check.cells:
        where = scaled(cell) if cell.ran else None
        if where is not None and math.isfinite(where.x):
            ax.plot([max(-limit, min(limit, where.x))], [y], marker="|", markersize=15, markeredgewidth=2,
                    color=VERDICT_STYLES.get(cell.verdict, VERDICT_STYLES["not run"]).color, alpha=0.8, zorder=2)


def plot_claims_overview(results: Sequence[ClaimResult], out_dir: str | Path, *, name: str = NAME,
                         formats: Sequence[str] = plots.FORMATS) -> list[Path]:
    """The summary figure of ``results`` (claims only; protocols have no verdict): one row per claim the
    profile holds, in the order given. Writes ``out_dir/<name>.<format>`` and returns the paths ([] without any claim, or
    when no claim has a check to draw: a figure of rows saying "not run" tells nothing the page's list does
    not, and drawing it was a fifth of planning a profile with ``run=false``)."""
    claims = [r for r in results if r.claim.kind == "claim"]
    # A claim the profile does not hold gets no row: in the map profile such rows were half the figure, and
    # said only what the page's list says. A claim the profile holds but could not run keeps its row.
    rows = [(result, decisive_check(result)) for result in held(claims)]
    outside = [result.claim.id for result in claims if result.outside_profile]
    if all(check is None for _, check in rows):
        return []
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, NullLocator

    placed = [scaled(check) if check is not None else None for _, check in rows]
    reach = max([3.0] + [abs(v) for p in placed if p is not None for v in (p.x, p.low, p.high) if math.isfinite(v)])
    limit = reach * 1.6

    fig = Figure(figsize=(13.0, 0.6 * len(rows) + 2.2), layout="constrained")
    # The verdicts and raw numbers get a column of their own, so that their length never narrows the axis.
    ax, side = fig.subplots(1, 2, sharey=True, width_ratios=[3.9, 1.6])
    side.set_axis_off()
    ax.axvspan(-1, 1, color="0.88", zorder=0)
    ax.axvline(0, color="0.45", linewidth=0.9, linestyle=":", zorder=1)
    for y, ((result, check), where) in enumerate(zip(rows, placed)):
        # Each verdict has a shape as well as a colour (Okabe-Ito's), so that no reader needs the colour.
        style = VERDICT_STYLES.get(result.verdict, VERDICT_STYLES["not run"])
        colour = style.color
        text_colour = VERDICT_INK.get(result.verdict, VERDICT_INK["not run"])
        note = ""
        if check is None:
            note = f"not run: {result.reason}" if result.reason else "not run"
        elif check.test == "identical":
            ax.plot([0], [y], marker="D", markersize=8, color=colour, zorder=3)
            note = f"identical run by run: largest |A − B| of a pair {number(check.largest_difference, 3)}"
        elif where is None:
            note = f"no common scale: {check.test} check without a smallest effect or margin"
        elif math.isfinite(where.low):
            ax.plot([where.low, where.high], [y, y], color=colour, linewidth=2.6, solid_capstyle="butt", zorder=2)
            ax.plot([where.x], [y], marker=style.marker, markersize=9, color=colour, markeredgecolor="black",
                    markeredgewidth=0.6, zorder=3)
        else:
            if math.isfinite(where.x):
                ax.plot([max(-limit, min(limit, where.x))], [y], marker=style.marker, markersize=9, markerfacecolor="white",
                        markeredgecolor=colour, markeredgewidth=1.6, zorder=3)
            note = reason(check) if check.not_run_here else "no interval: " + (reason(check) or "too few runs")
        if check is not None and result.regime is not None:
            _cell_ticks(ax, check, y, limit)
        if note:
            x_note = where.x if where is not None and math.isfinite(where.x) and check is not None else 0.0
            ax.annotate(_short(note, 90), (max(-limit, min(limit, x_note)), y), xytext=(8, 6),
                        textcoords="offset points", fontsize="small", color=text_colour, style="italic", va="bottom")
        side.text(0.0, y, _right_text(result, check, where), va="center", fontsize="small", color=text_colour)
    ax.set_yticks(range(len(rows)), [_row_label(result, check) for result, check in rows], fontsize="small")
    ax.set_ylim(len(rows) - 0.5, -0.7)
    ax.set_xscale("symlog", linthresh=1.0, linscale=1.5)
    ax.set_xlim(-limit, limit)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}".replace("-", "−")))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("effect in the claimed direction, in units of the check's smallest effect that matters "
                  "(greater / less) or of its margin (within / at most / equivalent)\n"
                  "dot: measured effect; bar: its 95% interval; axis linear inside ±1, logarithmic beyond; "
                  "‡ changes at the early-stopping epoch, † fewer runs than planned"
                  + (f"\nnot in this profile, so not drawn: {', '.join(outside)}" if outside else ""))
    ax.annotate("← against the claim", (0.0, 1.0), xycoords="axes fraction", xytext=(4, 4),
                textcoords="offset points", fontsize="small", color="0.35")
    ax.annotate("as claimed →", (1.0, 1.0), xycoords="axes fraction", xytext=(-4, 4), textcoords="offset points",
                ha="right", fontsize="small", color="0.35")
    handles = [Line2D([], [], color=s.color, marker=s.marker, markersize=9, markeredgecolor="black", markeredgewidth=0.6,
                      linewidth=2.6) for s in VERDICT_STYLES.values()]
    handles += [Patch(color="0.88"), Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle=""),
                Line2D([], [], color="0.3", marker="D", linestyle="")]
    labels = [*VERDICT_STYLES, "negligible band (± smallest effect) or the margin", "no interval",
              "identical test (run by run)"]
    if any(r.regime is not None for r, _ in rows):
        handles.append(Line2D([], [], color="0.3", marker="|", markersize=12, markeredgewidth=2, linestyle=""))
        labels.append("a cell of a regime map (dot: its deciding cell)")
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small", frameon=False)
    fig.suptitle("Every claim's primary check: measured effect and 95% interval on a common scale")
    return plots.save_figure(fig, out_dir, name, formats)


__all__ = ["NAME", "Scaled", "plot_claims_overview", "scaled"]
