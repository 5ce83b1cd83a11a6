"""The figures of task sequences: the accuracy matrix per group and the first task's accuracy against
the tasks learned, from records holding ``metrics.continual``; nothing for records without one."""

from __future__ import annotations

import numpy as np
from report_records import make_record, write_record
from test_report_plots import check_figure

from sparsebench.report.aggregate import load_records
from sparsebench.report.plots import (
    FIGURES,
    plot_accuracy_matrix,
    plot_first_task_accuracy,
)

SEQUENCE = {"name": "permuted", "tasks": 4, "min_steps": 0, "seed": 42, "changed_threshold": 0.01}


def sequence_record(regularizer: str, seed: int, keep: float) -> dict:
    """A record of a 4-task sequence whose earlier tasks keep ``keep`` of their accuracy per later task."""
    record = make_record({"name": regularizer}, seed, 95.0, continual=SEQUENCE)
    matrix = [[95.0 * keep ** (i - j) if j <= i else 10.0 for j in range(4)] for i in range(4)]
    record["metrics"]["continual"] = {"accuracy_matrix": matrix, "forgetting": 95.0 * (1 - keep) + seed}
    return record


def test_sequence_figures_per_group(tmp_path):
    folder = tmp_path / "r"
    for seed in (0, 1):
        write_record(folder, sequence_record("none", seed, 0.7))
        write_record(folder, sequence_record("kwinners", seed, 0.9 + 0.01 * seed))
    df, skipped = load_records(folder)
    assert not skipped and len(df) == 4 and df["group"].nunique() == 2
    assert np.asarray(df["continual/accuracy_matrix"].iloc[0]).shape == (4, 4)
    check_figure(plot_accuracy_matrix(df, tmp_path / "out"), "accuracy_matrix")
    check_figure(plot_first_task_accuracy(df, tmp_path / "out", name="K4_first_task_accuracy"),
                 "K4_first_task_accuracy")
    assert FIGURES["accuracy_matrix"] is plot_accuracy_matrix


def test_no_sequence_no_figure(tmp_path):
    folder = tmp_path / "r"
    for seed in (0, 1):
        write_record(folder, make_record({"name": "none"}, seed, 90.0))
    df, _ = load_records(folder)
    out = tmp_path / "out"
    assert plot_accuracy_matrix(df, out) == [] and plot_first_task_accuracy(df, out) == []
    assert not out.exists()
