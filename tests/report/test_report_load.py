"""Records -> DataFrame: columns, groups, labels, and every bad file skipped with its reason."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
from report_records import make_record, regularizer_config, write_record

from sparsebench.report.aggregate import (
    config_columns,
    load_records,
    make_labels,
    metric_columns,
    select,
    varying_columns,
)


def test_one_row_per_run_with_config_and_metric_columns(results):
    df, skipped = load_records(results)
    assert skipped == []
    assert len(df) == 9 and df["group"].nunique() == 3
    for column in ("run_id", "experiment", "seed", "group", "label", "path", "regularizer.name", "regularizer.p",
                   "train.lr", "dataset.name", "model.hidden", "test/accuracy", "generalization_gap",
                   "weights/final/global/abs_0.001", "noise/pixels/score", "activations/hidden1/hoyer",
                   "prune/largest_within_margin/one_shot", "history"):
        assert column in df.columns, column
    assert "regularizer.name" in config_columns(df) and "test/accuracy" in metric_columns(df)
    assert "seed" not in metric_columns(df) and "regularizer.p" not in metric_columns(df)
    row = df[(df["regularizer.name"] == "none") & (df["seed"] == 1)].iloc[0]
    assert row["test/accuracy"] == 98.2
    assert math.isnan(row["regularizer.p"])  # another regularizer's parameter: missing
    assert row["model.hidden"] == [128, 128]  # lists stay lists
    assert isinstance(row["weights/final_profile/curve_fractions"], list)
    assert isinstance(row["history"], list) and row["history"][0]["epoch"] == 1
    assert row["weights/change/global/abs_0.001"] == pytest.approx(0.021 - 0.01)
    assert pd.api.types.is_float_dtype(df["test/accuracy"])


def test_labels_name_what_varies_between_groups(results):
    df, _ = load_records(results)
    assert sorted(df["label"].unique()) == ["regularizer=dropout p=0.2", "regularizer=dropout p=0.5",
                                            "regularizer=none"]
    # Within each group the label and group id are shared, and groups differ only in the seed.
    assert (df.groupby("group")["label"].nunique() == 1).all()
    assert (df.groupby("group")["seed"].apply(sorted).map(tuple) == (0, 1, 2)).all()
    # A subset: only what varies inside it.
    subset = df[df["regularizer.name"] == "dropout"]
    assert sorted(make_labels(subset).unique()) == ["p=0.2", "p=0.5"]
    # A subset labelled as the whole names what varies across the whole (here p, where a group has it).
    one_rate = df[df["regularizer.p"].isna() | (df["regularizer.p"] == 0.5)]
    assert sorted(make_labels(one_rate).unique()) == ["regularizer=dropout", "regularizer=none"]
    assert varying_columns(df) == ["regularizer.name", "regularizer.p"]
    assert sorted(make_labels(one_rate, include=varying_columns(df)).unique()) == \
        ["regularizer=dropout p=0.5", "regularizer=none"]


def test_group_ignores_paths_devices_and_seed_but_not_settings(tmp_path):
    folder = tmp_path / "r"
    write_record(folder, make_record({"name": "none"}, 0, 90.0, results_dir="/a", device="cpu"))
    write_record(folder, make_record({"name": "none"}, 1, 91.0, results_dir="/b", device="cuda"))
    write_record(folder, make_record({"name": "none"}, 0, 92.0, **{"train.lr": 0.1}))
    df, _ = load_records(folder)
    assert df["group"].nunique() == 2
    assert sorted(df["label"].unique()) == ["lr=0.01", "lr=0.1"]


def test_new_regularizer_keys_become_columns_and_label_parts(tmp_path):
    folder = tmp_path / "r"
    for q in (1.5, 2.0, 3.0):
        for seed in (0, 1):
            record = make_record({"name": "sparseout", "q": q, "p": 0.5}, seed, 90.0 + q)
            write_record(folder, record)
    write_record(folder, make_record(regularizer_config("dropout", 0.5), 0, 91.0))
    df, _ = load_records(folder)
    assert "regularizer.q" in df.columns
    assert set(df["label"]) == {"regularizer=sparseout q=1.5", "regularizer=sparseout q=2",
                                "regularizer=sparseout q=3", "regularizer=dropout"}
    assert len(select(df, {"regularizer.q": 2})) == 2


def test_labels_stay_distinct_when_groups_differ_only_by_a_key_one_lacks(tmp_path):
    folder = tmp_path / "r"
    write_record(folder, make_record({"name": "x"}, 0, 90.0))
    write_record(folder, make_record({"name": "x", "extra": 3}, 0, 90.0))
    df, _ = load_records(folder)
    assert df["group"].nunique() == 2 and df["label"].nunique() == 2


def test_bad_files_are_skipped_and_named_without_crashing(messy_results):
    df, skipped = load_records(messy_results)
    assert len(df) == 9  # the good runs only
    reasons = {item.path.parent.name: item.reason for item in skipped}
    [failed] = [name for name, reason in reasons.items() if reason.startswith("failed run")]
    reasons["failed"] = reasons.pop(failed)
    assert set(reasons) == {"truncated", "a_list", "binary", "empty_file", "failed", "running", "no_metrics"}
    assert "not valid JSON" in reasons["truncated"]
    assert "list" in reasons["a_list"]
    assert "binary" in reasons["binary"]
    assert "empty" in reasons["empty_file"]
    assert "failed" in reasons["failed"] and "loss is nan" in reasons["failed"]
    assert "not completed" in reasons["running"]
    assert "not a valid record" in reasons["no_metrics"] and "'metrics' is a required property" in reasons["no_metrics"]
    assert all(str(item).startswith(str(item.path)) for item in skipped)
    assert not any("_hydra" in str(item.path) for item in skipped)


def test_a_record_that_says_completed_but_holds_nothing_is_not_used(results):
    damaged = results / "damaged" / "run"
    damaged.mkdir(parents=True)
    (damaged / "result.json").write_text('{"status": "completed"}')
    df, skipped = load_records(results)
    assert len(df) == 9
    [item] = [s for s in skipped if s.path.parent == damaged]
    assert "not a valid record" in item.reason and "'run_id' is a required property" in item.reason


def test_a_copied_record_is_counted_once_and_named_as_a_copy(results):
    source = min(results.rglob("result.json"))
    copy = results / "copy" / "same_run"
    copy.mkdir(parents=True)
    (copy / "result.json").write_text(source.read_text())
    for deduplicate in (True, False):
        df, skipped = load_records(results, deduplicate=deduplicate)
        assert len(df) == 9
        assert [(s.path, s.reason.split(",")[0]) for s in skipped] == [(copy / "result.json", f"a copy of {source}")]


def test_an_archive_inside_the_results_folder_is_named_and_its_originals_counted(results):
    archive = results / "archive" / "2025"
    shutil.copytree(results / "exp", archive / "exp")
    df, skipped = load_records(results)
    assert len(df) == 9 and not any(path.startswith(str(archive)) for path in df["path"])
    assert len(skipped) == 9 and all(s.path.is_relative_to(archive) and "a copy of" in s.reason for s in skipped)


def test_the_same_config_and_seed_in_two_experiments_counts_once_unless_asked(results):
    source = min(results.rglob("result.json"))
    record = json.loads(source.read_text())
    record.update(experiment="other")
    record["config"]["name"] = "other"
    other = write_record(results, record)
    df, skipped = load_records(results)
    assert len(df) == 9 and len(skipped) == 1 and "duplicate" in skipped[0].reason
    df_all, skipped_all = load_records(results, deduplicate=False)
    assert len(df_all) == 10 and skipped_all == [] and str(other.parent) in set(df_all["path"])


def test_missing_metrics_leave_gaps_not_errors(tmp_path):
    folder = tmp_path / "r"
    record = make_record({"name": "none"}, 0, 90.0)
    del record["metrics"]["noise"], record["metrics"]["prune"]  # measurements a run may leave out
    write_record(folder, record)
    write_record(folder, make_record({"name": "none"}, 1, 91.0))
    df, skipped = load_records(folder)
    assert skipped == [] and len(df) == 2
    first = df[df["seed"] == 0].iloc[0]
    assert pd.isna(first["noise/pixels/score"]) and pd.isna(first["prune/unpruned_accuracy"])


def test_an_empty_or_foreign_folder_gives_an_empty_frame(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.yaml").write_text("a: 1\n")
    (tmp_path / "notes.json").write_text(json.dumps({"status": "completed"}))
    df, skipped = load_records(tmp_path)
    assert df.empty and skipped == []


def test_select_matches_numbers_missing_values_and_lists(results):
    df, _ = load_records(results)
    assert len(select(df, {"regularizer.name": "dropout"})) == 6
    assert len(select(df, {"regularizer.name": "dropout", "regularizer.p": 0.5})) == 3
    assert len(select(df, {"regularizer.p": None})) == 3
    assert len(select(df, {"regularizer.p": [0.2, 0.5]})) == 6
    assert len(select(df, {"model.hidden": [128, 128]})) == 9
    with pytest.raises(KeyError, match="regularizer.q"):
        select(df, {"regularizer.q": 2})


def test_runs_of_several_experiments_name_each_arms_learning_rate_where_the_arms_differ(tmp_path):
    """K4's legend: two k-winners arms (one experiment) both at lr 5e-4, the dense arm (another) at 6.25e-5.
    Within the k-winners experiment the rate does not vary, yet it differs from the dense arm's: every label
    names it."""
    from sparsebench.claims.evaluate import claim_labels

    folder = tmp_path / "r"
    for seed in (0, 1):
        write_record(folder, make_record({"name": "none"}, seed, 90.0, experiment="dense", **{"train.lr": 6.25e-5}))
        for density in (0.5, 1.0):
            write_record(folder, make_record({"name": "none"}, seed, 88.0, experiment="sparse",
                                             **{"train.lr": 5e-4, "train.batch_size": 128 if density == 1.0 else 64}))
    df, _ = load_records(folder)
    labels = claim_labels(df)
    by_experiment = {e: sorted(set(labels[df["experiment"] == e])) for e in ("dense", "sparse")}
    assert by_experiment["dense"] == ["dense lr=6.25e-05"]
    assert all("lr=0.0005" in label for label in by_experiment["sparse"]) and len(by_experiment["sparse"]) == 2
