"""A claim's regime map as a figure: its primary check's effect A − B in each cell of the map, against scale.

One panel per axis of the map (``claims.regime``): x is the axis value (logarithmic for widths, images
and epochs spanning a factor of 4 or more; no training subset, "all", drawn beyond the largest subset),
y the effect A − B with its 95% interval as error bars, the negligible band (± the smallest effect that
matters around the check's threshold) shaded and the threshold drawn. Each point has its cell's colour
and marker (holds, flips, negligible, undecided after Holm's correction across the cells; a cell not run
is a grey cross on the threshold line). The center cell (the experiment's own setting) lies on every
panel, on a dotted vertical line, "(center)" under its tick; the home regime's cell is ringed and labelled
"home". The panels share their y axis, so effects compare across axes.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from sparsebench.claims.checks import Verdict
from sparsebench.claims.regime import MapLayout, cell_axis
from sparsebench.claims.wording import (
    WITHHELD,
    axis_name,
    axis_order,
    axis_value,
    cell_kind,
    selector,
    shown_setting,
)
from sparsebench.report import plots
from sparsebench.report.names import difference_label
from sparsebench.report.numbers import number
from sparsebench.report.stats import SIGNED
from sparsebench.report.style import VERDICT_STYLES

# Marker and colour of each outcome of a cell (``wording.cell_kind``).
STYLES = {"holds": ("o", VERDICT_STYLES["supported"].color), "flips (opposite)": ("v", VERDICT_STYLES["refuted"].color),
          "negligible": ("s", VERDICT_STYLES["refuted"].color),
          "negligible or flips": ("X", VERDICT_STYLES["refuted"].color),
          "fails its margin": ("P", VERDICT_STYLES["refuted"].color),
          "undecided": ("D", VERDICT_STYLES["inconclusive"].color),
          WITHHELD: ("d", VERDICT_STYLES["inconclusive"].color), "not run": ("x", VERDICT_STYLES["not run"].color)}


_NO_CENTER = object()  # a map without a center cell: no axis value is it


def _grid_label_of(setting: dict) -> str:
    return ", ".join(f"{key.rsplit('.', 1)[-1]} {value}" for key, value in setting.items())


def _positions(values: list) -> tuple[list[float], bool]:
    """x of each axis value, and whether the axis is logarithmic: "all" (None) one step beyond the largest."""
    finite = [axis_order(v) for v in values if v is not None and math.isfinite(axis_order(v))]
    # Scale spans a factor of 4 or more (or reaches "all", a training set's whole): doublings read best.
    log = bool(finite) and min(finite) > 0 and (max(finite) / min(finite) >= 4 or None in values)
    top = max(finite, default=1.0)
    beyond = top * 2 if log else top + max(1.0, (top - min(finite, default=0.0)) / 3)
    return [beyond if v is None else axis_order(v) for v in values], log


def plot_regime_map(v: Verdict, layout: MapLayout, out_dir: str | Path, *, name: str, title: str = "",
                    formats: Sequence[str] = plots.FORMATS) -> list[Path]:
    """The map of ``v`` (a verdict of ``regime.judge_map``; its cells as ``map_cells`` makes them from
    ``layout``). Writes ``out_dir/<name>.<format>`` and returns the paths; [] when ``v`` has no cells."""
    if not v.cells:
        return []
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import NullLocator

    center_cell = next((cell for cell, _ in v.cells if cell_axis(cell, layout.center) is None), None)
    columns = [c for c in layout.axes if any(cell_axis(cell, layout.center) == c for cell, _ in v.cells)] \
        or list(layout.axes)[:1]
    fig = Figure(figsize=(4.4 * len(columns) + 0.6, 4.3), layout="constrained")
    panels = fig.subplots(1, len(columns), sharey=True, squeeze=False)[0]
    first = v.cells[0][1]
    # The bound on A − B: a "within" check's margin is on the loss B − A, so it lies below zero.
    threshold = -(first.margin or 0.0) if first.test == "within" else first.margin or 0.0
    band = first.smallest_effect
    for ax, column in zip(panels, columns):
        points = [(cell, cell_verdict) for cell, cell_verdict in v.cells
                  if cell_axis(cell, layout.center) in (None, column)]
        points.sort(key=lambda item: axis_order(item[0].get(column)))
        values = [cell.get(column) for cell, _ in points]
        xs, log = _positions(values)
        if band:
            ax.axhspan(threshold - band, threshold + band, color="0.88", zorder=0)
        ax.axhline(threshold, color="0.45", linewidth=0.9, linestyle=":", zorder=1)
        for x, (cell, cell_verdict) in zip(xs, points):
            kind = cell_kind(cell_verdict)
            marker, colour = STYLES[kind]
            if kind == "not run" or not math.isfinite(cell_verdict.effect):
                ax.plot([x], [threshold], marker="x", markersize=8, color=STYLES["not run"][1], linestyle="", zorder=3)
                continue
            below, above = cell_verdict.effect - cell_verdict.low, cell_verdict.high - cell_verdict.effect
            bars = [[below], [above]] if math.isfinite(below) and math.isfinite(above) else None
            ax.errorbar([x], [cell_verdict.effect], yerr=bars, marker=marker, markersize=7, color=colour,
                        capsize=3, linewidth=1.6, linestyle="", zorder=3)
            if cell_verdict.cells and cell_verdict.verdict != "refuted":
                # A "can" check's cell shows one setting of its grid: name it beside the point.
                ax.annotate(_grid_label_of(shown_setting(cell_verdict)), (x, cell_verdict.effect), xytext=(7, -3),
                            textcoords="offset points", fontsize="x-small", color="0.3")
            if cell_verdict.home:
                ax.plot([x], [cell_verdict.effect], marker="o", markersize=17, markerfacecolor="none",
                        markeredgecolor="black", markeredgewidth=1.4, linestyle="", zorder=4)
                rightmost = x == max(xs)  # the label goes inward, not off the panel
                ax.annotate("home", (x, cell_verdict.effect), xytext=(-12 if rightmost else 12, 8),
                            textcoords="offset points", ha="right" if rightmost else "left", fontsize="small",
                            fontweight="bold")
        center_value = center_cell.get(column) if center_cell is not None else _NO_CENTER
        if center_value in values:
            ax.axvline(xs[values.index(center_value)], color="0.6", linewidth=0.8, linestyle="--", zorder=0)
        if log:
            ax.set_xscale("log", base=2)
            lo, hi = min(xs), max(xs)
            ax.set_xlim(lo / 1.4, hi * 1.4)
        else:
            lo, hi = min(xs), max(xs)
            pad = (hi - lo) * 0.12 or 1.0
            ax.set_xlim(lo - pad, hi + pad)
        # The center named under its tick: a label inside the panel collided with the cells plotted there.
        ax.set_xticks(xs, [axis_value(value) + ("\n(center)" if center_value is not _NO_CENTER and value == center_value
                                                else "") for value in values])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(axis_name(column, layout.names) + (" (log scale)" if log else ""))
        ax.grid(axis="y", alpha=0.3)
    # Wrapped: a metric's full name on one line is taller than the panels, and the saved figure grows to hold it.
    panels[0].set_ylabel(textwrap.fill(difference_label(first.metric, "A − B, "), 48) + "\n95% interval over seeds")
    # The outcomes a check of this kind can have: a margin's check neither flips nor is negligible.
    impossible = {"fails its margin"} if first.test in SIGNED else {"flips (opposite)", "negligible"}
    if not any(cell_kind(cell) == WITHHELD for _, cell in v.cells):  # only a claim with preconditions has them
        impossible.add(WITHHELD)
    kinds = [k for k in STYLES if k not in impossible]
    handles = [Line2D([], [], marker=STYLES[kind][0], color=STYLES[kind][1], linestyle="") for kind in kinds]
    labels = kinds
    handles += [Line2D([], [], marker="o", markersize=12, markerfacecolor="none", markeredgecolor="black",
                       linestyle="")]
    labels += ["home regime" if any(cell.home for _, cell in v.cells) else "home regime: not on the map"]
    if band:
        handles.append(Patch(color="0.88"))
        labels.append(f"negligible band (± {number(band)})")
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small", frameon=False)
    # The sides without the cell's own setting: what the check compares in every cell.
    grid_keys = {key for setting, _ in first.cells for key in setting}  # a "can" check's: each cell shows its own
    a = selector({k: x for k, x in v.a.items() if k not in layout.axes and k not in grid_keys})
    b = "" if v.against else selector({k: x for k, x in v.b.items() if k not in layout.axes})
    sides = f"A = {a}" + (f", B = {b}" if b and b != a else "")
    if grid_keys:
        sides += (f"; each cell decided over {', '.join(_grid_label_of(setting) for setting, _ in first.cells)} "
                  f"(the setting shown is named; where each refutes it, the weakest)")
    head = f"{title}: " if title else ""
    withdrawn = f", {v.before_holm} before Holm's correction across the report's claims" if v.before_holm else ""
    fig.suptitle(f"{head}{v.verdict} across the map (one factor at a time; Holm across the cells{withdrawn})\n{sides}",
                 fontsize="medium")
    return plots.save_figure(fig, out_dir, name, formats)


__all__ = ["STYLES", "plot_regime_map"]
