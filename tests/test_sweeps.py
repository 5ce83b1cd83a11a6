"""Sweeps that scale and survive, exercised for real: parallel launchers, a diverging run among good
ones, a run killed mid-training and resumed, and reruns that skip or retry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sparsebench.runner import run_dir_for
from sparsebench.sweep import parallel_share
from tests.conftest import TINY

launchers = pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install 'sparsebench[launchers]'")


def sparsebench(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparsebench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*/*/result.json"))]


def test_parallel_jobs_share_the_cores_and_the_gpus():
    joblib = OmegaConf.create({"n_jobs": 2})
    assert parallel_share(joblib, 0, cpu_count=16, gpu_count=0) == (8, None)
    assert parallel_share(OmegaConf.create({"n_jobs": -1}), 3, cpu_count=16, gpu_count=0) == (1, None)
    assert parallel_share(joblib, 5, cpu_count=16, gpu_count=4) == (8, "cuda:1")
    assert parallel_share(OmegaConf.create({"_target_": "basic"}), 0, cpu_count=16, gpu_count=4) == (None, None)
    assert parallel_share(None, 0, cpu_count=16, gpu_count=0) == (None, None)


@pytest.mark.system
def test_joblib_sweep_with_one_diverging_run(tmp_path):
    """Four runs on two processes; the one whose loss becomes NaN is recorded as failed, the others
    complete, the summary counts them and the exit status says a run failed. A rerun skips the
    completed ones and leaves the failed one alone unless asked."""
    results = tmp_path / "results"
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, "train.lr=0.01,1e12", "seed=0,1",
            f"results_dir={results}"]
    done = sparsebench(*args, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    found = records(results)
    assert sorted(r["status"] for r in found) == ["completed", "completed", "failed", "failed"]
    assert all(r["config"]["train"]["lr"] == 1e12 for r in found if r["status"] == "failed")
    assert "sweep: 4 runs: 2 completed, 2 failed" in done.stderr
    assert "training loss became" in done.stderr

    # Failed runs are not retried unless asked, but they still count: named, and exit status 1.
    again = sparsebench(*args, cwd=tmp_path)
    assert "sweep: 4 runs: 2 failed, 2 skipped" in again.stderr and again.returncode == 1
    assert again.stderr.count("failed before (training loss became") >= 2
    retried = sparsebench(*args, "retry_failed=true", cwd=tmp_path)
    assert "2 failed, 2 skipped" in retried.stderr and retried.returncode == 1


@pytest.mark.system
def test_local_preset_forks_one_run_per_core(tmp_path):
    """The recommended local launcher: joblib with forked workers, each run with its share of threads."""
    results = tmp_path / "results"
    done = sparsebench("-m", "hydra/launcher=local", *TINY, "seed=0,1", f"results_dir={results}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted((r["seed"], r["status"]) for r in records(results)) == [(0, "completed"), (1, "completed")]
    assert "sweep: 2 runs: 2 completed" in done.stderr


@pytest.mark.system
def test_submitit_local_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    results = tmp_path / "results"
    done = sparsebench("-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", *TINY, "seed=0,1",
                       f"results_dir={results}", cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(r["seed"] for r in records(results)) == [0, 1]
    assert all(r["status"] == "completed" for r in records(results))
    assert "sweep: 2 runs: 2 completed" in done.stderr


@pytest.mark.system
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path, signal_number):
    config = [*TINY, "dataset.train_subset=4000", "train.epochs=4", "regularizer=dropout", "train.select=best_val",
              "dataset.val_size=500", "eval.best_test=true",
              "eval.noise=[pixels]", "eval.pixel_levels=[0.0,0.3]"]
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    process = subprocess.Popen([sys.executable, "-m", "sparsebench", *config, f"results_dir={killed_dir}"],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not list(killed_dir.glob("*/*/state.pt")):
        time.sleep(0.05)
    assert list(killed_dir.glob("*/*/state.pt")), "no epoch finished in time"
    os.kill(process.pid, signal_number)
    process.wait(timeout=60)
    assert not list(killed_dir.glob("*/*/result.json"))  # an interrupted run never looks completed
    [state] = killed_dir.glob("*/*/state.pt")
    import torch
    finished_epochs = len(torch.load(state, weights_only=False)["history"])
    assert 1 <= finished_epochs < 4

    resumed = sparsebench(*config, f"results_dir={killed_dir}", cwd=tmp_path)
    assert resumed.returncode == 0 and "resuming after epoch" in resumed.stderr
    clean = sparsebench(*config, f"results_dir={clean_dir}", cwd=tmp_path)
    assert clean.returncode == 0
    [a], [b] = records(killed_dir), records(clean_dir)
    assert a["run_id"] == b["run_id"]
    assert a["metrics"]["speed"]["resumed_epochs"] == finished_epochs
    strip = lambda h: [{k: v for k, v in e.items() if k not in ("seconds", "samples_per_second")} for e in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert set(a["metrics"]) == set(b["metrics"])
    for key in set(a["metrics"]) - {"speed"}:
        assert a["metrics"][key] == b["metrics"][key], key
    assert not list(killed_dir.glob("*/*/state.pt"))  # dropped once completed


@pytest.mark.system
def test_two_processes_never_run_one_config_at_once(tmp_path, make_config):
    """While one process holds a run (here: this test, through the same lock a run takes), another
    process given the same config says it is busy and writes nothing into that run's folder."""
    results = tmp_path / "results"
    run_dir = run_dir_for(make_config(f"results_dir={results}"))
    with run_dir.lock():
        second = sparsebench(*TINY, f"results_dir={results}", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "busy:" in second.stderr and "another process is running this config" in second.stderr
    assert sorted(p.name for p in run_dir.path.iterdir()) == ["run.lock"]
    after = sparsebench(*TINY, f"results_dir={results}", cwd=tmp_path)
    assert "completed:" in after.stderr and run_dir.status() == "completed"
