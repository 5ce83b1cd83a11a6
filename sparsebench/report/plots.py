"""Figures, each a function of the results DataFrame only (never checkpoints or logs), registered by
name in ``FIGURES`` (the name a claim's ``figure:`` gives).

Every figure takes the same arguments, ``plot_x(df, out_dir, *, name=..., formats=("png", "pdf"),
contrasts=None, keep_labels=False) -> list[Path]``:
it writes ``out_dir/<name>.<format>`` (atomically) and returns the paths, or returns ``[]`` and writes
nothing when ``df`` lacks the data for it. Lines are means over seeds, one per group, named by the group's
label (recomputed on the rows given, so a subset gets short labels, unless ``keep_labels=True`` says the
caller's ``label`` column is to be kept) with its seed count; bands and error bars are the 95% Student-t interval over seeds (none where a group has a single seed).

Figures of curves per group (near-zero share, pruning, noise, training) draw ``contrasts`` (the others
leave them aside): pairs of
selectors ``(a, b)`` as a claim's check writes them (column -> value, matched by ``aggregate.select``).
For each pair a panel under each curve panel shows the difference A − B per x with its 95% Welch
interval (``difference_curve``): the effect a claim tests, where overlaid curves would hide it.
Axis labels come from ``report.names``, never spelled out here.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sparsebench.atomic import atomic_write
from sparsebench.records.paths import is_number
from sparsebench.registry import Registry
from sparsebench.report.aggregate import (
    canonical,
    is_missing,
    make_labels,
    natural_key,
    relevant_columns,
    select,
    varies,
)
from sparsebench.report.names import (
    REGULARIZER_NAMES,
    arm_label,
    difference_label,
    metric_label,
    metric_name,
)
from sparsebench.report.stats import t_quantile, welch_interval
from sparsebench.report.style import ARMS, Style, arm_family, styles_for

# matplotlib is imported where a figure is drawn (0.35 s): a plan or a report with nothing to draw does without it.
if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "pdf")
BAND = "mean over seeds; band: 95% t-interval"
BARS = "mean over seeds; bars: 95% t-interval"
DPI = 130
DIFFERENCE = "A − B: difference of means; band: 95% Welch interval per point"
HOYER = "weights/final/global/hoyer"
DIFFERENCE_GREY = "0.4"  # grey: black is an arm's colour (no regularizer), a difference is no arm

# A pair of selectors (runs of A, runs of B) whose difference a figure shows under its curves.
Contrast = tuple[Mapping[str, Any], Mapping[str, Any]]
FIGURES: Registry[Callable[..., list[Path]]] = Registry("figure", "figure")
# A figure's curve of one panel, from the rows of one group or side: (x, runs x points matrix) or None.
CurveOf = Callable[[pd.DataFrame], "tuple[np.ndarray, np.ndarray] | None"]


# ----------------------------------------------------------------------------------------------------
# Helpers


def _relabelled(df: pd.DataFrame, keep_labels: bool = False) -> pd.DataFrame:
    """``df`` with labels made for the groups it holds (a subset gets labels of what varies in it),
    unless the caller chose its own labels (``keep_labels``)."""
    if df.empty or "group" not in df.columns or keep_labels:
        return df
    out = df.copy()
    out["label"] = make_labels(out)
    return out


def _groups(df: pd.DataFrame, key: pd.Series | None = None, label: pd.Series | None = None
            ) -> list[tuple[str, str, pd.DataFrame]]:
    """(key, label in words, rows) of each group, in the order of their labels."""
    key = df["group"] if key is None else key
    label = df["label"] if label is None else label
    out = [(k, arm_label(str(label.loc[rows.index[0]])), rows) for k, rows in df.groupby(key, sort=False)]
    named = [(k, _arm_words(text, rows), rows) for k, text, rows in out]
    if len({text for _, text, _ in named}) == len(named):  # only where the arms' names still tell groups apart
        out = named
    return sorted(out, key=lambda item: natural_key(item[1].lower()))


def _arm_words(label: str, rows: pd.DataFrame) -> str:
    """A label that opens with the experiment's name (``continual_mlp_kwinners weight density=0.5``, made for
    runs of several experiments) opened with the arm's name instead: ``k-winners and sparse weights ...``."""
    experiment = str(rows["experiment"].iloc[0]) if "experiment" in rows.columns and len(rows) else ""
    family = arm_family(rows)
    if not experiment or family not in ARMS or (label != experiment and not label.startswith(experiment + " ")):
        return label
    rest = label[len(experiment):].strip()
    for word in sorted(REGULARIZER_NAMES.values(), key=len, reverse=True):  # the arm's name says it already
        if rest == word or rest.startswith(word + " "):
            rest = rest[len(word):].strip()
            break
    return f"{ARMS[family][0]} {rest}".strip()


def _labelled_groups(df: pd.DataFrame, keep_labels: bool = False) -> list[tuple[str, str, pd.DataFrame]]:
    """The groups of ``df`` in plotting order, labelled by what varies among them (or by its own
    ``label`` column with ``keep_labels``)."""
    return _groups(_relabelled(df, keep_labels))


def _styled(groups: list) -> list[Style]:
    """Each group's style: its arm's, the same in every figure (``report.style``)."""
    return styles_for([g[2] for g in groups])


def _marks(points: int, place: int = 0) -> tuple[int, int] | None:
    """Where a line of ``points`` points draws its markers: every point of a short line; on a long one
    about eight, the ``place``-th line's started later, so that lines drawn over each other show both."""
    if points < 12:
        return None
    step = max(1, points // 8)
    return (place % step, step)


def _figure(panels: int, width: float = 4.8, height: float = 3.6, columns: int = 3) -> tuple[Figure, list]:
    from matplotlib.figure import Figure

    ncols = min(panels, columns)
    nrows = math.ceil(panels / ncols)
    # At least two panels wide, so that a lone panel leaves room for the title and the legend.
    fig = Figure(figsize=(max(width * ncols, 2 * width), height * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def save_figure(fig: Figure, out_dir: str | Path, name: str, formats: Sequence[str], dpi: int = DPI) -> list[Path]:
    out = Path(out_dir)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        # A tight box grows the page to hold a title or legend wider than few panels.
        atomic_write(path, lambda stream, fmt=fmt: _write(fig, stream, fmt, dpi))
        paths.append(path)
    return paths


def _write(fig: Figure, stream, fmt: str, dpi: int) -> None:
    if fmt != "png":
        fig.savefig(stream, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_metadata(fig, fmt))
        return
    # A PNG on a palette of 256 colours: about a third of the bytes of matplotlib's full-colour PNG for
    # these plots (a few line colours, a colour map), and the self-contained claims page inlines them all.
    from PIL import Image, PngImagePlugin

    full = io.BytesIO()
    fig.savefig(full, format="png", dpi=dpi, bbox_inches="tight")
    info = PngImagePlugin.PngInfo()
    for key, value in (_metadata(fig, fmt) or {}).items():
        info.add_text(key, value)
    with Image.open(full) as image:
        image.convert("RGB").quantize(256).save(stream, format="png", optimize=True, pnginfo=info,
                                                dpi=(dpi, dpi))


def _metadata(fig: Figure, fmt: str) -> dict | None:
    """The figure's title as the file's own (PNG and PDF ``Title``): the claims page's alt text reads it."""
    title = fig.get_suptitle()
    return {"Title": title} if title and fmt in ("png", "pdf") else None


def figure_title(path: str | Path) -> str | None:
    """The title a PNG written here carries (``save_figure``), None when it has none."""
    from PIL import Image

    with Image.open(path) as image:
        return image.info.get("Title") or None


def _legend(fig: Figure, handles: list, labels: list[str]) -> None:
    if handles:
        ncols = 1 if max(len(label) for label in labels) > 60 else min(len(labels), 3)
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize="small", frameon=False)


def _as_floats(values: Any) -> list[float] | None:
    if not isinstance(values, (list, tuple)):
        return None
    return [float(v) if is_number(v) else math.nan for v in values]


def _band(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise (mean, low, high, n) of a runs x points matrix, NaN-aware; no interval where n < 2."""
    n = np.isfinite(matrix).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(matrix, axis=0)
        std = np.nanstd(matrix, axis=0, ddof=1)
    half = np.where(n >= 2, np.asarray(t_quantile(np.maximum(n, 1)), dtype=float) * std / np.sqrt(np.maximum(n, 1)),
                    np.nan)
    return mean, mean - half, mean + half, n


def _curve(rows: pd.DataFrame, x_column: str, y_column: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, runs x points matrix) of per-run curves aligned on their x values; None when no run has one."""
    if x_column not in rows.columns or y_column not in rows.columns:
        return None
    pairs = []
    for xs, ys in zip(rows[x_column], rows[y_column]):
        xs, ys = _as_floats(xs), _as_floats(ys)
        if xs and ys and len(xs) == len(ys):
            pairs.append((xs, ys))
    if not pairs:
        return None
    grid = sorted({x for xs, _ in pairs for x in xs if math.isfinite(x)})
    where = {x: i for i, x in enumerate(grid)}
    matrix = np.full((len(pairs), len(grid)), np.nan)
    for r, (xs, ys) in enumerate(pairs):
        for x, y in zip(xs, ys):
            if x in where:
                matrix[r, where[x]] = y
    return np.asarray(grid), matrix


def _plot_curve(ax, x: np.ndarray, matrix: np.ndarray, style: Style, label: str | None = None,
                band: bool = True, linewidth: float = 1.6, place: int = 0, linestyle: str | None = None,
                markers: bool = True):
    """The mean of a runs x points matrix as a line in ``style`` (``linestyle`` overrides its own), with
    its 95% t band; ``place``: the line's place in its panel, which staggers the markers of long lines."""
    mean, low, high, _ = _band(matrix)
    keep = np.isfinite(mean)
    line, = ax.plot(x[keep], mean[keep], color=style.color, linestyle=linestyle or style.linestyle,
                    marker=style.marker if markers else None, markevery=_marks(int(keep.sum()), place),
                    markersize=4.5, label=label, linewidth=linewidth)
    if band and np.isfinite(low).any():
        ax.fill_between(x, low, high, color=style.color, alpha=0.15, linewidth=0)
    _seen(ax, mean[keep], low, high)
    return line


def _seen(ax, mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    """Remember what a panel drew, for ``_fit_y``."""
    seen = ax.__dict__.setdefault("_sparsebench_y", [])
    seen.append((np.asarray(mean, dtype=float), np.asarray(low, dtype=float), np.asarray(high, dtype=float)))


def _fit_y(ax, percent: bool = False) -> None:
    """A y range that shows the means: bands may widen it by at most the means' own range (a band from two
    seeds is 12.7 standard errors wide and would flatten every line), and a percentage stays in [0, 100]."""
    seen = ax.__dict__.get("_sparsebench_y")
    if not seen:
        return
    means = np.concatenate([m for m, _, _ in seen])
    lows = np.concatenate([lo for _, lo, _ in seen])
    highs = np.concatenate([hi for _, _, hi in seen])
    means = means[np.isfinite(means)]
    if not len(means):
        return
    bottom, top = float(means.min()), float(means.max())
    span = top - bottom or max(abs(top), 1.0) * 0.05
    low = float(np.nanmin(lows)) if np.isfinite(lows).any() else bottom
    high = float(np.nanmax(highs)) if np.isfinite(highs).any() else top
    bottom, top = max(min(low, bottom), bottom - span), min(max(high, top), top + span)
    pad = 0.05 * (top - bottom or span)
    bottom, top = bottom - pad, top + pad
    if percent:
        bottom, top = max(bottom, -1.0), min(top, 101.0)
    ax.set_ylim(bottom, top)


def _count(rows: pd.DataFrame, column: str) -> int:
    if column not in rows.columns:
        return 0
    return int(sum(1 for v in rows[column] if isinstance(v, (list, tuple)) or not is_missing(v)))


def _has_lists(df: pd.DataFrame, *columns: str) -> bool:
    return all(c in df.columns and df[c].map(lambda v: isinstance(v, (list, tuple)) and len(v) > 0).any()
               for c in columns)


# ----------------------------------------------------------------------------------------------------
# Differences between the two sides of a claim's check


def difference_curve(a_rows: pd.DataFrame, b_rows: pd.DataFrame, curve: CurveOf
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(x, A − B, low, high) at each x where both sides have a value: the difference of the means over
    A's runs and B's runs with its 95% Welch interval (``stats.welch_interval``, NaN where a side has fewer
    than two values or neither varies); None when a side has no curve."""
    sides = [curve(rows) if len(rows) else None for rows in (a_rows, b_rows)]
    if any(side is None for side in sides):
        return None
    (x_a, m_a), (x_b, m_b) = sides
    shared = sorted(set(x_a.tolist()) & set(x_b.tolist()))
    column_a = {x: i for i, x in enumerate(x_a.tolist())}
    column_b = {x: i for i, x in enumerate(x_b.tolist())}
    points = []
    for x in shared:
        diff = welch_interval(m_a[:, column_a[x]], m_b[:, column_b[x]])
        if math.isfinite(diff.effect):
            points.append((x, diff.effect, diff.low, diff.high))
    if not points:
        return None
    return tuple(np.asarray(values, dtype=float) for values in zip(*points))


def _side_name(rows: pd.DataFrame) -> str:
    labels = list(dict.fromkeys(_arm_words(arm_label(str(members["label"].iloc[0])), members)
                                for _, members in rows.groupby("label", sort=False))) if "label" in rows.columns else []
    if len(labels) == 1:
        return labels[0]
    return " + ".join(labels) if 1 < len(labels) <= 2 else f"{len(labels)} groups pooled"


def _contrast_sides(df: pd.DataFrame, contrasts: Sequence[Contrast] | None
                    ) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(title "A − B", A's rows, B's rows) of each contrast whose two sides both select runs of ``df``."""
    out = []
    for a, b in contrasts or ():
        try:
            a_rows, b_rows = select(df, a), select(df, b)
        except KeyError:  # a selector names a column these runs lack: nothing to compare
            continue
        if len(a_rows) and len(b_rows):
            out.append((f"{_side_name(a_rows)} − {_side_name(b_rows)}", a_rows, b_rows))
    return out


def _figure_with_differences(panels: int, differences: int, width: float, height: float
                             ) -> tuple[Figure, list, list[list]]:
    """A figure of ``panels`` curve panels side by side and, under each, one shorter panel per difference
    sharing its x axis: (figure, curve axes, [per difference: its axes per panel]). Without differences,
    the layout of ``_figure``."""
    from matplotlib.figure import Figure

    if not differences:
        fig, axes = _figure(panels, width=width, height=height)
        return fig, axes, []
    ratios = [1.0] + [0.62] * differences
    fig = Figure(figsize=(max(width * panels, 2 * width), height * sum(ratios) + 0.9), layout="constrained")
    grid = fig.subplots(1 + differences, panels, squeeze=False, sharex="col", height_ratios=ratios)
    return fig, list(grid[0]), [list(row) for row in grid[1:]]


def _draw_differences(below: list[list], sides: list[tuple[str, pd.DataFrame, pd.DataFrame]],
                      curves: Sequence[CurveOf], y_path: str | Sequence[str]) -> None:
    """Fill the difference panels: per contrast (a row of ``below``) and panel (``curves``), A − B with its
    Welch band and the zero line; ``y_path``: the metric path (per panel, or one for all) naming the axis."""
    paths = [y_path] * len(curves) if isinstance(y_path, str) else list(y_path)
    for axes, (title, a_rows, b_rows) in zip(below, sides):
        for ax, curve, path in zip(axes, curves, paths):
            ax.axhline(0.0, color="0.35", linewidth=0.9)
            points = difference_curve(a_rows, b_rows, curve)
            if points is not None:
                x, effect, low, high = points
                ax.plot(x, effect, color=DIFFERENCE_GREY, marker="." if len(x) < 12 else None, linewidth=1.5)
                if len(x) == 1 and np.isfinite(low).all():  # a band needs two points: one gets an error bar
                    ax.errorbar(x, effect, yerr=[effect - low, high - effect], color=DIFFERENCE_GREY, capsize=4)
                elif np.isfinite(low).any():
                    ax.fill_between(x, low, high, color=DIFFERENCE_GREY, alpha=0.2, linewidth=0)
            else:
                ax.text(0.5, 0.5, "no shared points", transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_title(textwrap.fill(f"difference: {title}", 64), fontsize="small")
            ax.set_ylabel(textwrap.fill(difference_label(path), 28), fontsize="small")
            ax.grid(alpha=0.3)


def _difference_handle() -> tuple:
    """The legend key of a difference panel: its line over its band, so that it does not read as one more
    line style of the curves above (D1's "after training" is a plain grey line too)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return Patch(color=DIFFERENCE_GREY, alpha=0.2, linewidth=0), Line2D([], [], color=DIFFERENCE_GREY, linewidth=1.5)


def _x_label(axes: list, below: list[list], label: str) -> None:
    """``label`` under each column: on its lowest panel (the panels above share its x axis)."""
    for column, ax in enumerate(axes):
        (below[-1][column] if below else ax).set_xlabel(label)


# ----------------------------------------------------------------------------------------------------
# Weights


@FIGURES.register("weight_histograms")
def plot_weight_histograms(df: pd.DataFrame, out_dir: str | Path, *, name: str = "weight_histograms",
                           formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                           keep_labels: bool = False) -> list[Path]:
    """Per group, the histogram of final |w| (share of learnable weights per log-spaced bin; solid, band
    over seeds), with the histogram at initialisation dashed for reference."""
    from matplotlib.lines import Line2D

    final_e, final_f = "weights/final_profile/histogram_edges", "weights/final_profile/histogram_fractions"
    init_e, init_f = "weights/init_profile/histogram_edges", "weights/init_profile/histogram_fractions"
    if df.empty or not _has_lists(df, final_e, final_f):
        return []
    groups = [g for g in _labelled_groups(df, keep_labels) if _has_lists(g[2], final_e, final_f)]
    fig, axes = _figure(len(groups), width=4.4, height=3.2)
    for ax, (_, label, rows), style in zip(axes, groups, _styled(groups)):
        color = style.color
        nonzero: list[float] = []
        for edges_col, frac_col, style, tint, what in ((init_e, init_f, "--", "0.45", "init"),
                                                        (final_e, final_f, "-", color, "final")):
            stacked = _histograms(rows, edges_col, frac_col)
            if stacked is None:
                continue
            edges, matrix = stacked
            mean, low, high, _ = _band(matrix)
            filled = np.flatnonzero(np.nan_to_num(mean) > 0)
            if len(filled):
                nonzero += [edges[filled[0]], edges[filled[-1] + 1]]
            ax.stairs(mean, edges, color=tint, linestyle=style, linewidth=1.5, label=what,
                      zorder=3 if what == "init" else 2)  # the reference stays visible over the final one
            if what == "final" and np.isfinite(low).any():
                ax.fill_between(edges[:-1], low, high, step="post", color=color, alpha=0.25, linewidth=0)
        ax.set_xscale("log")
        if nonzero:
            ax.set_xlim(min(nonzero) / 2, max(nonzero) * 2)
        ax.set_title(textwrap.fill(f"{label} (n={len(rows)})", 44), fontsize="medium")
        ax.set_xlabel(textwrap.fill(metric_label(final_e), 36))
        ax.set_ylabel(textwrap.fill(metric_label(final_f), 30))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color="0.2", linestyle="-"), Line2D([], [], color="0.45", linestyle="--")]
    _legend(fig, handles, ["final (band: 95% t-interval over seeds)", "at initialisation"])
    fig.suptitle("Weight-magnitude histograms per group")
    return save_figure(fig, out_dir, name, formats)


def _histograms(rows: pd.DataFrame, edges_column: str, fractions_column: str) -> tuple[np.ndarray, np.ndarray] | None:
    if edges_column not in rows.columns or fractions_column not in rows.columns:
        return None
    edges = None
    stacked = []
    for e, f in zip(rows[edges_column], rows[fractions_column]):
        e, f = _as_floats(e), _as_floats(f)
        if not e or not f or len(e) != len(f) + 1:
            continue
        if edges is None:
            edges = e
        if e == edges:
            stacked.append(f)
    if edges is None:
        return None
    edges = np.asarray(edges)
    if edges[0] <= 0 and len(edges) > 2:  # a log axis cannot show 0: draw the first bin one bin-width wide
        edges[0] = edges[1] ** 2 / edges[2]
    return edges, np.asarray(stacked)


@FIGURES.register("near_zero_curves")
def plot_near_zero_curves(df: pd.DataFrame, out_dir: str | Path, *, name: str = "near_zero_curves",
                          formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                          keep_labels: bool = False) -> list[Path]:
    """Share of learnable weights with |w| < t against the threshold t (log x), one colour per group:
    after training solid (band over seeds), at initialisation dashed; under it, the difference of the
    final shares of each contrast."""
    from matplotlib.lines import Line2D

    x_f, y_f = "weights/final_profile/curve_thresholds", "weights/final_profile/curve_fractions"
    x_i, y_i = "weights/init_profile/curve_thresholds", "weights/init_profile/curve_fractions"
    if df.empty or not _has_lists(df, x_f, y_f):
        return []
    groups = _labelled_groups(df, keep_labels)
    sides = _contrast_sides(df, contrasts)
    fig, axes, below = _figure_with_differences(1, len(sides), width=7.0, height=4.6)
    ax = axes[0]
    handles, labels = [], []
    for place, ((_, label, rows), style) in enumerate(zip(groups, _styled(groups))):
        final = _curve(rows, x_f, y_f)
        if final is None:
            continue
        handles.append(_plot_curve(ax, *final, style=style, place=place, linestyle="-"))
        labels.append(f"{label} (n={_count(rows, y_f)})")
        init = _curve(rows, x_i, y_i)
        if init is not None:
            _plot_curve(ax, *init, style=style, linestyle="--", band=False, linewidth=1.0, markers=False)
    ax.set_xscale("log")
    _x_label(axes, below, metric_label(x_f))
    ax.set_ylabel(metric_label(y_f))
    ax.grid(alpha=0.3, which="both")
    handles += [Line2D([], [], color="0.3"), Line2D([], [], color="0.3", linestyle="--", linewidth=1.0)]
    labels += ["after training", "at initialisation"]
    _draw_differences(below, sides, [lambda rows: _curve(rows, x_f, y_f)], y_f)
    if sides:
        handles.append(_difference_handle())
        labels.append(DIFFERENCE)
    _legend(fig, handles, labels)
    fig.suptitle(f"Near-zero weights against threshold ({BAND})")
    return save_figure(fig, out_dir, name, formats)


# ----------------------------------------------------------------------------------------------------
# Pruning and noise


@FIGURES.register("pruning_curves")
def plot_pruning_curves(df: pd.DataFrame, out_dir: str | Path, *, name: str = "pruning_curves",
                        formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                        keep_labels: bool = False) -> list[Path]:
    """Test accuracy against the fraction of weights pruned by magnitude: one-shot and after fine-tuning
    (a panel each), with each group's unpruned accuracy as a dotted reference line; under each, the
    difference of accuracies of each contrast."""
    from matplotlib.lines import Line2D

    x = "prune/fractions"
    kinds = [(c, t) for c, t in (("prune/one_shot_accuracy", "one-shot"), ("prune/finetuned_accuracy", "fine-tuned"))
             if _has_lists(df, x, c)]
    if df.empty or not kinds:
        return []
    groups = _labelled_groups(df, keep_labels)
    styles = _styled(groups)
    sides = _contrast_sides(df, contrasts)
    fig, axes, below = _figure_with_differences(len(kinds), len(sides), width=5.2, height=3.9)
    fractions = sorted({f for v in df[x] for f in (_as_floats(v) or []) if math.isfinite(f)})
    logit = bool(fractions) and all(0 < f < 1 for f in fractions)
    handles: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for ax, (column, title) in zip(axes, kinds):
        for place, ((group, label, rows), style) in enumerate(zip(groups, styles)):
            curve = _curve(rows, x, column)
            if curve is None:
                continue
            line = _plot_curve(ax, *curve, style=style, place=place)
            unpruned = pd.to_numeric(rows.get("prune/unpruned_accuracy"), errors="coerce")
            if unpruned is not None and unpruned.notna().any():
                ax.axhline(float(unpruned.mean()), color=style.color, linestyle=":", linewidth=1.2)
            handles.setdefault(group, line)
            labels.setdefault(group, f"{label} (n={_count(rows, column)})")
        if logit:
            ax.set_xscale("logit")
            ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
            ax.minorticks_off()
        ax.set_ylabel(metric_label(column))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        _fit_y(ax, percent=True)
    _x_label(axes, below, metric_label(x))
    _draw_differences(below, sides, [lambda rows, c=c: _curve(rows, x, c) for c, _ in kinds], [c for c, _ in kinds])
    _legend(fig, [*handles.values(), Line2D([], [], color="0.3", linestyle=":"), *([_difference_handle()] * bool(sides))],
            [*labels.values(), f"{metric_name('prune/unpruned_accuracy').name} (dotted)", *[DIFFERENCE] * bool(sides)])
    fig.suptitle(f"Pruning curves ({BAND})")
    return save_figure(fig, out_dir, name, formats)


def noise_kinds(df: pd.DataFrame) -> list[str]:
    """The noise kinds that have curves in ``df`` (from the ``noise/<kind>/levels`` columns)."""
    kinds = [m.group(1) for c in df.columns if (m := re.fullmatch(r"noise/([^/]+)/levels", c))]
    return [k for k in kinds if _has_lists(df, f"noise/{k}/levels", f"noise/{k}/accuracy")]


@FIGURES.register("noise_curves")
def plot_noise_curves(df: pd.DataFrame, out_dir: str | Path, *, name: str = "noise_curves",
                      formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                      keep_labels: bool = False) -> list[Path]:
    """Test accuracy against the noise level, one panel per kind of noise; under each, the difference of
    accuracies of each contrast."""
    kinds = noise_kinds(df) if not df.empty else []
    if not kinds:
        return []
    groups = _labelled_groups(df, keep_labels)
    styles = _styled(groups)
    sides = _contrast_sides(df, contrasts)
    fig, axes, below = _figure_with_differences(len(kinds), len(sides), width=4.6, height=3.6)
    handles, labels = {}, {}
    for ax, kind in zip(axes, kinds):
        for place, ((group, label, rows), style) in enumerate(zip(groups, styles)):
            curve = _curve(rows, f"noise/{kind}/levels", f"noise/{kind}/accuracy")
            if curve is None:
                continue
            line = _plot_curve(ax, *curve, style=style, place=place)
            handles.setdefault(group, line)
            labels.setdefault(group, f"{label} (n={_count(rows, f'noise/{kind}/accuracy')})")
        ax.set_title(metric_name(f"noise/{kind}/levels").name.removesuffix(" level"))
        ax.set_ylabel(metric_label(f"noise/{kind}/accuracy"))
        ax.grid(alpha=0.3)
        _fit_y(ax, percent=True)
    for column, (ax, kind) in enumerate(zip(axes, kinds)):
        (below[-1][column] if below else ax).set_xlabel(metric_label(f"noise/{kind}/levels"))
    _draw_differences(below, sides, [lambda rows, k=k: _curve(rows, f"noise/{k}/levels", f"noise/{k}/accuracy")
                                     for k in kinds], [f"noise/{k}/accuracy" for k in kinds])
    _legend(fig, [*handles.values(), *([_difference_handle()] * bool(sides))],
            [*labels.values(), *[DIFFERENCE] * bool(sides)])
    fig.suptitle(f"Accuracy under input noise ({BAND})")
    return save_figure(fig, out_dir, name, formats)


# ----------------------------------------------------------------------------------------------------
# Sweeps of one config value


def plot_sweep(df: pd.DataFrame, parameter: str, panels: Sequence[tuple[str, str, Sequence[tuple[str, str]]]],
               out_dir: str | Path, *, name: str, title: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Metrics against one config value (``parameter``): ``panels`` = [(title, y label, [(column, line
    name)])]. Runs that differ in anything else form separate series (colours); runs without the
    parameter (a baseline such as no regularizer) are drawn as horizontal dotted lines at their mean.
    Error bars: 95% t-interval over seeds. Returns [] unless ``parameter`` takes two or more values."""
    from matplotlib.lines import Line2D

    if df.empty or not varies(df, parameter):
        return []
    df = df.copy()
    exclude = {parameter, "seed"} | _follows(df, parameter)
    key_columns = [c for c in relevant_columns(df) if c not in exclude]
    keys = df[key_columns].apply(lambda row: "|".join(canonical(v) for v in row), axis=1) if key_columns \
        else pd.Series("all", index=df.index)
    labels = make_labels(df, keys=keys, exclude=exclude) if key_columns else pd.Series("", index=df.index)
    series = _groups(df, keys, labels)
    if len(series) == 1 and arm_family(series[0][2]) in ARMS:  # one series: its arm's name, not every .name setting
        series = [(series[0][0], ARMS[arm_family(series[0][2])][0], series[0][2])]
    series_styles = _styled(series)
    def has_values(column: str) -> bool:
        return column in df.columns and pd.to_numeric(df[column], errors="coerce").notna().any()

    panels = [(t, y, [(c, n) for c, n in lines if has_values(c)]) for t, y, lines in panels]
    panels = [p for p in panels if p[2]]
    if not panels:
        return []
    styles = ["-", "--", "-.", ":"]
    markers = ["o", "s", "^", "D", "v"]
    fig, axes = _figure(len(panels), width=4.8, height=3.6)
    entries: dict[str, Any] = {}  # legend label -> handle, in order of appearance
    for ax, (panel_title, y_label, lines) in zip(axes, panels):
        for (_, label, rows), style in zip(series, series_styles):
            color = style.color
            values = pd.to_numeric(rows[parameter], errors="coerce") if parameter in rows.columns else None
            swept = rows[values.notna()] if values is not None else rows.iloc[0:0]
            baseline = rows[values.isna()] if values is not None else rows
            for i, (column, _) in enumerate(lines):
                if len(swept):
                    x, mean, half, n = _sweep_points(swept, parameter, column)
                    if len(x):
                        # One metric per panel: the series' own style; several: a line style per metric.
                        ax.errorbar(x, mean, yerr=half, color=color,
                                    linestyle=style.linestyle if len(lines) == 1 else styles[i % 4],
                                    marker=style.marker if len(lines) == 1 else markers[i % 5],
                                    markersize=4.5, capsize=3, linewidth=1.4)
                        low, high = int(min(n)), int(max(n))
                        seeds = f"n={low}" if low == high else f"n={low}–{high}"
                        entries.setdefault(f"{label or parameter} ({seeds} per point)",
                                           Line2D([], [], color=color, marker=style.marker, markersize=4.5,
                                                  linestyle=style.linestyle))
                if len(baseline):
                    level = pd.to_numeric(baseline[column], errors="coerce").dropna()
                    if len(level):
                        ax.axhline(float(level.mean()), color=color, linestyle=styles[i % 4], linewidth=0.9,
                                   alpha=0.7)
                        entries.setdefault(f"{label or 'runs'} without {parameter} (n={len(level)}; horizontal line)",
                                           Line2D([], [], color=color, linewidth=0.9, alpha=0.7))
        ax.set_xlabel(metric_label(parameter))
        ax.set_ylabel(textwrap.fill(y_label, 36))
        ax.set_title(panel_title, fontsize="medium")
        ax.grid(alpha=0.3)
    for _, _, lines in panels:
        if len(lines) > 1:
            for i, (_, line_name) in enumerate(lines):
                entries.setdefault(line_name, Line2D([], [], color="0.3", linestyle=styles[i % 4],
                                                     marker=markers[i % 5], markersize=4))
    followed = sorted(_follows(df, parameter))
    if followed:  # said once under the figure: why one line's points may stand for different settings
        entries.setdefault(f"each point at its own {', '.join(metric_name(c).name for c in followed)} "
                           f"(chosen per {metric_name(parameter).name})", Line2D([], [], linestyle=""))
    _legend(fig, list(entries.values()), list(entries))
    fig.suptitle(f"{title} ({BARS})")
    return save_figure(fig, out_dir, name, formats)


def _follows(df: pd.DataFrame, parameter: str) -> set[str]:
    """Columns whose value is set by the parameter's within each series (one value per value swept, as a
    learning rate tuned for each, in each cell of a regime map): part of each point, not a series of their
    own; each point of a line may then differ in them. A column follows when, the runs grouped by every
    other column, it has one value per parameter value and differs between parameter values somewhere."""
    swept = df[pd.to_numeric(df[parameter], errors="coerce").notna()]
    if swept.empty:
        return set()
    columns = [c for c in relevant_columns(df) if c not in (parameter, "seed") and c in swept.columns]
    text = {c: swept[c].map(canonical) for c in columns}
    # Where the records say what was tuned, only those settings can follow: in a map whose cells happen to
    # share a rate, a cell's width would pass the test below as well as the rate does.
    tuned = _tuned_settings(swept)
    out = set()
    for column in [c for c in columns if not tuned or c in tuned]:
        values = text[column]
        if values.nunique() <= 1:
            continue
        others = [text[c] for c in columns if c != column]
        per_value = values.groupby([*others, swept[parameter]]).nunique()
        across = values.groupby(others).nunique() if others else pd.Series([values.nunique()])
        if (per_value <= 1).all() and (across > 1).any():
            out.add(column)
    return out


def _tuned_settings(df: pd.DataFrame) -> set[str]:
    """The settings the records' tuning searched (``tune.arms[*].space``); empty for untuned records."""
    if "tune.arms" not in df.columns:
        return set()
    return {key for arms in df["tune.arms"] if isinstance(arms, list)
            for arm in arms if isinstance(arm, dict) for key in (arm.get("space") or {})}


def _sweep_points(rows: pd.DataFrame, parameter: str, column: str):
    x = pd.to_numeric(rows[parameter], errors="coerce")
    y = pd.to_numeric(rows[column], errors="coerce")
    points = []
    for value in sorted(x.dropna().unique()):
        ys = y[(x == value) & y.notna()].to_numpy(dtype=float)
        if not len(ys):
            continue
        mean, low, high, n = _band(ys.reshape(-1, 1))
        points.append((value, mean[0], (high[0] - low[0]) / 2 if n[0] >= 2 else 0.0, n[0]))
    if not points:
        return [], [], [], []
    x, mean, half, n = map(np.asarray, zip(*points))
    return x, mean, half, n


def _layers(df: pd.DataFrame, stat: str) -> list[str]:
    return [m.group(1) for c in df.columns if (m := re.fullmatch(rf"activations/([^/]+)/{stat}", c))]


@FIGURES.register("activation_sparsity_vs_q")
def plot_activation_sparsity_vs_q(df: pd.DataFrame, out_dir: str | Path, *, parameter: str = "regularizer.q",
                                  name: str = "activation_sparsity_vs_q", formats: Sequence[str] = FORMATS,
                                  contrasts: Sequence[Contrast] | None = None, keep_labels: bool = False
                                  ) -> list[Path]:
    """Hoyer sparsity and zero fraction of each hidden layer's activations against Sparseout's q (or
    ``parameter``); only when that column exists and takes two or more values."""
    panels = []
    for stat in ("hoyer", "zero_fraction"):
        layers = _layers(df, stat)
        # The name of a layer's value is "<what>, <layer>": the panel shows <what>, a line per layer.
        named = [metric_name(f"activations/{layer}/{stat}") for layer in layers]
        what = named[0].name.split(", ")[0] if named else stat
        unit = f" ({named[0].unit})" if named and named[0].unit else ""
        panels.append((what.capitalize(), what + unit,
                       [(f"activations/{layer}/{stat}", n.name.split(", ", 1)[-1]) for layer, n in zip(layers, named)]))
    return plot_sweep(df, parameter, panels, out_dir, name=name, formats=formats,
                      title=f"Activation sparsity against {metric_name(parameter).name}")


@FIGURES.register("accuracy_vs_q")
def plot_accuracy_vs_q(df: pd.DataFrame, out_dir: str | Path, *, parameter: str = "regularizer.q",
                       name: str = "accuracy_vs_q", formats: Sequence[str] = FORMATS,
                       contrasts: Sequence[Contrast] | None = None, keep_labels: bool = False) -> list[Path]:
    """Test accuracy against Sparseout's q (or ``parameter``), and beside it the mean Hoyer sparsity of the
    hidden activations that q moves; only when that column takes two or more values."""
    panels = [("Test accuracy", metric_label("test/accuracy"), [("test/accuracy", metric_name("test/accuracy").name)])]
    if "activations/mean/hoyer" in df.columns:
        hoyer = metric_name("activations/mean/hoyer")
        panels.append((hoyer.name.capitalize(), hoyer.label, [("activations/mean/hoyer", hoyer.name)]))
    return plot_sweep(df, parameter, panels, out_dir, name=name, formats=formats,
                      title=f"Test accuracy against {metric_name(parameter).name}")


@FIGURES.register("dropout_rate_sweep")
def plot_dropout_rate_sweep(df: pd.DataFrame, out_dir: str | Path, *, parameter: str = "regularizer.p",
                            name: str = "dropout_rate_sweep", formats: Sequence[str] = FORMATS,
                            contrasts: Sequence[Contrast] | None = None, keep_labels: bool = False) -> list[Path]:
    """Test and train accuracy, the Hoyer sparsity of the final weights (the scale-free measure D1's and
    D3's primary checks read) and the global near-zero share of final weights at each threshold, against the
    dropout rate (or ``parameter``); only when it takes two or more values."""
    keys = sorted({c.rsplit("/", 1)[1] for c in df.columns if re.fullmatch(r"weights/final/global/(abs|rel)_.+", c)},
                  key=lambda k: (not k.startswith("abs"), natural_key(k)))
    panels = [("Accuracy", "accuracy (%)", [("test/accuracy", metric_name("test/accuracy").name),
                                            ("train/accuracy", metric_name("train/accuracy").name)])]
    if HOYER in df.columns:
        named = metric_name(HOYER)
        short = named.name.split(" (")[0]  # the panel's title: the name without its gloss
        panels.append((short[:1].upper() + short[1:], named.unit, [(HOYER, "")]))
    for key in keys:
        named = metric_name(f"weights/final/global/{key}")
        panels.append((named.name.capitalize(), named.unit, [(f"weights/final/global/{key}", "")]))
    return plot_sweep(df, parameter, panels, out_dir, name=name, formats=formats,
                      title=f"Accuracy and sparsity of the weights against {metric_name(parameter).name}")


# ----------------------------------------------------------------------------------------------------
# Training


def _history_curve(rows: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    if "history" not in rows.columns:
        return None
    def series(history: Any, name: str) -> list | None:
        return [e.get(name) for e in history if isinstance(e, dict)] if isinstance(history, list) else None

    frame = pd.DataFrame({"x": [series(h, "epoch") for h in rows["history"]],
                          "y": [series(h, key) for h in rows["history"]]})
    return _curve(frame, "x", "y")


@FIGURES.register("training_curves")
def plot_training_curves(df: pd.DataFrame, out_dir: str | Path, *, name: str = "training_curves",
                         formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                         keep_labels: bool = False) -> list[Path]:
    """Test accuracy and training loss against the epoch, from each run's ``history``; under each, the
    difference of each contrast."""
    return _training_curves(df, out_dir, name=name, formats=formats, contrasts=contrasts, keep_labels=keep_labels)


@FIGURES.register("training_error_curves")
def plot_training_error_curves(df: pd.DataFrame, out_dir: str | Path, *, name: str = "training_error_curves",
                               formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                               keep_labels: bool = False) -> list[Path]:
    """As ``training_curves``, with the test classification error (100 − accuracy, %) where a paper plots
    error (the dropout paper's figures)."""
    return _training_curves(df, out_dir, name=name, formats=formats, contrasts=contrasts, keep_labels=keep_labels,
                            error=True)


def _training_curves(df: pd.DataFrame, out_dir: str | Path, *, name: str, formats: Sequence[str],
                     contrasts: Sequence[Contrast] | None, keep_labels: bool, error: bool = False) -> list[Path]:
    from matplotlib.ticker import MaxNLocator

    if df.empty or "history" not in df.columns:
        return []
    present = {key for history in df["history"] if isinstance(history, list)
               for epoch in history if isinstance(epoch, dict) for key in epoch}
    keys = [(k, metric_name(f"history/{k}").name.capitalize(), metric_label(f"history/{k}"))
            for k in ("test_accuracy", "train_loss") if k in present]
    if not keys:
        return []
    if error and keys[0][0] == "test_accuracy":
        keys[0] = ("test_accuracy", metric_name("history/test_error").name.capitalize(), metric_label("history/test_error"))
    paths = [f"history/{'test_error' if error and k == 'test_accuracy' else k}" for k, _, _ in keys]

    def curve_of(key: str) -> CurveOf:
        def curve(rows: pd.DataFrame):
            found = _history_curve(rows, key)
            if found is None or not (error and key == "test_accuracy"):
                return found
            return found[0], 100.0 - found[1]
        return curve

    groups = _labelled_groups(df, keep_labels)
    styles = _styled(groups)
    sides = _contrast_sides(df, contrasts)
    fig, axes, below = _figure_with_differences(len(keys), len(sides), width=5.0, height=3.7)
    handles: dict[str, Any] = {}
    labels: dict[str, str] = {}
    drawn: dict[str, tuple[str, np.ndarray]] = {}  # group -> (label, its first panel's curve), to find twins
    for number, (ax, (key, title, y_label)) in enumerate(zip(axes, keys)):
        for place, ((group, label, rows), style) in enumerate(zip(groups, styles)):
            curve = curve_of(key)(rows)
            if curve is None:
                continue
            line = _plot_curve(ax, *curve, style=style, place=place)
            handles.setdefault(group, line)
            labels.setdefault(group, f"{label} (n={len(curve[1])})")
            if number == 0:
                drawn[group] = (label, _band(curve[1])[0])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_ylabel(y_label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        _fit_y(ax, percent=key == "test_accuracy")
    # A line drawn exactly over another (the dropout paper's max-norm runs equal its dropout runs seed for
    # seed wherever the cap never binds, as at the untuned rate of before) says so in the legend; its
    # staggered markers show it on the axes.
    for group, (label, mean) in drawn.items():
        twin = next((other for g, (other, m) in drawn.items() if g != group and other < label
                     and m.shape == mean.shape and len(m) > 1 and np.allclose(m, mean, equal_nan=True)), None)
        if twin is not None:
            labels[group] += f": the same curve as {twin}, drawn over it"
    _x_label(axes, below, metric_label("history/epoch"))
    for row in below:
        for ax in row:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    _draw_differences(below, sides, [curve_of(k) for k, _, _ in keys], paths)
    _legend(fig, [*handles.values(), *([_difference_handle()] * bool(sides))],
            [*labels.values(), *[DIFFERENCE] * bool(sides)])
    fig.suptitle(f"Training curves ({BAND})")
    return save_figure(fig, out_dir, name, formats)


# ----------------------------------------------------------------------------------------------------
# Task sequences


MATRIX = "continual/accuracy_matrix"


def _matrices(rows: pd.DataFrame) -> np.ndarray | None:
    """The runs' accuracy matrices stacked (runs x T x T), those of the most common size; None if none."""
    if MATRIX not in rows.columns:
        return None
    found = [np.asarray(m, dtype=float) for m in rows[MATRIX] if isinstance(m, list) and m]
    found = [m for m in found if m.ndim == 2 and m.shape[0] == m.shape[1]]
    if not found:
        return None
    sizes = [len(m) for m in found]
    size = max(set(sizes), key=sizes.count)
    return np.stack([m for m in found if len(m) == size])


@FIGURES.register("accuracy_matrix")
def plot_accuracy_matrix(df: pd.DataFrame, out_dir: str | Path, *, name: str = "accuracy_matrix",
                         formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                         keep_labels: bool = False) -> list[Path]:
    """Per group of task-sequence runs, the accuracy matrix as a heatmap: row i, column j holds the
    test accuracy on task j after training task i, the mean over seeds (the lower triangle is what
    was remembered, the diagonal what was just learned)."""
    if df.empty or MATRIX not in df.columns:
        return []
    groups = [(label, rows, stack) for _, label, rows in _labelled_groups(df, keep_labels)
              if (stack := _matrices(rows)) is not None]
    if not groups:
        return []
    fig, axes = _figure(len(groups), width=4.4, height=4.0)
    image = None
    for ax, (label, rows, stack) in zip(axes, groups):
        mean = stack.mean(axis=0)
        tasks = len(mean)
        image = ax.imshow(mean, vmin=0, vmax=100, cmap="viridis", origin="upper")
        if tasks <= 12:
            for i in range(tasks):
                for j in range(tasks):
                    ax.text(j, i, f"{mean[i, j]:.0f}", ha="center", va="center", fontsize="x-small",
                            color="white" if mean[i, j] < 60 else "black")
        ticks = range(0, tasks, max(1, math.ceil(tasks / 10)))
        ax.set_xticks(list(ticks), [str(t + 1) for t in ticks])
        ax.set_yticks(list(ticks), [str(t + 1) for t in ticks])
        ax.set_xlabel("task evaluated")
        ax.set_ylabel("after training task")
        ax.set_title(textwrap.fill(f"{label} (n={len(stack)})", 40), fontsize="medium")
    fig.colorbar(image, ax=axes, label="test accuracy (%)", shrink=0.8)
    fig.suptitle("Accuracy matrix: test accuracy on each task after each task learned (mean over seeds)")
    return save_figure(fig, out_dir, name, formats)


@FIGURES.register("first_task_accuracy")
def plot_first_task_accuracy(df: pd.DataFrame, out_dir: str | Path, *, name: str = "first_task_accuracy",
                             formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                             keep_labels: bool = False) -> list[Path]:
    """Against the number of tasks learned: the test accuracy on the first task, and the average
    accuracy over the tasks learned so far, one line per group of task-sequence runs."""
    from matplotlib.ticker import MaxNLocator

    if df.empty or MATRIX not in df.columns:
        return []
    groups = [(group, label, stack, rows) for group, label, rows in _labelled_groups(df, keep_labels)
              if (stack := _matrices(rows)) is not None]
    if not groups:
        return []
    fig, axes = _figure(2, width=5.0, height=3.7)
    handles, labels = [], []
    for place, ((_, label, stack, _), style) in enumerate(zip(groups, styles_for([rows for _, _, _, rows in groups]))):
        tasks = stack.shape[1]
        learned = np.arange(1, tasks + 1)
        so_far = np.stack([[run[i, :i + 1].mean() for i in range(tasks)] for run in stack])
        handles.append(_plot_curve(axes[0], learned, stack[:, :, 0], style=style, place=place))
        _plot_curve(axes[1], learned, so_far, style=style, place=place)
        labels.append(f"{label} (n={len(stack)})")
    for ax, title in zip(axes, ("Accuracy on task 1", "Average accuracy over the tasks learned so far")):
        ax.set_xlabel("tasks learned")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        _fit_y(ax, percent=True)
    _legend(fig, handles, labels)
    fig.suptitle(f"Forgetting over a task sequence ({BAND})")
    return save_figure(fig, out_dir, name, formats)


@FIGURES.register("task_sequence")
def plot_task_sequence(df: pd.DataFrame, out_dir: str | Path, *, name: str = "task_sequence",
                       formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                       keep_labels: bool = False) -> list[Path]:
    """For a claim on task sequences: ``first_task_accuracy`` (``<name>.*``) and each group's accuracy matrix
    (``<name>_matrix.*``), two figures."""
    return [*plot_first_task_accuracy(df, out_dir, name=name, formats=formats, keep_labels=keep_labels),
            *plot_accuracy_matrix(df, out_dir, name=f"{name}_matrix", formats=formats, keep_labels=keep_labels)]


# ----------------------------------------------------------------------------------------------------

# Figures a claim names that redraw others (with error for accuracy, or two figures in one): a report of
# every figure leaves them out.
CLAIM_ONLY = frozenset({"task_sequence", "training_error_curves"})


def figure_sets(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(prefix of the figures' names, rows) of each set of runs that shares figures: the whole frame when it
    holds one experiment, else one set per experiment (``<experiment>-``), so that a folder of many
    experiments gives figures of one experiment each, not one figure with every group of every one."""
    if "experiment" not in df.columns or df["experiment"].nunique(dropna=False) < 2:
        return [("", df)]
    return [(f"{experiment}-", rows) for experiment, rows in df.groupby("experiment", sort=True, dropna=False)]


def plot_all(df: pd.DataFrame, out_dir: str | Path, *, formats: Sequence[str] = FORMATS,
             failed: Callable[[str, Exception], None] | None = None) -> dict[str, list[Path]]:
    """Every figure that applies to ``df``, per experiment (``figure_sets``): {figure's file name: paths
    written}, figures without data left out. ``failed(name, error)``: called for a figure that raised
    (which then costs no other figure); without it the error is raised."""
    written = {}
    for prefix, rows in figure_sets(df):
        for figure, function in FIGURES.items():
            if figure in CLAIM_ONLY:
                continue
            try:
                paths = function(rows, out_dir, name=f"{prefix}{figure}", formats=formats)
            except Exception as error:  # noqa: BLE001 - handed to the caller, who decides
                if failed is None:
                    raise
                failed(f"{prefix}{figure}", error)
                continue
            if paths:
                written[f"{prefix}{figure}"] = paths
    return written


__all__ = ["FIGURES", "FORMATS", "figure_title", "noise_kinds", "plot_accuracy_vs_q", "plot_activation_sparsity_vs_q", "plot_all", "plot_dropout_rate_sweep",
           "plot_near_zero_curves", "plot_noise_curves", "plot_pruning_curves", "plot_sweep", "plot_task_sequence", "plot_training_curves", "plot_training_error_curves",
           "plot_weight_histograms", "save_figure"]
