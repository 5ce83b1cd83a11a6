"""Fixtures of the reporter's tests: results folders written by the test itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_records import make_record, write_record, write_results


@pytest.fixture
def results(tmp_path) -> Path:
    """A results folder of 9 completed runs: none, dropout p=0.2 and p=0.5, seeds 0, 1, 2."""
    return write_results(tmp_path / "results")


@pytest.fixture
def messy_results(results) -> Path:
    """``results`` plus every kind of file a reporter must survive, each under its own folder."""
    junk = results / "junk"
    (junk / "truncated").mkdir(parents=True)
    (junk / "truncated" / "result.json").write_text(json.dumps(make_record({"name": "none"}, 7, 90.0))[:500])
    (junk / "a_list").mkdir()
    (junk / "a_list" / "result.json").write_text("[1, 2, 3]")
    (junk / "binary").mkdir()
    (junk / "binary" / "result.json").write_bytes(bytes(range(256)) * 4)
    (junk / "empty_file").mkdir()
    (junk / "empty_file" / "result.json").write_text("")
    failed = make_record({"name": "none"}, 8, 90.0)
    failed.update(status="failed", metrics=None, error={"type": "Diverged", "message": "loss is nan at epoch 2"})
    write_record(junk, failed)  # in its own folder: it does not count for being failed
    running = make_record({"name": "none"}, 9, 90.0)
    running["status"] = None
    write_record(junk, running, name="running")
    no_metrics = make_record({"name": "none"}, 10, 90.0)
    del no_metrics["metrics"]
    write_record(junk, no_metrics, name="no_metrics")
    (junk / "config_only").mkdir()
    (junk / "config_only" / "config.yaml").write_text("seed: 0\n")
    (junk / "empty_folder").mkdir()
    (junk / "dir_named_result" / "result.json").mkdir(parents=True)
    hydra = results / "exp" / "_hydra"
    hydra.mkdir(parents=True)
    (hydra / "result.json").write_text("not even json")
    return results
