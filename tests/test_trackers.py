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


def completed(make_config, *overrides: str) -> dict:
    outcome = run(make_config(*LOGGED, *overrides))
    assert outcome.status == "completed", outcome.message
    record = json.loads((outcome.path / "result.json").read_text())
    record["folder"] = outcome.path
    return record


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
    events = EventAccumulator(str(record["folder"] / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    for key in ("train_loss", "train_accuracy", "test_accuracy", "lr"):
        logged = [(e.step, e.value) for e in events.Scalars(f"epoch/{key}")]
        assert [s for s, _ in logged] == [1, 2]
        assert [v for _, v in logged] == pytest.approx([v for _, v in history_series(record, key)], rel=1e-6)
    expected = numbers(record["metrics"])
    for path in ("test/accuracy", "generalization_gap", "noise/pixels/score", "dropout_on/accuracy_mean",
                 "prune/largest_within_margin/one_shot", "weights/final/global/abs_0.01"):
        [event] = events.Scalars(path)
        assert (event.step, event.value) == (2, pytest.approx(expected[path], rel=1e-6))
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["regularizer.name"].string_value == record["config"]["regularizer"]["name"]
    assert hparams["train.lr"].number_value == record["config"]["train"]["lr"]
    assert hparams["seed"].number_value == record["seed"]


def test_mlflow_file_store_matches_the_record(make_config, tmp_path):
    pytest.importorskip("mlflow", reason="pip install 'sparsebench[mlflow]'")
    from mlflow.tracking import MlflowClient

    record = completed(make_config, "logger=mlflow")
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_path / "results" / "_mlflow").as_uri())
    experiment = client.get_experiment_by_name(record["experiment"])
    [found] = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == record["run_id"] and found.info.status == "FINISHED"
    assert found.data.tags["sparsebench.run_id"] == record["run_id"]
    assert found.data.params["regularizer.name"] == record["config"]["regularizer"]["name"]
    assert float(found.data.params["train.lr"]) == record["config"]["train"]["lr"]
    assert found.data.params["model.hidden"] == str(record["config"]["model"]["hidden"])
    for key in ("train_loss", "test_accuracy"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(found.info.run_id, f"epoch/{key}"))
        assert logged == history_series(record, key)
    expected = numbers(record["metrics"])
    assert {k: v for k, v in found.data.metrics.items() if not k.startswith("epoch/")} == pytest.approx(expected)


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
    history, summary, config = [], {}, {}
    key = lambda item: item.key or "/".join(item.nested_key)  # noqa: E731 - wandb writes either
    for item in wandb_records(run_file):
        kind = item.WhichOneof("record_type")
        if kind == "history":
            history.append((item.history.step.num, {key(i): json.loads(i.value_json) for i in item.history.item}))
        elif kind == "summary":
            summary.update({key(i): json.loads(i.value_json) for i in item.summary.update})
        elif kind == "run":
            config.update({key(i): json.loads(i.value_json) for i in item.run.config.update})
    for name in ("train_loss", "test_accuracy"):
        assert [(step, h[f"epoch/{name}"]) for step, h in history] == history_series(record, name)
    expected = numbers(record["metrics"])
    assert {k: v for k, v in summary.items() if k in expected} == pytest.approx(expected)
    assert config["regularizer"] == record["config"]["regularizer"] and config["seed"] == record["seed"]


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
