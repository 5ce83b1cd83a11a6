"""Summary tables: numbers against hand computations, and the four files."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from sparsebench.report.aggregate import load_records
from sparsebench.report.tables import (
    NO_INTERVAL,
    format_cell,
    key_metrics,
    summarize,
    write_tables,
)

T_975_2 = 4.302652729749462


def test_summary_numbers_match_hand_computations(results):
    df, _ = load_records(results)
    summary = summarize(df, ["test/accuracy", "weights/change/global/abs_0.001"])
    row = summary[(summary["label"] == "regularizer=dropout p=0.2") & (summary["metric"] == "test/accuracy")].iloc[0]
    values = [97.0, 97.5, 97.3]
    mean = sum(values) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    half = T_975_2 * std / math.sqrt(3)
    assert row["n"] == 3 and row["mean"] == pytest.approx(mean) and row["std"] == pytest.approx(std)
    assert row["half_width"] == pytest.approx(half)
    assert (row["low"], row["high"]) == pytest.approx((mean - half, mean + half))
    assert row["regularizer.p"] == 0.2 and row["note"] == ""
    change = summary[(summary["label"] == "regularizer=none")
                     & (summary["metric"] == "weights/change/global/abs_0.001")]
    assert change.iloc[0]["mean"] == pytest.approx(0.02 - 0.01)
    # Groups in label order, metrics in the order asked.
    assert list(summary["label"].unique()) == ["regularizer=dropout p=0.2", "regularizer=dropout p=0.5",
                                               "regularizer=none"]


def test_one_seed_has_no_interval_and_missing_values_are_not_counted(results):
    df, _ = load_records(results)
    df = df[~((df["regularizer.name"] == "none") & (df["seed"] > 0))].copy()
    df.loc[df["label"] == "regularizer=dropout p=0.5", "test/accuracy"] = [96.0, float("nan"), 96.4]
    summary = summarize(df, ["test/accuracy"]).set_index("label")
    alone = summary.loc["regularizer=none"]
    assert alone["n"] == 1 and alone["mean"] == 98.0 and math.isnan(alone["std"]) and math.isnan(alone["half_width"])
    assert alone["note"] == NO_INTERVAL
    partial = summary.loc["regularizer=dropout p=0.5"]
    assert partial["n"] == 2 and partial["mean"] == pytest.approx(96.2)


def test_format_cell():
    assert format_cell(97.2345, 0.1234, 3) == "97.23 ± 0.12 (3)"
    assert format_cell(0.026682, 0.00123, 5) == "0.0267 ± 0.0012 (5)"
    assert format_cell(5742.0, 150.4, 3) == "5742 ± 150 (3)"
    assert format_cell(69.3, float("nan"), 1) == "69.3 (1)"
    assert format_cell(float("nan"), float("nan"), 0) == "–"
    assert format_cell(-0.00001, 0.0093, 3) == "0.0000 ± 0.0093 (3)"  # no "-0.0000"


def test_key_metrics_are_found_from_the_columns(results):
    df, _ = load_records(results)
    sections = dict(key_metrics(df))
    columns = [c for items in sections.values() for c, _ in items]
    for column in ("test/accuracy", "generalization_gap", "weights/final/global/abs_0.001",
                   "weights/change/global/abs_0.001", "weights/final/global/rel_0.1", "activations/hidden2/hoyer",
                   "activations/hidden1/zero_fraction", "noise/gaussian/score", "prune/largest_within_margin/one_shot",
                   "speed/seconds_per_epoch"):
        assert column in columns, column
    assert "weights/final/global/count" not in columns
    no_noise = df.drop(columns=[c for c in df.columns if c.startswith("noise/")])
    assert not any("Noise" in title for title, _ in key_metrics(no_noise))


def test_write_tables_writes_four_readable_files(results, tmp_path):
    df, _ = load_records(results)
    paths = write_tables(df, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["runs.csv", "summary.csv", "summary.md", "summary.tex"]
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 9 and "test/accuracy" in runs.columns and "history" not in runs.columns
    assert "weights/final_profile/curve_fractions" not in runs.columns
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert {"group", "label", "metric", "n", "mean", "std", "half_width", "low", "high"} <= set(summary.columns)
    markdown = (tmp_path / "out" / "summary.md").read_text()
    none = [98.0, 98.2, 98.1]
    mean = sum(none) / 3
    half = T_975_2 * math.sqrt(sum((v - mean) ** 2 for v in none) / 2) / math.sqrt(3)
    assert f"| regularizer=none | 3 | {format_cell(mean, half, 3)} |" in markdown
    # Headed by the metric's name and unit (report.names), "|" escaped for Markdown.
    assert "## Near-zero weights" in markdown and "near-zero share, \\|w\\| < 0.001 (fraction of weights)" in markdown
    block: list[str] = []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
        elif block:  # every row of a table has as many cells as its header
            assert len({len(re.findall(r"(?<!\\)\|", row)) for row in block}) == 1, block
            block = []
    tex = (tmp_path / "out" / "summary.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and "±" not in tex.split("\n", 1)[1]
    assert not list((tmp_path / "out").glob(".*.tmp"))
