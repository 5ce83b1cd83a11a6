"""Figures: written as PNG and PDF, non-empty, decodable; skipped when their data is absent."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest
from report_records import make_record, write_record

from sparsebench.report.aggregate import load_records
from sparsebench.report.plots import (FIGURES, plot_activation_sparsity_vs_q, plot_all, plot_dropout_rate_sweep,
                                      plot_noise_curves, plot_pruning_curves, plot_training_curves)


def check_figure(paths: list[Path], name: str) -> None:
    assert sorted(p.name for p in paths) == [f"{name}.pdf", f"{name}.png"]
    for path in paths:
        assert path.stat().st_size > 1024, path
    image = matplotlib.image.imread(next(p for p in paths if p.suffix == ".png"))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01  # not a blank canvas
    assert next(p for p in paths if p.suffix == ".pdf").read_bytes().startswith(b"%PDF")


@pytest.fixture(scope="module")
def sweep_df(tmp_path_factory):
    """Sparseout-like runs over q (2 seeds each) beside a dropout baseline, activations rising with q."""
    folder = tmp_path_factory.mktemp("sweep")
    for q in (1.0, 2.0, 3.0):
        for seed in (0, 1):
            record = make_record({"name": "sparseout", "q": q, "p": 0.5}, seed, 95.0 + q + seed * 0.1)
            for layer in record["metrics"]["activations"].values():
                layer["hoyer"] = 0.2 * q + 0.01 * seed
                layer["zero_fraction"] = 0.1 * q + 0.01 * seed
            write_record(folder, record, name=f"q{q}_{seed}")
    for seed in (0, 1):
        write_record(folder, make_record({"name": "dropout", "p": 0.5}, seed, 96.0), name=f"dropout_{seed}")
    return load_records(folder)[0]


def test_every_figure_is_written_for_the_standard_results(results, tmp_path):
    df, _ = load_records(results)
    written = plot_all(df, tmp_path)
    # q is not in these records, nor a task sequence
    assert set(written) == set(FIGURES) - {"activation_sparsity_vs_q", "accuracy_matrix", "first_task_accuracy"}
    for name, paths in written.items():
        check_figure(paths, name)
    assert not list(tmp_path.glob(".*.tmp"))


def test_activation_sparsity_against_q_only_when_q_varies(sweep_df, results, tmp_path):
    check_figure(plot_activation_sparsity_vs_q(sweep_df, tmp_path), "activation_sparsity_vs_q")
    df, _ = load_records(results)
    assert plot_activation_sparsity_vs_q(df, tmp_path / "none") == []
    one_q = sweep_df[sweep_df["regularizer.q"].isna() | (sweep_df["regularizer.q"] == 2.0)]
    assert plot_activation_sparsity_vs_q(one_q, tmp_path / "one") == []
    assert not (tmp_path / "none").exists() and not (tmp_path / "one").exists()


def test_dropout_rate_sweep_only_when_p_varies(results, tmp_path):
    df, _ = load_records(results)
    assert plot_dropout_rate_sweep(df[df["regularizer.p"] != 0.2], tmp_path) == []
    check_figure(plot_dropout_rate_sweep(df, tmp_path), "dropout_rate_sweep")


def test_a_figure_of_a_subset_under_its_own_name(results, tmp_path):
    df, _ = load_records(results)
    subset = df[df["regularizer.name"] == "dropout"]
    check_figure(plot_pruning_curves(subset, tmp_path, name="claim_D5"), "claim_D5")
    assert plot_noise_curves(subset, tmp_path, name="k1", formats=("png",))[0].name == "k1.png"


def test_figures_without_their_data_write_nothing(tmp_path):
    folder = tmp_path / "r"
    for seed in (0, 1):
        record = make_record({"name": "none"}, seed, 90.0)
        del record["metrics"]["noise"], record["metrics"]["prune"], record["history"]
        write_record(folder, record, name=str(seed))
    df, _ = load_records(folder)
    out = tmp_path / "out"
    assert plot_noise_curves(df, out) == [] and plot_pruning_curves(df, out) == []
    assert plot_training_curves(df, out) == []
    assert plot_all(df.iloc[0:0], out) == {}
    assert not out.exists() or not any(p.suffix in (".png", ".pdf") and "noise" in p.name for p in out.iterdir())


def test_one_seed_per_group_draws_without_bands(tmp_path):
    folder = tmp_path / "r"
    write_record(folder, make_record({"name": "none"}, 0, 90.0), name="a")
    write_record(folder, make_record({"name": "dropout", "p": 0.5}, 0, 91.0), name="b")
    df, _ = load_records(folder)
    written = plot_all(df, tmp_path / "out")
    assert "noise_curves" in written and "weight_histograms" in written
