"""Figures: written as PNG and PDF, non-empty, decodable; skipped when their data is absent."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest
from report_records import make_record, write_record

from sparsebench.report.aggregate import load_records
from sparsebench.report.plots import (
    CLAIM_ONLY,
    FIGURES,
    plot_activation_sparsity_vs_q,
    plot_all,
    plot_dropout_rate_sweep,
    plot_near_zero_curves,
    plot_noise_curves,
    plot_pruning_curves,
    plot_training_curves,
)


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
            write_record(folder, record)
    for seed in (0, 1):
        write_record(folder, make_record({"name": "dropout", "p": 0.5}, seed, 96.0))
    return load_records(folder)[0]


def test_every_figure_is_written_for_the_standard_results(results, tmp_path):
    df, _ = load_records(results)
    written = plot_all(df, tmp_path)
    # q is not in these records, nor a task sequence
    # (a report of every figure leaves out those that only redraw others for a claim: CLAIM_ONLY)
    assert set(written) == set(FIGURES) - {"activation_sparsity_vs_q", "accuracy_vs_q", "accuracy_matrix",
                                           "first_task_accuracy"} - CLAIM_ONLY
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
        write_record(folder, record)
    df, _ = load_records(folder)
    out = tmp_path / "out"
    assert plot_noise_curves(df, out) == [] and plot_pruning_curves(df, out) == []
    assert plot_training_curves(df, out) == []
    assert plot_all(df.iloc[0:0], out) == {}
    assert not out.exists() or not any(p.suffix in (".png", ".pdf") and "noise" in p.name for p in out.iterdir())


def test_one_seed_per_group_draws_without_bands(tmp_path):
    folder = tmp_path / "r"
    write_record(folder, make_record({"name": "none"}, 0, 90.0))
    write_record(folder, make_record({"name": "dropout", "p": 0.5}, 0, 91.0))
    df, _ = load_records(folder)
    written = plot_all(df, tmp_path / "out", formats=("png",))
    assert "noise_curves" in written and "weight_histograms" in written


# ----------------------------------------------------------------------------------------------------
# The difference panel: A − B per x with its Welch interval


# Pixel-noise accuracy per level of each run: the spreads differ from level to level.
NOISY = {("none", 0): [98.0, 90.0, 70.0], ("none", 1): [98.4, 91.0, 74.0], ("none", 2): [98.2, 92.5, 71.0],
         ("dropout", 0): [97.0, 93.0, 80.0], ("dropout", 1): [97.6, 93.4, 86.0]}


def welch_by_hand(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """mean(a) − mean(b) and its 95% Welch interval, written out from the textbook formula."""
    from scipy.stats import t

    mean = lambda v: sum(v) / len(v)  # noqa: E731
    var = lambda v: sum((x - mean(v)) ** 2 for x in v) / (len(v) - 1)  # noqa: E731
    sa, sb = var(a) / len(a), var(b) / len(b)
    dof = (sa + sb) ** 2 / (sa ** 2 / (len(a) - 1) + sb ** 2 / (len(b) - 1))
    half = t.ppf(0.975, dof) * (sa + sb) ** 0.5
    effect = mean(a) - mean(b)
    return effect, effect - half, effect + half


@pytest.fixture
def noisy_df(tmp_path):
    folder = tmp_path / "noisy"
    for (name, seed), accuracies in NOISY.items():
        record = make_record({"name": name} if name == "none" else {"name": name, "p": 0.5}, seed, accuracies[0])
        record["metrics"]["noise"]["pixels"].update(levels=[0.0, 0.2, 0.4], accuracy=accuracies)
        write_record(folder, record)
    return load_records(folder)[0]


def test_difference_curve_is_welch_per_point(noisy_df):
    from sparsebench.report.plots import _curve, difference_curve

    a = noisy_df[noisy_df["regularizer.name"] == "dropout"]
    b = noisy_df[noisy_df["regularizer.name"] == "none"]
    x, effect, low, high = difference_curve(a, b, lambda rows: _curve(rows, "noise/pixels/levels",
                                                                       "noise/pixels/accuracy"))
    assert list(x) == [0.0, 0.2, 0.4]
    for i in range(3):
        expected = welch_by_hand([NOISY[("dropout", s)][i] for s in (0, 1)], [NOISY[("none", s)][i] for s in (0, 1, 2)])
        assert (effect[i], low[i], high[i]) == pytest.approx(expected, rel=1e-9)


def test_noise_figure_draws_the_difference_of_the_checks_sides(noisy_df, tmp_path, monkeypatch):
    """The panel under the curves holds exactly those numbers, titled by the two sides' labels."""
    from sparsebench.report import plots

    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out_dir, name, formats: drawn.append(fig) or [Path("x.png")])
    contrast = ({"regularizer.name": "dropout"}, {"regularizer.name": "none"})
    assert plot_noise_curves(noisy_df, tmp_path, contrasts=[contrast])
    panels = [ax for ax in drawn[0].axes if ax.get_title().startswith("difference")]
    assert len(panels) == 3  # one under each kind of noise; the pixel-noise one holds the numbers above
    assert all(ax.get_title() == "difference: dropout − no regularizer" for ax in panels)  # arms named in words
    panels = [ax for ax in panels if ax.get_xlabel() == "pixel noise level"]
    line = next(line for line in panels[0].get_lines() if len(line.get_xdata()) == 3)
    expected = [welch_by_hand([NOISY[("dropout", s)][i] for s in (0, 1)],
                              [NOISY[("none", s)][i] for s in (0, 1, 2)])[0] for i in range(3)]
    assert list(line.get_ydata()) == pytest.approx(expected)
    assert panels[0].get_ylabel().replace("\n", " ") == "Δ test accuracy under pixel noise (points)"
    # A selector naming a column these runs lack leaves the curves alone, without a difference panel.
    drawn.clear()
    assert plot_noise_curves(noisy_df, tmp_path, contrasts=[({"regularizer.q": 2.0}, {"regularizer.name": "none"})])
    assert not [ax for ax in drawn[0].axes if ax.get_title().startswith("difference")]


def test_every_curve_figure_takes_contrasts_and_grows_a_row_per_contrast(results, tmp_path):
    df, _ = load_records(results)
    contrasts = [({"regularizer.p": 0.5}, {"regularizer.name": "none"}),
                 ({"regularizer.p": 0.2}, {"regularizer.name": "none"})]
    for function in (plot_noise_curves, plot_pruning_curves, plot_training_curves, plot_near_zero_curves):
        plain = matplotlib.image.imread(function(df, tmp_path / "plain", formats=("png",))[0])
        paths = function(df, tmp_path / "with", formats=("png",), contrasts=contrasts)
        image = matplotlib.image.imread(paths[0])
        assert image.shape[0] > plain.shape[0] * 1.5, function.__name__  # two rows of difference panels below



def test_a_figure_keeps_the_callers_labels_only_when_told(noisy_df, tmp_path, monkeypatch):
    """A claim names its groups itself (across experiments): its figures take keep_labels=True; by default a
    figure labels the groups by what varies among the runs given."""
    from sparsebench.report import plots

    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out_dir, name, formats: drawn.append(fig) or [Path("x.png")])
    named = noisy_df.assign(label=["plain" if name == "none" else "dropped" for name in noisy_df["regularizer.name"]])
    plot_noise_curves(named, tmp_path, keep_labels=True)
    plot_noise_curves(named, tmp_path)
    kept, made = ([text.get_text() for legend in fig.legends for text in legend.get_texts()] for fig in drawn)
    assert sorted(label.split()[0] for label in kept) == ["dropped", "plain"]
    assert not any("plain" in label or "dropped" in label for label in made)
    assert any("dropout" in label for label in made)


def test_a_png_figure_is_written_on_a_palette_and_keeps_its_title(tmp_path):
    """The claims page inlines every PNG: they are written on a 256-colour palette (a third of the bytes),
    with the figure's title in the file for the page's alt text."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from sparsebench.report.plots import figure_title, save_figure

    fig, ax = plt.subplots()
    ax.imshow([[0.0, 0.5], [0.75, 1.0]])
    fig.suptitle("a matrix")
    [path] = save_figure(fig, tmp_path, "m", ["png"])
    plt.close(fig)
    with Image.open(path) as image:
        assert image.mode == "P" and len(image.getcolors(256)) <= 256
    assert figure_title(path) == "a matrix"
