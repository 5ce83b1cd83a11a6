"""How arms and verdicts are drawn: Okabe & Ito's palette, one colour and marker per arm in every figure of a
report (read back from the figures' own lines), arms named in words in legends, each claim's figure showing
the metric that decides it, the figures of a mixed folder drawn per experiment."""

from __future__ import annotations

import pytest
from report_records import make_record, write_record
from test_report_plots import sweep_df  # noqa: F401 - a fixture

from sparsebench.claims.catalogue import load_catalogue
from sparsebench.report import plots
from sparsebench.report.aggregate import load_records, select
from sparsebench.report.names import arm_label, metric_label
from sparsebench.report.style import (
    ARMS,
    OKABE_ITO,
    VERDICT_INK,
    VERDICT_STYLES,
    arm_family,
    ink,
    styles_for,
)

# Okabe & Ito (2008), Color Universal Design, as published (RGB 0-255): written out here, not read from the code.
PUBLISHED = {"black": (0, 0, 0), "orange": (230, 159, 0), "sky blue": (86, 180, 233), "bluish green": (0, 158, 115),
             "yellow": (240, 228, 66), "blue": (0, 114, 178), "vermillion": (213, 94, 0),
             "reddish purple": (204, 121, 167)}


def test_the_palette_is_okabe_itos():
    assert {name: tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for name, h in OKABE_ITO.items()} == PUBLISHED
    palette = {h.upper() for h in OKABE_ITO.values()}
    assert {s.color.upper() for _, s in ARMS.values()} <= palette
    # No two arms look alike: each (colour, marker) pair once.
    assert len({(s.color, s.marker) for _, s in ARMS.values()}) == len(ARMS)
    # Verdicts apart by shape as well as colour.
    assert len({s.marker for s in VERDICT_STYLES.values()}) == len(VERDICT_STYLES)


def test_verdict_text_colours_are_their_marks_darkened_as_matplotlib_computes_it():
    from matplotlib.colors import to_hex, to_rgb

    def reference(colour):  # 60% of each channel, by matplotlib's own colour arithmetic
        return to_hex(tuple(0.6 * c for c in to_rgb(colour)))

    for colour in [*OKABE_ITO.values(), "#777777", "#ffffff", "#0a0b0c"]:
        assert ink(colour) == reference(colour)
    assert VERDICT_INK == {verdict: reference(style.color) for verdict, style in VERDICT_STYLES.items()}
    assert ink("#E69F00") == "#8a5f00"  # by hand: 0.6 x (230, 159, 0) = (138, 95.4, 0)
    with pytest.raises(ValueError, match="'orange': give it as #rrggbb"):
        ink("orange")


def drawn(monkeypatch) -> list:
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out_dir, name, formats, dpi=plots.DPI: figures.append(fig) or [])
    return figures


def legend_styles(fig) -> dict[str, tuple[str, str, str]]:
    """Legend label (without its seed count) -> (colour, marker, line style) of the line it names."""
    legend = fig.legends[0]
    out = {}
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        label = text.get_text().split(" (n=")[0]
        out[label] = (handle.get_color(), handle.get_marker(), handle.get_linestyle())
    return out


@pytest.fixture
def arms(tmp_path):
    """Three arms, two seeds each: no regularizer, dropout 0.5, L1 λ=1e-05 (records with noise and pruning curves)."""
    folder = tmp_path / "arms"
    for seed in (0, 1):
        write_record(folder, make_record({"name": "none"}, seed, 98.0 + seed * 0.1))
        write_record(folder, make_record({"name": "dropout", "p": 0.5}, seed, 98.2 + seed * 0.1))
        write_record(folder, make_record({"name": "l1", "lam": 1e-05}, seed, 97.9 + seed * 0.1))
    return load_records(folder)[0]


def test_each_arm_has_one_style_in_every_figure(arms, tmp_path, monkeypatch):
    figures = drawn(monkeypatch)
    everything = arms
    two = select(arms, {"regularizer.name": ["none", "dropout"]})
    plots.plot_training_curves(everything, tmp_path)
    plots.plot_noise_curves(two, tmp_path)
    plots.plot_pruning_curves(select(arms, {"regularizer.name": ["l1", "dropout"]}), tmp_path)
    styles = [legend_styles(fig) for fig in figures]
    # Legends name arms in words; labels differ with what varies in each figure, the arm's look does not.
    dropout = {label: style for figure in styles for label, style in figure.items() if label.startswith("dropout")}
    none = {label: style for figure in styles for label, style in figure.items() if label == "no regularizer"}
    l1 = {label: style for figure in styles for label, style in figure.items() if label.startswith("L1")}
    assert set(dropout.values()) == {("#E69F00", "s", "--")}  # Okabe-Ito orange
    assert set(none.values()) == {("#000000", "o", "-")}
    assert set(l1.values()) == {("#56B4E9", "^", "-.")}  # sky blue
    assert not any("regularizer=" in label for figure in styles for label in figure)  # named in words
    assert sum(len(s) for s in styles) >= 7
    # The lines on the axes are drawn as their legend says (not only the handles).
    axes_lines = {(line.get_color(), line.get_marker(), line.get_linestyle()) for line in figures[0].axes[0].lines}
    assert {("#E69F00", "s", "--"), ("#000000", "o", "-"), ("#56B4E9", "^", "-.")} <= axes_lines


def test_groups_of_one_family_in_one_figure_get_distinct_styles(tmp_path):
    folder = tmp_path / "rates"
    for p in (0.2, 0.5):
        write_record(folder, make_record({"name": "dropout", "p": p}, 0, 98.0))
    write_record(folder, make_record({"name": "none"}, 0, 98.0))
    df = load_records(folder)[0]
    groups = [rows for _, rows in df.groupby("group")]
    styles = styles_for(groups)
    assert len({(s.color, s.marker) for s in styles}) == 3
    assert [arm_family(g) for g in groups].count("dropout") == 2
    assert ARMS["none"][1] in styles and ARMS["dropout"][1] in styles


def test_k_winners_arms_are_told_apart_by_their_sparsity():
    import pandas as pd

    def rows(**settings):
        return pd.DataFrame([{f"regularizer.{k}": v for k, v in settings.items()} | {"experiment": "continual_mlp"}])

    assert arm_family(rows(name="kwinners", percent_on=[0.1], weight_density=0.5)) == "kwinners"
    assert arm_family(rows(name="kwinners", percent_on=[0.1], weight_density=1.0)) == "kwinners_only"
    assert arm_family(rows(name="kwinners", percent_on=[1.0], weight_density=0.5)) == "sparse_weights"
    narrow = rows(name="none").assign(experiment="continual_mlp_dense_narrow")
    assert arm_family(narrow) == "dense_narrow"
    assert arm_family(rows(name="dropout", p=0.5, max_norm=3.0)) == "dropout_maxnorm"


def test_arm_labels_read_as_the_papers_write_them():
    assert arm_label("regularizer=l1 lam=1e-05") == "L1 λ=1e-5"
    assert arm_label("regularizer=none") == "no regularizer"
    assert arm_label("regularizer=kwinners percent_on=[0.1] weight_density=0.5") == \
        "k-winners active share=0.1 weight density=0.5"
    assert arm_label("Sparse CNN-2 DSW") == "Sparse CNN-2 DSW"


def test_each_claims_figure_shows_the_metric_that_decides_it(sweep_df, tmp_path, monkeypatch):  # noqa: F811
    """S4 is decided on test accuracy, S1 on Hoyer sparsity: the same runs, two different figures, each with
    its deciding metric on the first panel's y axis."""
    catalogue = load_catalogue()
    figures = drawn(monkeypatch)
    for claim_id in ("S1", "S4"):
        claim = catalogue[claim_id]
        plots.FIGURES[claim.figure](sweep_df, tmp_path, name=claim_id)
    s1, s4 = figures
    primary = {c: catalogue[c].checks[catalogue[c].primary_index].metric for c in ("S1", "S4")}
    assert primary == {"S1": "activations/mean/hoyer", "S4": "test/accuracy"}
    assert s4.axes[0].get_ylabel() == "test accuracy (%)" == metric_label(primary["S4"])
    assert s1.axes[0].get_ylabel().startswith("Hoyer")
    # The accuracy drawn is the records' mean per q (95 + q + 0.05: seeds add 0 and 0.1).
    # (the q runs' line; not its error-bar caps, nor the dropout baseline's horizontal line)
    means = sorted(y for line in s4.axes[0].lines if line.get_marker() != "_" and len(line.get_xdata()) == 3
                   for y in line.get_ydata())
    assert means == pytest.approx([96.05, 97.05, 98.05])


def test_the_dropout_papers_figure_plots_error_and_names_a_hidden_line(tmp_path, monkeypatch):
    """P-DO plots test error (100 − accuracy), as the paper's figures do; its max-norm runs equal the dropout
    runs seed for seed, and the legend says one line lies under the other."""
    folder = tmp_path / "pdo"
    for seed in (0, 1):
        for config in ({"name": "dropout", "p": 0.5}, {"name": "dropout", "p": 0.5, "max_norm": 3.0}):
            record = make_record(config, seed, 98.0)
            for entry in record["history"]:  # the template's two epochs
                entry["test_accuracy"] = 90.0 + entry["epoch"] + seed
            write_record(folder, record)
    df = load_records(folder)[0]
    assert load_catalogue()["P-DO"].figure == "training_error_curves"
    figures = drawn(monkeypatch)
    plots.FIGURES["training_error_curves"](df, tmp_path)
    ax = figures[0].axes[0]
    assert ax.get_ylabel() == "test error (%)"
    # Both groups' mean error per epoch: 100 − (90 + epoch + mean seed 0.5).
    assert len(ax.lines) == 2
    for line in ax.lines:
        assert list(line.get_ydata()) == pytest.approx([8.5, 7.5])
    texts = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert sum("the same curve as" in t for t in texts) == 1


def test_a_mixed_folder_gives_figures_per_experiment(tmp_path, monkeypatch):
    folder = tmp_path / "mixed"
    for experiment, config in (("alpha", {"name": "none"}), ("beta", {"name": "dropout", "p": 0.5})):
        for seed in (0, 1):
            write_record(folder, make_record(config, seed, 98.0, experiment=experiment))
    df = load_records(folder)[0]
    assert sorted(df["experiment"].unique()) == ["alpha", "beta"]
    # Which figures are made, not how they look: none is rendered.
    monkeypatch.setattr(plots, "save_figure", lambda fig, out_dir, name, formats, dpi=plots.DPI: [f"{name}.png"])
    written = plots.plot_all(df, tmp_path / "out")
    assert "alpha-noise_curves" in written and "beta-noise_curves" in written
    assert not any(name in written for name in ("noise_curves", "training_error_curves", "task_sequence"))


def test_a_sweep_of_tuned_arms_draws_one_line_through_each_arms_own_setting(tmp_path, monkeypatch):
    """Each q tuned to its own learning rate: one line over q (not one single-point series per rate), and the
    legend says each point has its own rate."""
    folder = tmp_path / "tuned"
    for q, lr in ((1.0, 0.01), (2.0, 0.02), (3.0, 0.05)):
        for seed in (0, 1):
            write_record(folder, make_record({"name": "sparseout", "q": q, "p": 0.5}, seed, 95.0 + q,
                                             **{"train.lr": lr}))
    df = load_records(folder)[0]
    assert df["train.lr"].nunique() == 3
    figures = drawn(monkeypatch)
    plots.plot_accuracy_vs_q(df, tmp_path)
    lines = [line for line in figures[0].axes[0].lines if line.get_marker() != "_"]
    assert len(lines) == 1 and list(lines[0].get_ydata()) == pytest.approx([96.0, 97.0, 98.0])
    texts = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert "each point at its own learning rate (chosen per Sparseout exponent q)" in texts


def test_a_regime_maps_sweep_draws_one_line_per_cell_though_each_cell_tunes_its_own_rate(tmp_path, monkeypatch):
    """A regime map: two widths (cells), each dropout rate at the learning rate tuned for it in that cell,
    so no rate has one learning rate across cells. One line per width through both rates, each point the
    mean of its seeds (not one single-point series per cell and rate)."""
    folder = tmp_path / "map"
    tuned = {(128, 0.2): 0.05, (128, 0.6): 0.025, (1024, 0.2): 0.1, (1024, 0.6): 0.05}  # 0.05 in both cells
    for (width, p), lr in tuned.items():
        for seed in (0, 1):
            accuracy = 97.0 + (width == 1024) - 2 * p + 0.1 * seed
            record = make_record({"name": "dropout", "p": p}, seed, accuracy,
                                 **{"train.lr": lr, "model.hidden": [width, width]})
            # What the record says was tuned, as a map's records say it (the rate, over a grid).
            record["config"]["tune"] = {"arms": [{"arm": {}, "space": {"train.lr": [0.025, 0.05, 0.1]}}]}
            write_record(folder, record)
    df = load_records(folder)[0]
    figures = drawn(monkeypatch)
    plots.plot_dropout_rate_sweep(df, tmp_path)
    lines = [line for line in figures[0].axes[0].lines if line.get_marker() != "_" and len(line.get_xdata()) > 0]
    test_lines = sorted(list(line.get_ydata()) for line in lines if line.get_linestyle() == "-")
    # Test accuracy of each width at p 0.2 and 0.6, the mean of seeds 0 and 1 (+0.05): by hand.
    assert test_lines == [pytest.approx([96.65, 95.85]), pytest.approx([97.65, 96.85])]
    texts = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert "each point at its own learning rate (chosen per dropout rate p)" in texts
    assert sum("hidden=" in text for text in texts) == 2


def test_the_dropout_rate_sweep_draws_the_hoyer_sparsity_its_claims_are_decided_on(tmp_path, monkeypatch):
    """D1's and D3's primary checks read the Hoyer sparsity of |w|: the rate sweep has a panel of it, each
    point the mean over seeds of the records' values (set here by hand: 0.3 − p/10 plus 0 or 0.01 by seed)."""
    folder = tmp_path / "rates"
    for p in (0.2, 0.4, 0.6):
        for seed in (0, 1):
            record = make_record({"name": "dropout", "p": p}, seed, 98.0)
            record["metrics"]["weights"]["final"]["global"]["hoyer"] = 0.3 - p / 10 + 0.01 * seed
            write_record(folder, record)
    df = load_records(folder)[0]
    assert load_catalogue()["D3"].figure == "dropout_rate_sweep"
    figures = drawn(monkeypatch)
    plots.plot_dropout_rate_sweep(df, tmp_path)
    panel = next(ax for ax in figures[0].axes if ax.get_title().startswith("Hoyer"))
    means = [y for line in panel.lines if line.get_marker() != "_" and len(line.get_xdata()) == 3
             for y in line.get_ydata()]
    assert means == pytest.approx([0.285, 0.265, 0.245])
