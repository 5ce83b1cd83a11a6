"""Run records: identity, skip of completed runs, locking, atomic writes, contents."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from sparsebench.identity import config_hash
from sparsebench.records import RunBusy, RunDir, atomic_write_json
from sparsebench.runner import run, run_dir_for


def test_run_id_is_stable_and_order_independent():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash({"a": 1})) == 12


def test_a_run_writes_its_record_and_a_rerun_skips_it(make_config):
    cfg = make_config("regularizer=dropout", "regularizer.p=0.2")
    first = run(cfg)
    assert first.status == "completed"
    folder = run_dir_for(cfg).path
    assert folder.parent.name == "default" and folder == first.path
    record = json.loads((folder / "result.json").read_text())
    assert record["status"] == "completed" and record["seed"] == 0
    assert record["config"]["regularizer"] == {"name": "dropout", "p": 0.2, "input_p": 0.0, "apply_to": "linear",
                                               "spatial": False, "max_norm": None, "rng": "fast"}
    metrics = record["metrics"]
    for key in ("test", "train", "generalization_gap", "speed", "weights", "activations", "selection"):
        assert key in metrics
    assert set(metrics["activations"]) == {"hidden1", "hidden2", "mean"}
    assert metrics["weights"]["init"]["global"]["count"] == metrics["weights"]["final"]["global"]["count"]
    assert record["environment"]["versions"]["torch"] == torch.__version__.split("+")[0] or \
        record["environment"]["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert {"started", "finished", "wall_seconds"} <= set(record["timing"])
    # Where it ran, down to the vector kernels (hosts with other kernels give other float results).
    assert record["environment"]["cpu_capability"] in {"DEFAULT", "NO AVX", "AVX2", "AVX512", "Z VECTOR", "VSX",
                                                       "SVE256"}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        if names:
            assert record["environment"]["cpu"] == names[0]
    assert len(record["history"]) == 1
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert "hidden1.weight.weight" in state
    assert not (folder / "state.pt").exists()
    modified = os.stat(folder / "result.json").st_mtime_ns
    assert run(cfg).status == "skipped"
    assert os.stat(folder / "result.json").st_mtime_ns == modified


def test_a_run_held_by_another_process_is_not_entered(make_config):
    cfg = make_config()
    folder = run_dir_for(cfg)
    with folder.lock():
        assert run(cfg).status == "busy"
        with pytest.raises(RunBusy):
            with RunDir(folder.path).lock():
                pass
    assert not folder.result_path.exists()


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_json(path, {"status": "completed"})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(path, {"status": "failed", "bad": Unserialisable()})
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
