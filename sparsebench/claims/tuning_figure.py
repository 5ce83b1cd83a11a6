"""The tuning curves of a tuned experiment (``claims.tuning``): one panel per arm, its validation metric
against the learning rate at each rung, one line per value of the arm's other setting, the chosen point
ringed. A reader sees whether the chosen point lies inside the grid or at its edge (where the grid
should have been wider). An experiment with more arms than a page holds (a regime map's cells) has its
table only."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from sparsebench.claims.tuning import Tuning
from sparsebench.report import plots
from sparsebench.report.names import arm_label, metric_name
from sparsebench.report.style import OKABE_ITO
from sparsebench.sweep import override_text

LR = "train.lr"
RUNG_STYLES = ("o", "s", "D", "^")
MAX_PANELS = 9


def plot_tuning(tuning: Tuning, out_dir: Path) -> list[Path]:
    """The figure's files (PNG and PDF), or none when no trial has a score yet. An arm with no trial
    recorded yet (a long tuning, resumed across sittings) has its panel, saying so."""
    arms = tuning.arms
    if not any(_scored(arm) for arm in arms) or len(arms) > MAX_PANELS:
        return []  # a regime map's dozens of cell-arms: its table says more than panels
    from matplotlib.figure import Figure

    columns = min(len(arms), 3)
    rows = math.ceil(len(arms) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, arm in zip(axes, arms):
        if len(arms) > 1:
            ax.set_title(arm_label(arm.label), fontsize="medium")
        if not _scored(arm):
            ax.text(0.5, 0.5, "no trial recorded yet", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        keys = list(arm.points[0])
        x_key = LR if LR in keys else keys[0]
        others = [k for k in keys if k != x_key]
        def other_of(point: dict) -> tuple:  # the values of the other settings, as keys (k-winners' k is a list)
            return tuple(override_text(point[k]) for k in others)

        # Okabe-Ito's colours but black, which rings the chosen point.
        palette = [c for c in OKABE_ITO.values() if c != OKABE_ITO["black"]]
        tried = [*arm.points, *(t.point for rung in arm.trials for t in rung)]  # the grid, then beyond its edges
        colours = {key: palette[n % len(palette)] for n, key in enumerate(dict.fromkeys(other_of(p) for p in tried))}
        last = len(arm.trials) - 1
        for rung, trials in enumerate(arm.trials):
            series: dict[tuple, list] = {}
            for t in trials:
                if t.score is not None and math.isfinite(t.score):
                    series.setdefault(other_of(t.point), []).append((t.point[x_key], t.score))
            for other, points in series.items():
                points.sort()
                label = ", ".join(f"{_short(k)} {v}" for k, v in zip(others, other))
                epochs = f"{trials[0].epochs} epoch{'s' if trials[0].epochs > 1 else ''}"
                ax.plot([p[0] for p in points], [p[1] for p in points], marker=RUNG_STYLES[rung % 4],
                        color=colours[other], linestyle="-" if rung == last else ":",
                        fillstyle="full" if rung == last else "none",
                        label=f"{label}, {epochs}" if label else epochs)
        # A failed trial (its loss diverged) has no score: marked on the panel's floor, so the grid's edge it
        # tried stays in sight.
        failed = sorted({t.point[x_key] for rung in arm.trials for t in rung
                         if t.score is not None and not math.isfinite(t.score)})
        if failed:
            ax.plot(failed, [ax.get_ylim()[0]] * len(failed), marker="x", markersize=9, color="black",
                    linestyle="none", clip_on=False, label="failed (no score)")
        best = arm.best()
        if best is not None and best.score is not None and math.isfinite(best.score):
            ax.plot([best.point[x_key]], [best.score], marker="o", markersize=14, fillstyle="none", color="black",
                    linestyle="none", label="chosen")
        if x_key == LR:
            ax.set_xscale("log")
            # The grid's own values as ticks: log-axis labels of 2 x 10^-2 crowd each other.
            values = sorted({p[x_key] for p in tried})
            labels = [f"{v:g}" for v in values]
            ax.set_xticks(values, labels, fontsize="small")
            # Slanted where they would run into each other: about 0.075 inch a character at this size, across
            # a panel's 3.4 inches of axis (K4's rates in e-05 notation, with a step beyond the grid's edge).
            if sum(map(len, labels)) * 0.075 > 3.4:
                ax.tick_params(axis="x", labelrotation=30)
                for label in ax.get_xticklabels():
                    label.set_horizontalalignment("right")
            ax.minorticks_off()
        ax.set_xlabel(_short(x_key))
        # Wrapped, as the title: a long metric name (K4's) is taller than a panel.
        ax.set_ylabel(textwrap.fill(metric_name(tuning.spec.metric).name, 40))
        ax.legend(fontsize="x-small", frameon=False)
        ax.grid(alpha=0.3)
    for ax in axes[len(arms):]:
        ax.set_visible(False)
    whom = "each arm tuned" if len(tuning.arms) > 1 else "its one arm tuned"
    # About 13 characters an inch at this size: a one-panel figure's title is wider than the panel.
    fig.suptitle(textwrap.fill(f"{tuning.experiment}: {whom} on validation (seed {tuning.spec.seed}); dotted: "
                               f"the first rung, solid: the last", int(13 * 4.2 * columns)), fontsize="medium")
    # A lower resolution than the claims' figures: the report inlines them all, and these are secondary.
    return plots.save_figure(fig, out_dir, f"tuning_{tuning.experiment}", plots.FORMATS, dpi=90)


def _scored(arm) -> bool:
    return any(t.score is not None for rung in arm.trials for t in rung)


def _short(key: str) -> str:
    return {"train.lr": "learning rate", "regularizer.p": "p", "regularizer.lam": "λ",
            "regularizer.percent_on": "k (share on)"}.get(key, key)
