"""The sparsebench command as a user runs it: one run, a sweep, a rerun, real MNIST."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY

# The command run as a process, as a user runs it, from one run to real MNIST: the system lane.
pytestmark = pytest.mark.system


def sparsebench(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "sparsebench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*/*/result.json"))]


def test_one_run_then_a_rerun_that_skips(tmp_path):
    results = tmp_path / "results"
    args = [*TINY, "regularizer=dropout", f"results_dir={results}"]
    done = sparsebench(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [record] = records(results)
    assert record["status"] == "completed" and record["metrics"]["test"]["accuracy"] > 20  # chance: 10
    assert "completed:" in done.stdout + done.stderr
    # Nothing is written to the working directory but the results folder asked for.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    # Progress bars stay quiet when stderr is not a terminal.
    assert "it/s" not in done.stderr

    again = sparsebench(*args, cwd=tmp_path)
    assert again.returncode == 0 and "skipped:" in again.stdout + again.stderr
    assert len(records(results)) == 1


def test_progress_bar_when_asked(tmp_path):
    done = sparsebench(*TINY, "progress=on", f"results_dir={tmp_path}", cwd=tmp_path)
    assert done.returncode == 0 and "epoch 1" in done.stderr


def test_multirun_sweep_writes_one_record_per_config(tmp_path):
    results = tmp_path / "results"
    done = sparsebench("-m", *TINY, "regularizer=none,l1,l2,dropout", "seed=0,1", f"results_dir={results}",
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = records(results)
    assert len(found) == 8 and all(r["status"] == "completed" for r in found)
    assert {(r["config"]["regularizer"]["name"], r["seed"]) for r in found} == \
        {(name, seed) for name in ("none", "l1", "l2", "dropout") for seed in (0, 1)}
    assert len({r["run_id"] for r in found}) == 8


def test_a_diverging_run_fails_with_nonzero_exit_and_a_failed_record(tmp_path):
    done = sparsebench(*TINY, "train.lr=1e12", f"results_dir={tmp_path}", cwd=tmp_path)
    assert done.returncode == 1
    [record] = records(tmp_path)
    assert record["status"] == "failed" and record["error"]["epoch"] == 1


def test_missing_data_is_one_clear_line_and_no_record(tmp_path):
    done = sparsebench(*TINY, "dataset=mnist", f"dataset.root={tmp_path / 'nowhere'}", "dataset.download=false",
                       f"results_dir={tmp_path / 'results'}", cwd=tmp_path)
    assert done.returncode == 2  # bad input: data the user must provide, as for sparsebench-claims
    assert "train-images-idx3-ubyte" in done.stderr and str(tmp_path / "nowhere") in done.stderr
    assert not list((tmp_path / "results").glob("*/*/result.json"))


def test_real_mnist_run(tmp_path, mnist_dir):
    results = tmp_path / "results"
    done = sparsebench("dataset=mnist", f"dataset.root={mnist_dir}", "model.hidden=[256]", "train.epochs=1",
                       "eval.noise=[]", "prune=none", "eval.train_mode_passes=0", f"results_dir={results}",
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [record] = records(results)
    metrics = record["metrics"]
    assert record["config"]["dataset"]["name"] == "mnist"
    assert metrics["test"]["accuracy"] > 94  # one epoch of SGD on all 60,000 images
    assert metrics["speed"]["samples_per_second"] > 0
