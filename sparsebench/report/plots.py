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

import math
import re
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from sparsebench.atomic import atomic_write  # noqa: E402
from sparsebench.records.paths import is_number  # noqa: E402
from sparsebench.registry import Registry  # noqa: E402
from sparsebench.report.aggregate import (  # noqa: E402
    canonical,
    is_missing,
    make_labels,
    natural_key,
    relevant_columns,
    select,
    varies,
)
from sparsebench.report.names import difference_label, metric_label, metric_name  # noqa: E402
from sparsebench.report.stats import t_quantile, welch_interval  # noqa: E402

FORMATS = ("png", "pdf")
BAND = "mean over seeds; band: 95% t-interval"
BARS = "mean over seeds; bars: 95% t-interval"
DPI = 130
DIFFERENCE = "A − B: difference of means; band: 95% Welch interval per point"

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
    key = df["group"] if key is None else key
    label = df["label"] if label is None else label
    out = [(k, str(label.loc[rows.index[0]]), rows) for k, rows in df.groupby(key, sort=False)]
    return sorted(out, key=lambda item: natural_key(item[1]))


def _labelled_groups(df: pd.DataFrame, keep_labels: bool = False) -> list[tuple[str, str, pd.DataFrame]]:
    """The groups of ``df`` in plotting order, labelled by what varies among them (or by its own
    ``label`` column with ``keep_labels``)."""
    return _groups(_relabelled(df, keep_labels))


def _colors(count: int) -> list:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _figure(panels: int, width: float = 4.8, height: float = 3.6, columns: int = 3) -> tuple[Figure, list]:
    ncols = min(panels, columns)
    nrows = math.ceil(panels / ncols)
    # At least two panels wide, so that a lone panel leaves room for the title and the legend.
    fig = Figure(figsize=(max(width * ncols, 2 * width), height * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _save(fig: Figure, out_dir: str | Path, name: str, formats: Sequence[str], dpi: int = DPI) -> list[Path]:
    out = Path(out_dir)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        # A tight box grows the page to hold a title or legend wider than few panels.
        atomic_write(path, lambda stream, fmt=fmt: fig.savefig(stream, format=fmt, dpi=dpi, bbox_inches="tight"))
        paths.append(path)
    return paths


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


def _plot_curve(ax, x: np.ndarray, matrix: np.ndarray, color, label: str | None = None, linestyle: str = "-",
                band: bool = True, marker: str | None = None, linewidth: float = 1.6):
    mean, low, high, _ = _band(matrix)
    keep = np.isfinite(mean)
    line, = ax.plot(x[keep], mean[keep], color=color, linestyle=linestyle, marker=marker, markersize=4,
                    label=label, linewidth=linewidth)
    if band and np.isfinite(low).any():
        ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    return line


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
    labels = list(dict.fromkeys(str(label) for label in rows["label"])) if "label" in rows.columns else []
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
                ax.plot(x, effect, color="0.1", marker="o" if len(x) < 12 else None, markersize=3.5, linewidth=1.5)
                if len(x) == 1 and np.isfinite(low).all():  # a band needs two points: one gets an error bar
                    ax.errorbar(x, effect, yerr=[effect - low, high - effect], color="0.1", capsize=4)
                elif np.isfinite(low).any():
                    ax.fill_between(x, low, high, color="0.1", alpha=0.18, linewidth=0)
            else:
                ax.text(0.5, 0.5, "no shared points", transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_title(textwrap.fill(f"difference: {title}", 64), fontsize="small")
            ax.set_ylabel(textwrap.fill(difference_label(path), 28), fontsize="small")
            ax.grid(alpha=0.3)


def _difference_handle() -> Line2D:
    return Line2D([], [], color="0.1", linewidth=1.5)


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
    final_e, final_f = "weights/final_profile/histogram_edges", "weights/final_profile/histogram_fractions"
    init_e, init_f = "weights/init_profile/histogram_edges", "weights/init_profile/histogram_fractions"
    if df.empty or not _has_lists(df, final_e, final_f):
        return []
    groups = [g for g in _labelled_groups(df, keep_labels) if _has_lists(g[2], final_e, final_f)]
    colors = _colors(len(groups))
    fig, axes = _figure(len(groups), width=4.4, height=3.2)
    for ax, (_, label, rows), color in zip(axes, groups, colors):
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
        ax.set_title(f"{label} (n={len(rows)})", fontsize="medium")
        ax.set_xlabel(metric_label(final_e))
        ax.set_ylabel(metric_label(final_f))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color="0.2", linestyle="-"), Line2D([], [], color="0.45", linestyle="--")]
    _legend(fig, handles, ["final (band: 95% t-interval over seeds)", "at initialisation"])
    fig.suptitle("Weight-magnitude histograms per group")
    return _save(fig, out_dir, name, formats)


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
    x_f, y_f = "weights/final_profile/curve_thresholds", "weights/final_profile/curve_fractions"
    x_i, y_i = "weights/init_profile/curve_thresholds", "weights/init_profile/curve_fractions"
    if df.empty or not _has_lists(df, x_f, y_f):
        return []
    groups = _labelled_groups(df, keep_labels)
    sides = _contrast_sides(df, contrasts)
    fig, axes, below = _figure_with_differences(1, len(sides), width=7.0, height=4.6)
    ax = axes[0]
    handles, labels = [], []
    for (_, label, rows), color in zip(groups, _colors(len(groups))):
        final = _curve(rows, x_f, y_f)
        if final is None:
            continue
        handles.append(_plot_curve(ax, *final, color=color))
        labels.append(f"{label} (n={_count(rows, y_f)})")
        init = _curve(rows, x_i, y_i)
        if init is not None:
            _plot_curve(ax, *init, color=color, linestyle="--", band=False, linewidth=1.0)
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
    return _save(fig, out_dir, name, formats)


# ----------------------------------------------------------------------------------------------------
# Pruning and noise


@FIGURES.register("pruning_curves")
def plot_pruning_curves(df: pd.DataFrame, out_dir: str | Path, *, name: str = "pruning_curves",
                        formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                        keep_labels: bool = False) -> list[Path]:
    """Test accuracy against the fraction of weights pruned by magnitude: one-shot and after fine-tuning
    (a panel each), with each group's unpruned accuracy as a dotted reference line; under each, the
    difference of accuracies of each contrast."""
    x = "prune/fractions"
    kinds = [(c, t) for c, t in (("prune/one_shot_accuracy", "one-shot"), ("prune/finetuned_accuracy", "fine-tuned"))
             if _has_lists(df, x, c)]
    if df.empty or not kinds:
        return []
    groups = _labelled_groups(df, keep_labels)
    colors = _colors(len(groups))
    sides = _contrast_sides(df, contrasts)
    fig, axes, below = _figure_with_differences(len(kinds), len(sides), width=5.2, height=3.9)
    fractions = sorted({f for v in df[x] for f in (_as_floats(v) or []) if math.isfinite(f)})
    logit = bool(fractions) and all(0 < f < 1 for f in fractions)
    handles: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for ax, (column, title) in zip(axes, kinds):
        for (group, label, rows), color in zip(groups, colors):
            curve = _curve(rows, x, column)
            if curve is None:
                continue
            line = _plot_curve(ax, *curve, color=color, marker="o")
            unpruned = pd.to_numeric(rows.get("prune/unpruned_accuracy"), errors="coerce")
            if unpruned is not None and unpruned.notna().any():
                ax.axhline(float(unpruned.mean()), color=color, linestyle=":", linewidth=1.2)
            handles.setdefault(group, line)
            labels.setdefault(group, f"{label} (n={_count(rows, column)})")
        if logit:
            ax.set_xscale("logit")
            ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
            ax.minorticks_off()
        ax.set_ylabel(metric_label(column))
        ax.set_title(title)
        ax.grid(alpha=0.3)
    _x_label(axes, below, metric_label(x))
    _draw_differences(below, sides, [lambda rows, c=c: _curve(rows, x, c) for c, _ in kinds], [c for c, _ in kinds])
    _legend(fig, [*handles.values(), Line2D([], [], color="0.3", linestyle=":"), *([_difference_handle()] * bool(sides))],
            [*labels.values(), f"{metric_name('prune/unpruned_accuracy').name} (dotted)", *[DIFFERENCE] * bool(sides)])
    fig.suptitle(f"Pruning curves ({BAND})")
    return _save(fig, out_dir, name, formats)


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
    colors = _colors(len(groups))
    sides = _contrast_sides(df, contrasts)
    fig, axes, below = _figure_with_differences(len(kinds), len(sides), width=4.6, height=3.6)
    handles, labels = {}, {}
    for ax, kind in zip(axes, kinds):
        for (group, label, rows), color in zip(groups, colors):
            curve = _curve(rows, f"noise/{kind}/levels", f"noise/{kind}/accuracy")
            if curve is None:
                continue
            line = _plot_curve(ax, *curve, color=color, marker="o")
            handles.setdefault(group, line)
            labels.setdefault(group, f"{label} (n={_count(rows, f'noise/{kind}/accuracy')})")
        ax.set_title(metric_name(f"noise/{kind}/levels").name.removesuffix(" level"))
        ax.set_ylabel(metric_label(f"noise/{kind}/accuracy"))
        ax.grid(alpha=0.3)
    for column, (ax, kind) in enumerate(zip(axes, kinds)):
        (below[-1][column] if below else ax).set_xlabel(metric_label(f"noise/{kind}/levels"))
    _draw_differences(below, sides, [lambda rows, k=k: _curve(rows, f"noise/{k}/levels", f"noise/{k}/accuracy")
                                     for k in kinds], [f"noise/{k}/accuracy" for k in kinds])
    _legend(fig, [*handles.values(), *([_difference_handle()] * bool(sides))],
            [*labels.values(), *[DIFFERENCE] * bool(sides)])
    fig.suptitle(f"Accuracy under input noise ({BAND})")
    return _save(fig, out_dir, name, formats)


# ----------------------------------------------------------------------------------------------------
# Sweeps of one config value


def plot_sweep(df: pd.DataFrame, parameter: str, panels: Sequence[tuple[str, str, Sequence[tuple[str, str]]]],
               out_dir: str | Path, *, name: str, title: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Metrics against one config value (``parameter``): ``panels`` = [(title, y label, [(column, line
    name)])]. Runs that differ in anything else form separate series (colours); runs without the
    parameter (a baseline such as no regularizer) are drawn as horizontal dotted lines at their mean.
    Error bars: 95% t-interval over seeds. Returns [] unless ``parameter`` takes two or more values."""
    if df.empty or not varies(df, parameter):
        return []
    df = df.copy()
    exclude = {parameter, "seed"}
    key_columns = [c for c in relevant_columns(df) if c not in exclude]
    keys = df[key_columns].apply(lambda row: "|".join(canonical(v) for v in row), axis=1) if key_columns \
        else pd.Series("all", index=df.index)
    labels = make_labels(df, keys=keys, exclude=exclude) if key_columns else pd.Series("", index=df.index)
    series = _groups(df, keys, labels)
    colors = _colors(len(series))
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
        for (_, label, rows), color in zip(series, colors):
            values = pd.to_numeric(rows[parameter], errors="coerce") if parameter in rows.columns else None
            swept = rows[values.notna()] if values is not None else rows.iloc[0:0]
            baseline = rows[values.isna()] if values is not None else rows
            for i, (column, _) in enumerate(lines):
                if len(swept):
                    x, mean, half, n = _sweep_points(swept, parameter, column)
                    if len(x):
                        ax.errorbar(x, mean, yerr=half, color=color, linestyle=styles[i % 4], marker=markers[i % 5],
                                    markersize=4, capsize=3, linewidth=1.4)
                        low, high = int(min(n)), int(max(n))
                        seeds = f"n={low}" if low == high else f"n={low}–{high}"
                        entries.setdefault(f"{label or parameter} ({seeds} per point)",
                                           Line2D([], [], color=color, marker="o", markersize=4))
                if len(baseline):
                    level = pd.to_numeric(baseline[column], errors="coerce").dropna()
                    if len(level):
                        ax.axhline(float(level.mean()), color=color, linestyle=styles[i % 4], linewidth=0.9,
                                   alpha=0.7)
                        entries.setdefault(f"{label or 'runs'} without {parameter} (n={len(level)}; horizontal line)",
                                           Line2D([], [], color=color, linewidth=0.9, alpha=0.7))
        ax.set_xlabel(metric_label(parameter))
        ax.set_ylabel(y_label)
        ax.set_title(panel_title, fontsize="medium")
        ax.grid(alpha=0.3)
    for _, _, lines in panels:
        if len(lines) > 1:
            for i, (_, line_name) in enumerate(lines):
                entries.setdefault(line_name, Line2D([], [], color="0.3", linestyle=styles[i % 4],
                                                     marker=markers[i % 5], markersize=4))
    _legend(fig, list(entries.values()), list(entries))
    fig.suptitle(f"{title} ({BARS})")
    return _save(fig, out_dir, name, formats)


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


@FIGURES.register("dropout_rate_sweep")
def plot_dropout_rate_sweep(df: pd.DataFrame, out_dir: str | Path, *, parameter: str = "regularizer.p",
                            name: str = "dropout_rate_sweep", formats: Sequence[str] = FORMATS,
                            contrasts: Sequence[Contrast] | None = None, keep_labels: bool = False) -> list[Path]:
    """Test and train accuracy, and the global near-zero share of final weights at each threshold, against
    the dropout rate (or ``parameter``); only when it takes two or more values."""
    keys = sorted({c.rsplit("/", 1)[1] for c in df.columns if re.fullmatch(r"weights/final/global/(abs|rel)_.+", c)},
                  key=lambda k: (not k.startswith("abs"), natural_key(k)))
    panels = [("Accuracy", "accuracy (%)", [("test/accuracy", metric_name("test/accuracy").name),
                                            ("train/accuracy", metric_name("train/accuracy").name)])]
    for key in keys:
        named = metric_name(f"weights/final/global/{key}")
        panels.append((named.name.capitalize(), named.unit, [(f"weights/final/global/{key}", "")]))
    return plot_sweep(df, parameter, panels, out_dir, name=name, formats=formats,
                      title=f"Accuracy and near-zero weights against {metric_name(parameter).name}")


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
    if df.empty or "history" not in df.columns:
        return []
    present = {key for history in df["history"] if isinstance(history, list)
               for epoch in history if isinstance(epoch, dict) for key in epoch}
    keys = [(k, metric_name(f"history/{k}").name.capitalize(), metric_label(f"history/{k}"))
            for k in ("test_accuracy", "train_loss") if k in present]
    if not keys:
        return []
    groups = _labelled_groups(df, keep_labels)
    colors = _colors(len(groups))
    sides = _contrast_sides(df, contrasts)
    fig, axes, below = _figure_with_differences(len(keys), len(sides), width=5.0, height=3.7)
    handles: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for ax, (key, title, y_label) in zip(axes, keys):
        for (group, label, rows), color in zip(groups, colors):
            curve = _history_curve(rows, key)
            if curve is None:
                continue
            line = _plot_curve(ax, *curve, color=color, marker="o" if len(curve[0]) < 12 else None)
            handles.setdefault(group, line)
            labels.setdefault(group, f"{label} (n={len(curve[1])})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_ylabel(y_label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    _x_label(axes, below, metric_label("history/epoch"))
    for row in below:
        for ax in row:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    _draw_differences(below, sides, [lambda rows, k=k: _history_curve(rows, k) for k, _, _ in keys],
                      [f"history/{k}" for k, _, _ in keys])
    _legend(fig, [*handles.values(), *([_difference_handle()] * bool(sides))],
            [*labels.values(), *[DIFFERENCE] * bool(sides)])
    fig.suptitle(f"Training curves ({BAND})")
    return _save(fig, out_dir, name, formats)


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
        ax.set_title(f"{label} (n={len(stack)})", fontsize="medium")
    fig.colorbar(image, ax=axes, label="test accuracy (%)", shrink=0.8)
    fig.suptitle("Accuracy matrix: test accuracy on each task after each task learned (mean over seeds)")
    return _save(fig, out_dir, name, formats)


@FIGURES.register("first_task_accuracy")
def plot_first_task_accuracy(df: pd.DataFrame, out_dir: str | Path, *, name: str = "first_task_accuracy",
                             formats: Sequence[str] = FORMATS, contrasts: Sequence[Contrast] | None = None,
                             keep_labels: bool = False) -> list[Path]:
    """Against the number of tasks learned: the test accuracy on the first task, and the average
    accuracy over the tasks learned so far, one line per group of task-sequence runs."""
    if df.empty or MATRIX not in df.columns:
        return []
    groups = [(group, label, stack) for group, label, rows in _labelled_groups(df, keep_labels)
              if (stack := _matrices(rows)) is not None]
    if not groups:
        return []
    fig, axes = _figure(2, width=5.0, height=3.7)
    handles, labels = [], []
    for (_, label, stack), color in zip(groups, _colors(len(groups))):
        tasks = stack.shape[1]
        learned = np.arange(1, tasks + 1)
        so_far = np.stack([[run[i, :i + 1].mean() for i in range(tasks)] for run in stack])
        handles.append(_plot_curve(axes[0], learned, stack[:, :, 0], color=color, marker="o"))
        _plot_curve(axes[1], learned, so_far, color=color, marker="o")
        labels.append(f"{label} (n={len(stack)})")
    for ax, title in zip(axes, ("Accuracy on task 1", "Average accuracy over the tasks learned so far")):
        ax.set_xlabel("tasks learned")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    _legend(fig, handles, labels)
    fig.suptitle(f"Forgetting over a task sequence ({BAND})")
    return _save(fig, out_dir, name, formats)


# ----------------------------------------------------------------------------------------------------

def plot_all(df: pd.DataFrame, out_dir: str | Path, *, formats: Sequence[str] = FORMATS) -> dict[str, list[Path]]:
    """Every figure that applies to ``df``: {figure name: paths written} (figures without data left out)."""
    written = {}
    for figure, function in FIGURES.items():
        paths = function(df, out_dir, formats=formats)
        if paths:
            written[figure] = paths
    return written


__all__ = ["FIGURES", "FORMATS", "noise_kinds", "plot_activation_sparsity_vs_q", "plot_all", "plot_dropout_rate_sweep",
           "plot_near_zero_curves", "plot_noise_curves", "plot_pruning_curves", "plot_sweep", "plot_training_curves",
           "plot_weight_histograms"]
