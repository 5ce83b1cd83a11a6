"""Tables: per group (every config value but the seed), the mean of each metric over seeds with its 95%
Student-t interval, and the files ``runs.csv``, ``summary.csv``, ``summary.md`` and ``summary.tex``.

- ``runs.csv``: one row per run, every scalar column of the DataFrame (lists left out).
- ``summary.csv``: long format, one row per (group, metric): ``group``, ``label``, the config columns that
  vary between groups, ``metric``, ``n``, ``mean``, ``std``, ``half_width``, ``low``, ``high``, ``note``.
- ``summary.md`` / ``summary.tex``: a readable selection of the key metrics (see ``key_metrics``), one
  table per theme, rows = groups, cells ``mean ± half-width (n)``.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sparsebench.atomic import atomic_write_text
from sparsebench.report.aggregate import (
    canonical,
    is_missing,
    metric_columns,
    ordered_groups,
    relevant_columns,
    varies,
)
from sparsebench.report.names import metric_label
from sparsebench.report.stats import t_quantile

SUMMARY_COLUMNS = ["metric", "n", "mean", "std", "half_width", "low", "high", "note"]
NO_INTERVAL = "n=1: no interval"


def varying_config(df: pd.DataFrame) -> list[str]:
    """The result-relevant config columns that take more than one value across ``df`` (the label's parts)."""
    return [c for c in relevant_columns(df) if c not in ("seed", "name") and varies(df, c)]


def summarize(df: pd.DataFrame, metrics: Sequence[str] | None = None, *, level: float = 0.95) -> pd.DataFrame:
    """Per group and numeric metric: seed count ``n`` (runs with a value), ``mean``, ``std`` (n − 1),
    the Student-t interval ``low``/``high`` = mean ∓ t_{(1+level)/2, n−1}·std/√n and its ``half_width``.
    For n = 1 std and the interval are NaN and ``note`` says so. Long format: one row per (group, metric),
    groups in label order, metrics in the order given (default: every numeric metric column)."""
    metrics = list(metric_columns(df) if metrics is None else metrics)
    config = varying_config(df)
    columns = ["group", "label", *config, *SUMMARY_COLUMNS]
    if df.empty or not metrics:
        return pd.DataFrame(columns=columns)
    values = df[metrics].apply(lambda column: pd.to_numeric(column, errors="coerce"))
    values = values.where(np.isfinite(values.astype(float)))
    grouped = values.groupby(df["group"], sort=False)
    means, stds, counts = grouped.mean(), grouped.std(ddof=1), grouped.count()
    rows = []
    for group, label, members in ordered_groups(df):
        first = members.iloc[0]
        for metric in metrics:
            n = int(counts.at[group, metric])
            if n == 0:
                continue
            mean = float(means.at[group, metric])
            std = float(stds.at[group, metric]) if n > 1 else math.nan
            # No interval from zero spread (every run the same value), as from a single run.
            half = float(t_quantile(n, level)) * std / math.sqrt(n) if n > 1 and std > 0 else math.nan
            rows.append({"group": group, "label": label, **{c: first[c] for c in config}, "metric": metric, "n": n,
                         "mean": mean, "std": std, "half_width": half, "low": mean - half, "high": mean + half,
                         "note": NO_INTERVAL if n == 1 else ""})
    return pd.DataFrame(rows, columns=columns)


# ----------------------------------------------------------------------------------------------------
# The key metrics of the readable tables


_KINDS = ("abs", "rel", "rms")  # absolute, x σ_init, x the layer's own RMS


def _threshold_order(key: str) -> tuple:
    kind, _, t = key.partition("_")
    try:
        return (_KINDS.index(kind), float(t))
    except ValueError:
        return (_KINDS.index(kind), math.inf)


def key_metrics(df: pd.DataFrame) -> list[tuple[str, list[tuple[str, str]]]]:
    """The metrics of the readable tables, found from the columns present: [(section, [(column, header)])];
    headers are the metrics' names and units (``report.names``)."""
    columns = list(df.columns)
    have = set(columns)
    sections: list[tuple[str, list[tuple[str, str]]]] = []

    accuracy = [(c, metric_label(c)) for c in ("test/accuracy", "generalization_gap", "dropout_on/accuracy_mean")
                if c in have]
    sections.append(("Accuracy", accuracy))

    keys = sorted({c.rsplit("/", 1)[1] for c in columns if c.startswith("weights/final/global/")
                   and re.fullmatch(r"(abs|rel|rms)_.+", c.rsplit("/", 1)[1])}, key=_threshold_order)
    near_zero = []
    for key in keys:
        near_zero.append((f"weights/final/global/{key}", metric_label(f"weights/final/global/{key}")))
        if f"weights/change/global/{key}" in have:
            near_zero.append((f"weights/change/global/{key}", metric_label(f"weights/change/global/{key}")))
    near_zero += [(c, metric_label(c)) for c in ("weights/final/global/hoyer", "weights/final/global_mean/hoyer")
                  if c in have]
    sections.append(("Near-zero weights and Hoyer sparsity (all layers)", near_zero))

    layers = list(dict.fromkeys(m.group(1) for c in columns if (m := re.fullmatch(r"activations/([^/]+)/\w+", c))))
    activations = []
    for layer in layers:
        for stat in ("zero_fraction", "hoyer"):
            if f"activations/{layer}/{stat}" in have:
                activations.append((f"activations/{layer}/{stat}", metric_label(f"activations/{layer}/{stat}")))
    sections.append(("Hidden activations (test set)", activations))

    noise = [(c, metric_label(c)) for c in columns if re.fullmatch(r"noise/([^/]+)/score", c)]
    sections.append(("Noise robustness (correct predictions summed over levels)", noise))

    margin = ""
    if "prune/margin" in have:
        margins = {canonical(v) for v in df["prune/margin"] if not is_missing(v)}
        if len(margins) == 1:
            margin = f" within {df['prune/margin'].dropna().iloc[0]:g} point(s) of the unpruned accuracy"
    prune = [(c, metric_label(c)) for c in columns if re.fullmatch(r"prune/largest_within_margin/([^/]+)", c)]
    sections.append((f"Pruning (largest pruned fraction{margin or ' within the margin'})", prune))

    speed = [(c, metric_label(c)) for c in ("speed/seconds_per_epoch",) if c in have]
    sections.append(("Speed", speed))
    numeric = set(metric_columns(df))
    return [(title, [(c, h) for c, h in items if c in numeric]) for title, items in sections
            if any(c in numeric for c, _ in items)]


# ----------------------------------------------------------------------------------------------------
# Formatting


def _decimals(half_width: float) -> int | None:
    """Decimals that show the half-width to two significant digits (None when it is 0 or undefined)."""
    if half_width is None or not math.isfinite(half_width) or half_width <= 0:
        return None
    return int(min(8, max(0, 1 - math.floor(math.log10(half_width)))))


def format_cell(mean: float, half_width: float, n: int, pm: str = "±") -> str:
    """``mean ± half-width (n)``; the mean alone, ``mean (n)``, when there is no interval; ``–`` for no data."""
    if n == 0 or mean is None or not math.isfinite(mean):
        return "–"
    digits = _decimals(half_width)
    if digits is None:  # one run, or runs that all gave the same value: no interval
        return f"{mean:.4g} ({n}{', all equal' if n >= 2 else ''})"
    text = f"{mean:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return f"{text} {pm} {half_width:.{digits}f} ({n})"


def key_table(df: pd.DataFrame, summary: pd.DataFrame | None = None, pm: str = "±"
              ) -> list[tuple[str, pd.DataFrame]]:
    """The readable tables: per section of ``key_metrics``, a DataFrame of formatted cells with one row
    per group (``group``, ``seeds`` columns first) and one column per key metric."""
    sections = key_metrics(df)
    wanted = [c for _, items in sections for c, _ in items]
    summary = summarize(df, wanted) if summary is None else summary
    index = {(r.group, r.metric): r for r in summary.itertuples(index=False)}
    groups = ordered_groups(df)
    tables = []
    for title, items in sections:
        rows = []
        for group, label, members in groups:
            row = {"group": label, "seeds": str(len(members))}
            for column, header in items:
                r = index.get((group, column))
                row[header] = format_cell(r.mean, r.half_width, r.n, pm) if r is not None else "–"
            rows.append(row)
        tables.append((title, pd.DataFrame(rows)))
    return tables


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (first column left-aligned, the others right-aligned)."""
    headers = [_md_escape(c) for c in table.columns]
    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join([":---"] + ["---:"] * (len(headers) - 1)) + " |"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(v) for v in row) + " |")
    return "\n".join(lines)


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"$<$", ">": r"$>$", "|": r"$|$",
        "±": r"$\pm$", "−": r"$-$", "–": r"--", "Δ": r"$\Delta$", "·": r"$\cdot$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def latex_table(table: pd.DataFrame, caption: str) -> str:
    """A booktabs ``table`` environment with the cells of ``table`` escaped for LaTeX."""
    spec = "l" + "r" * (len(table.columns) - 1)
    lines = [r"\begin{table}[ht]", r"\centering\small", f"\\caption{{{tex_escape(caption)}}}",
             f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(tex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(tex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def groups_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per group: label, group id, seeds, experiments."""
    rows = []
    for group, label, members in ordered_groups(df):
        seeds = sorted(int(s) for s in members["seed"])
        rows.append({"group": label, "id": group, "seeds": ", ".join(map(str, seeds)),
                     "experiment": ", ".join(sorted({str(e) for e in members["experiment"]}))})
    return pd.DataFrame(rows, columns=["group", "id", "seeds", "experiment"])


LEGEND = ("Cells: mean ± half-width of the 95% Student-t interval over seeds (number of seeds with a value); "
          "a cell without ± comes from a single seed, which gives no interval.")


def markdown_summary(df: pd.DataFrame, summary: pd.DataFrame | None = None, title: str = "Summary") -> str:
    groups = df["group"].nunique() if not df.empty else 0
    parts = [f"# {title}", "", f"{len(df)} runs in {groups} groups. {LEGEND}", "", "## Groups", "",
             markdown_table(groups_table(df))]
    for section, table in key_table(df, summary):
        parts += ["", f"## {section}", "", markdown_table(table)]
    return "\n".join(parts) + "\n"


def latex_summary(df: pd.DataFrame, summary: pd.DataFrame | None = None) -> str:
    parts = ["% sparsebench summary tables; needs \\usepackage{booktabs}. " + LEGEND.replace("±", "+/-"), ""]
    parts.append(latex_table(groups_table(df), "Groups"))
    for section, table in key_table(df, summary, pm="±"):
        parts += ["", latex_table(table, section)]
    return "\n".join(parts) + "\n"


def runs_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run with every scalar column (columns holding lists or dicts left out)."""
    keep = [c for c in df.columns if not df[c].map(lambda v: isinstance(v, (list, tuple, dict))).any()]
    return df[keep]


def _csv(path: Path, table: pd.DataFrame) -> Path:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    return atomic_write_text(path, buffer.getvalue())


def write_tables(df: pd.DataFrame, out_dir: str | Path, *, title: str = "Summary") -> list[Path]:
    """Write runs.csv, summary.csv, summary.md and summary.tex into ``out_dir`` (each atomically)."""
    out = Path(out_dir)
    summary = summarize(df)
    written = [_csv(out / "runs.csv", runs_table(df)), _csv(out / "summary.csv", summary)]
    written.append(atomic_write_text(out / "summary.md", markdown_summary(df, summary, title)))
    written.append(atomic_write_text(out / "summary.tex", latex_summary(df, summary)))
    return written


__all__ = ["NO_INTERVAL", "format_cell", "groups_table", "key_metrics", "key_table", "latex_summary",
           "markdown_summary", "markdown_table", "runs_table", "summarize", "varying_config", "write_tables"]
