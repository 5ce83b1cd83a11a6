"""Trackers, end to end: a real run logs to each one, and what each stored is read back with the tracker's
own reader (TensorBoard's event accumulator, MLflow's client on its file store, W&B's record format) and
compared with the run's result.json. Each test skips where its tracker's package is not installed."""

from __future__ import annotations

import csv
import dataclasses
import importlib.abc
import json
import os
import struct
import sys
from pathlib import Path

import pytest
import yaml

from sparsebench import cli
from sparsebench.identity import config_hash, result_relevant
from sparsebench.runner import run, run_dir_for
from tests.conftest import TINY, call_command

# Two epochs and a few measurements of every kind, so that there is a history and a summary to compare.
LOGGED = ["regularizer=dropout", "train.epochs=2", "eval.noise=[pixels]", "eval.pixel_levels=[0.0,0.3]", "prune.fractions=[0.5,0.9]",
          "prune.finetune_epochs=0", "eval.train_mode_passes=2"]


SWEEP = "2026-12-03_12-00-00-000000"  # as a Hydra multirun's sweep folder is named


def completed(make_config, *overrides: str) -> dict:
    """A run of LOGGED and ``overrides``, told them as its command line's overrides and one sweep's job."""
    outcome = run(make_config(*LOGGED, *overrides), overrides=[*LOGGED, *overrides], sweep=SWEEP)
    assert outcome.status == "completed", outcome.message
    record = json.loads((outcome.path / "result.json").read_text())
    record["folder"] = outcome.path
    record["overrides"] = [*LOGGED, *overrides]
    return record


def expected_name(record: dict) -> str:
    """Hydra's override_dirname of the run's overrides but logger= (which changes no number): sorted by
    key, joined with commas."""
    chosen = [o for o in record["overrides"] if not o.startswith("logger=")]
    return ",".join(sorted(chosen, key=lambda o: o.partition("=")[0]))


# Settings that say where or how a run ran, never what it is: none may be a hyperparameter.
NOT_HYPERPARAMETERS = ("dataset.root", "dataset.mirrors", "dataset.folder", "dataset.download", "dataset.digest",
                       "results_dir", "progress", "threads", "device", "logger", "name", "objective", "retry_failed",
                       "train.compile", "eval.batch_size")


def expected_hyperparameters(record: dict) -> set[str]:
    """The run's identity fields (the fields its id hashes, pinned by test_identity), less the data files'
    checksums, plus the config groups chosen on the command line (``regularizer=dropout``)."""
    identity = set(numbers_and_more(result_relevant(record["config"])))
    checksums = {key for key in identity if key.startswith(("dataset.files", "dataset.content_md5", "dataset.archive"))}
    groups = {o.partition("=")[0] for o in record["overrides"] if "." not in o.partition("=")[0]} - {"logger"}
    return (identity - checksums) | groups


def numbers_and_more(tree: dict, prefix: str = "") -> list[str]:
    """Every leaf key of a nested dict, joined with dots (an empty dict is a leaf)."""
    out = []
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        out += numbers_and_more(value, path) if isinstance(value, dict) and value else [path]
    return out


def check_hyperparameters(keys: set[str], record: dict) -> None:
    assert keys == expected_hyperparameters(record)
    assert {"regularizer", "regularizer.p", "train.lr", "seed", "model.hidden", "prune.fractions"} <= keys
    assert not [k for k in keys if k.startswith(NOT_HYPERPARAMETERS) or "md5" in k or k.startswith("dataset.files")]


# Numbers of the record that restate a setting or a count, not a measurement: never a final metric.
COUNTS = ("test/count", "noise/pixels/images", "dropout_on/passes", "mc_dropout/passes", "prune/margin",
          "convergence/window", "weights/final/global/count")


def check_final_metrics(logged: dict[str, float], record: dict) -> None:
    expected = numbers(record["metrics"])
    assert logged == pytest.approx({k: expected[k] for k in logged})  # each equal to the record's
    assert {"test/accuracy", "generalization_gap", "noise/pixels/score", "dropout_on/accuracy_mean",
            "prune/largest_within_margin/one_shot", "weights/final/global/abs_0.01"} <= set(logged)
    assert not set(COUNTS) & set(logged)


def numbers(tree: dict, prefix: str = "") -> dict[str, float]:
    """The record's metrics as metric paths -> numbers, walked here independently of the code under test."""
    out = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            out.update(numbers(value, path))
        elif isinstance(value, (int, float)) and value is not None:
            out[path] = float(value)
    return out


def history_series(record: dict, key: str) -> list[tuple[int, float]]:
    return [(entry["epoch"], float(entry[key])) for entry in record["history"]]


def test_run_identity_does_not_depend_on_trackers_or_objective(make_config):
    plain = make_config()
    other = make_config("logger=[]", "objective=test/loss", "objective_direction=minimize")
    assert run_dir_for(plain).path == run_dir_for(other).path
    # And it is the id a config without these settings at all hashes to: records made before they
    # existed keep their folders.
    tree = dataclasses.asdict(plain)
    for key in ("logger", "objective", "objective_direction"):
        del tree[key]
    digest = run_dir_for(plain).data_digest
    assert config_hash(result_relevant(tree, digest)) == run_dir_for(plain).path.name


def test_csv_files_match_the_record(make_config):
    record = completed(make_config)  # csv is the default tracker
    folder = record["folder"] / "csv"
    with open(folder / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    for key in ("train_loss", "train_accuracy", "test_accuracy", "test_loss", "lr"):
        assert [(int(r["epoch"]), float(r[key])) for r in rows] == history_series(record, key)
    with open(folder / "summary.csv") as stream:
        summary = {row["metric"]: row["value"] for row in csv.DictReader(stream)}
    assert summary.pop("status") == "completed"
    expected = numbers(record["metrics"])
    assert {k: float(v) for k, v in summary.items()} == pytest.approx(expected)
    assert "noise/pixels/score" in summary and "prune/largest_within_margin/one_shot" in expected
    assert yaml.safe_load((folder / "hparams.yaml").read_text()) == record["config"]


def test_a_failed_run_is_logged_as_failed(make_config):
    outcome = run(make_config("train.lr=1e12"))
    assert outcome.status == "failed"
    with open(outcome.path / "csv" / "summary.csv") as stream:
        assert list(csv.reader(stream)) == [["metric", "value"], ["status", "failed"]]


def test_tensorboard_event_file_matches_the_record(make_config):
    pytest.importorskip("tensorboard", reason="pip install 'sparsebench[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    record = completed(make_config, "logger=tensorboard")
    # TensorBoard names a run by its folder: the run's readable name.
    [folder] = (record["folder"] / "tensorboard").iterdir()
    assert folder.name == expected_name(record) == "eval.noise=[pixels],eval.pixel_levels=[0.0,0.3]," \
        "eval.train_mode_passes=2,prune.finetune_epochs=0,prune.fractions=[0.5,0.9],regularizer=dropout,train.epochs=2"
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    for key in ("train_loss", "train_accuracy", "test_accuracy", "lr"):
        logged = [(e.step, e.value) for e in events.Scalars(f"epoch/{key}")]
        assert [s for s, _ in logged] == [1, 2]
        assert [v for _, v in logged] == pytest.approx([v for _, v in history_series(record, key)], rel=1e-6)
    final = {tag: events.Scalars(tag) for tag in events.Tags()["scalars"] if not tag.startswith("epoch/")}
    assert all(len(points) == 1 and points[0].step == 2 for points in final.values())
    check_final_metrics({tag: points[0].value for tag, points in final.items()}, record)
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    check_hyperparameters(set(hparams), record)
    assert hparams["regularizer"].string_value == "dropout"
    assert hparams["regularizer.name"].string_value == record["config"]["regularizer"]["name"]
    assert hparams["train.lr"].number_value == record["config"]["train"]["lr"]
    assert hparams["seed"].number_value == record["seed"]
    # The first columns of the HParams table (the experiment's order): the overrides chosen, in their order.
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
    assert [info.name for info in experiment.hparam_infos][:4] == \
        ["regularizer", "train.epochs", "eval.noise", "eval.pixel_levels"]
    [text] = events.Tensors("run/text_summary")
    tags = text.tensor_proto.string_val[0].decode()
    assert f"sparsebench.run_id: {record['run_id']}" in tags and f"sparsebench.sweep: {SWEEP}" in tags
    if record["environment"]["git_commit"]:
        assert f"sparsebench.git_commit: {record['environment']['git_commit']}" in tags


def test_mlflow_file_store_matches_the_record(make_config, tmp_path):
    pytest.importorskip("mlflow", reason="pip install 'sparsebench[mlflow]'")
    from mlflow.tracking import MlflowClient

    record = completed(make_config, "logger=mlflow")
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_path / "results" / "_mlflow").as_uri())
    experiment = client.get_experiment_by_name(record["experiment"])
    [found] = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == expected_name(record) and found.info.status == "FINISHED"
    tags = found.data.tags
    assert tags["sparsebench.run_id"] == record["run_id"] and tags["sparsebench.sweep"] == SWEEP
    # The sweep groups runs: a search by its tag finds them.
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id],
                                                       f"tags.`sparsebench.sweep` = '{SWEEP}'")] == [found.info.run_id]
    commit = record["environment"]["git_commit"]
    if commit:
        assert tags["mlflow.source.git.commit"] == commit.removesuffix("+dirty")
    check_hyperparameters(set(found.data.params), record)
    assert found.data.params["regularizer"] == "dropout"
    assert float(found.data.params["train.lr"]) == record["config"]["train"]["lr"]
    assert found.data.params["model.hidden"] == str(record["config"]["model"]["hidden"])
    for key in ("train_loss", "test_accuracy", "lr"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(found.info.run_id, f"epoch/{key}"))
        assert logged == history_series(record, key)
    check_final_metrics({k: v for k, v in found.data.metrics.items() if not k.startswith("epoch/")}, record)
    assert {a.path for a in client.list_artifacts(found.info.run_id)} == {"config.yaml", "result.json"}
    copy = Path(client.download_artifacts(found.info.run_id, "result.json", str(tmp_path)))
    assert copy.read_bytes() == (record["folder"] / "result.json").read_bytes()


def wandb_records(path: Path):
    """The protobuf records of a W&B run file (LevelDB log format: 32 KiB blocks of chunks, each with
    a 7-byte header of crc32c, length and type; the file starts with a 7-byte W&B header). wandb ships
    no reader of its own, so the framing is read here and each record parsed with wandb's protobufs."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pending = 7, 32768, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # full, or the last part of a split record
            yield wandb_internal_pb2.Record.FromString(pending + chunk)
            pending = b""
        elif kind in (2, 3):  # first or middle part
            pending += chunk


def test_wandb_offline_files_match_the_record(make_config):
    pytest.importorskip("wandb", reason="pip install 'sparsebench[wandb]'")
    record = completed(make_config, "logger=wandb")
    [run_file] = (record["folder"] / "wandb").glob("offline-run-*/run-*.wandb")
    assert run_file.name == f"run-{record['run_id']}.wandb"
    history, summary, config, runs = [], {}, {}, []
    key = lambda item: item.key or "/".join(item.nested_key)  # noqa: E731 - wandb writes either
    for item in wandb_records(run_file):
        kind = item.WhichOneof("record_type")
        if kind == "history":
            history.append((item.history.step.num, {key(i): json.loads(i.value_json) for i in item.history.item}))
        elif kind == "summary":
            summary.update({key(i): json.loads(i.value_json) for i in item.summary.update})
        elif kind == "run":
            runs.append(item.run)
            config.update({key(i): json.loads(i.value_json) for i in item.run.config.update})
    for name in ("train_loss", "test_accuracy", "lr"):
        assert [(step, h[f"epoch/{name}"]) for step, h in history] == history_series(record, name)
    check_final_metrics({k: v for k, v in summary.items() if not k.startswith(("epoch/", "_"))}, record)
    check_hyperparameters(set(config) - {"_wandb"}, record)
    assert config["regularizer"] == "dropout" and config["seed"] == record["seed"]
    assert config["regularizer.p"] == record["config"]["regularizer"]["p"]
    [first] = runs[:1]
    assert (first.run_id, first.display_name, first.run_group) == (record["run_id"], expected_name(record), SWEEP)
    assert set(first.tags) == {record["experiment"], SWEEP}
    if record["environment"]["git_commit"]:
        assert first.git.commit == record["environment"]["git_commit"]
    files = run_file.parent / "files"
    for name in ("config.yaml", "result.json"):
        assert not (files / name).is_symlink()
        assert (files / name).read_bytes() == (record["folder"] / name).read_bytes()


class _Hidden(importlib.abc.MetaPathFinder):
    """Makes a package look not installed: importing it, or finding it, fails."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == self.package:
            raise ModuleNotFoundError(name)


@pytest.mark.parametrize("tracker,package", [("tensorboard", "tensorboard"), ("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_tracker_whose_package_is_missing_is_refused_before_any_work(tmp_path, tracker, package, monkeypatch, capsys):
    """As on a machine without the package (hidden from imports here): one line with the pip command
    that installs it, exit status 2, nothing written."""
    monkeypatch.setattr(sys, "meta_path", [_Hidden(package), *sys.meta_path])
    for name in [name for name in sys.modules if name.partition(".")[0] == package]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.chdir(tmp_path)
    status = call_command(cli.main, *TINY, f"logger=[csv,{tracker}]", f"results_dir={tmp_path / 'results'}")
    err = capsys.readouterr().err
    assert status == 2, err
    [line] = err.strip().splitlines()
    assert f"logger='{tracker}' is not allowed" in line and "pip install '" in line
    assert not (tmp_path / "results").exists()


def test_the_records_copies_attached_to_trackers_are_not_records(make_config, tmp_path):
    """The report finds each run's own result.json, never the copies in the MLflow store or a W&B run."""
    pytest.importorskip("mlflow", reason="pip install 'sparsebench[mlflow]'")
    pytest.importorskip("wandb", reason="pip install 'sparsebench[wandb]'")
    from sparsebench.report.aggregate import find_records

    record = completed(make_config, "logger=[mlflow,wandb]")
    results = tmp_path / "results"
    copies = [p for p in results.rglob("result.json") if p != record["folder"] / "result.json"]
    assert len(copies) == 2  # one artifact in the MLflow store, one file of the W&B run
    assert find_records(results) == [record["folder"] / "result.json"]
