"""The claims command's runs, as a cluster user and as two users at once would see them: sent through
Hydra's launchers and waited for; a job lost mid-run is counted missing and picked up by the next
call; runs that another process holds are waited for, never left out of a verdict."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparsebench.claims.catalogue import load_catalogue
from sparsebench.claims.plan import plan

pytestmark = pytest.mark.system  # claims commands as processes, launchers, lost jobs

# Claim D4 on the smoke profile (4 regularizers x 2 seeds), each run shrunk to about a second, untuned
# (tune.arms=[]): these tests are about launching and losing runs; tests/test_tuning.py tunes.
SMALL = ["dataset.train_subset=400", "dataset.test_subset=200", "model.hidden=[64,64]", "eval.noise=[]", "prune=none",
         "eval.train_mode_passes=0", "progress=off", "device=cpu", "tune.arms=[]"]


def claims(*args: str, cwd: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sparsebench.claims.cli", "profile=smoke", "claims=D4", *args],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finished(process: subprocess.Popen, timeout: int = 600) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def d4_seeds(report: Path) -> list[tuple[int, int]]:
    [d4] = [c for c in json.loads(report.read_text())["claims"] if c["id"] == "D4"]
    return [(check["n_a"], check["n_b"]) for check in d4["checks"]]


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("mlp_regularizers/*/result.json"))]


def test_claims_through_submitit_local_survive_a_lost_job(tmp_path):
    """launcher=submitit_local: the eight runs go to submitit jobs and the command waits for them with a
    progress line. One job is killed mid-training (as a node is lost): the command still reports, counts
    the run as missing and exits 1; the same command again resumes just that run and reports D4 on
    both seeds."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'sparsebench[launchers]'")
    results = tmp_path / "results"
    # threads=1: the eight jobs run side by side on this machine
    args = ["launcher=submitit_local", "hydra.launcher.timeout_min=10", *SMALL, "train.epochs=6", "threads=1",
            f"results_dir={results}"]
    try:
        lost_job_then_rerun(tmp_path, results, args)
    finally:  # submitit's local jobs outlive their submitter, as cluster jobs do: leave none behind
        for pid in processes_mentioning(str(results)):
            os.kill(pid, signal.SIGKILL)


def processes_mentioning(text: str) -> list[int]:
    """The processes whose command line holds ``text`` (a folder unique to this test)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return [pid for pid in found if pid != os.getpid()]


def lost_job_then_rerun(tmp_path: Path, results: Path, args: list[str]) -> None:
    first = claims(*args, cwd=tmp_path)
    deadline, victim = time.time() + 300, None
    while victim is None and time.time() < deadline and first.poll() is None:
        for state in results.glob("mlp_regularizers/*/state.pt"):
            pid = (state.parent / "run.lock").read_text().strip()
            if pid.isdigit() and not (state.parent / "result.json").exists():
                victim = state.parent, int(pid)
                break
        time.sleep(0.02)
    assert victim is not None, "no run was caught mid-training"
    folder, pid = victim
    os.kill(pid, signal.SIGKILL)
    code, stderr = finished(first)
    assert code == 1, stderr[-3000:]
    assert "8 runs needed: 0 completed before, 8 to run through hydra/launcher=submitit_local" in stderr
    assert "runs done (" in stderr  # the progress line
    assert "1 runs ended without a record" in stderr and "run the same command again" in stderr
    assert not (folder / "result.json").exists() and (folder / "state.pt").exists()
    assert len(records(results)) == 7

    code, stderr = finished(claims(*args, cwd=tmp_path))
    assert code == 0, stderr[-3000:]
    assert "8 runs needed: 7 completed before, 1 to run" in stderr
    assert len(records(results)) == 8 and all(r["status"] == "completed" for r in records(results))
    resumed = json.loads((folder / "result.json").read_text())
    assert resumed["metrics"]["speed"]["resumed_epochs"] >= 1
    assert d4_seeds(results / "claims-smoke" / "claims.json") == [(2, 2), (2, 2)]


def test_a_run_held_by_another_process_is_waited_for(tmp_path):
    """Another process holds one of the runs (here a stand-in that takes its lock, then lets go without
    a record): the claims command runs the others, says it waits for that one, then runs it itself,
    and reports D4 on both seeds."""
    results = tmp_path / "results"
    [job, *_] = plan([load_catalogue()["D4"]], "smoke", [*SMALL, f"results_dir={results}"]).all_jobs()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"os.makedirs({str(job.run_dir.path)!r}, exist_ok=True)\n"
        f"lock = open({str(job.run_dir.path / 'run.lock')!r}, 'a+')\n"
        "fcntl.flock(lock, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    command = claims("jobs=1", *SMALL, f"results_dir={results}", cwd=tmp_path)
    deadline = time.time() + 300
    while len(records(results)) < 7 and time.time() < deadline and command.poll() is None:
        time.sleep(0.2)
    time.sleep(3)  # the command is now waiting: it must not report
    assert command.poll() is None
    holder.communicate("\n", timeout=30)  # let go, leaving no record
    code, stderr = finished(command)
    assert code == 0, stderr[-3000:]
    assert f"waiting for 1 run that another process is running ({job.run_id})" in stderr
    assert "1 run left without a record by the other process: running it here" in stderr
    assert len(records(results)) == 8
    assert d4_seeds(results / "claims-smoke" / "claims.json") == [(2, 2), (2, 2)]


def test_two_claims_commands_at_once_both_report_every_seed(tmp_path):
    """The race of issue 10: two identical commands started together. Each waits for the runs the other
    holds and uses their records: both reports rest on two seeds per side."""
    results = tmp_path / "results"
    args = ["jobs=1", *SMALL, f"results_dir={results}"]
    first = claims(*args, f"out={tmp_path / 'first'}", cwd=tmp_path)
    second = claims(*args, f"out={tmp_path / 'second'}", cwd=tmp_path)
    (code_a, err_a), (code_b, err_b) = finished(first), finished(second)
    assert code_a == 0 and code_b == 0, (err_a[-2000:], err_b[-2000:])
    assert "waiting for" in err_a + err_b  # they did collide
    for out in ("first", "second"):
        assert d4_seeds(tmp_path / out / "claims.json") == [(2, 2), (2, 2)]
    assert len(records(results)) == 8


def test_claims_through_a_local_ray_instance(tmp_path):
    """launcher=ray (hydra-ray-launcher): a real Ray instance started on this machine runs the eight runs."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install 'sparsebench[ray]'")
    results = tmp_path / "results"
    code, stderr = finished(claims("launcher=ray", "+hydra.launcher.ray.init.num_cpus=2", "threads=1", *SMALL,
                                   f"results_dir={results}", cwd=tmp_path))
    assert code == 0, stderr[-3000:]
    assert "8 runs needed: 0 completed before, 8 to run through hydra/launcher=ray" in stderr
    assert "Started a local Ray instance" in stderr
    assert len(records(results)) == 8 and all(r["status"] == "completed" for r in records(results))
    assert d4_seeds(results / "claims-smoke" / "claims.json") == [(2, 2), (2, 2)]


def worker_pids(parent: int) -> list[int]:
    """The claims command's worker processes (multiprocessing's spawned interpreters, not its resource
    tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    found = []
    for pid in map(int, children):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "spawn_main" in line:
            found.append(pid)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_by_sigkill_costs_its_own_run_only(tmp_path):
    """jobs=2: one worker is killed with SIGKILL mid-run, as the OOM killer does. No traceback; the lost
    run is named; the other runs finish; the report is written and says which seed it lacks; exit 1.
    The same command again runs only the lost run."""
    results = tmp_path / "results"
    args = ["jobs=2", *SMALL, "train.epochs=4", "dataset.train_subset=2000", f"results_dir={results}"]
    process = claims(*args, cwd=tmp_path)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline:  # a worker in the middle of a run
        if any(results.glob("mlp_regularizers/*/run.log")):
            workers = worker_pids(process.pid)
            victim = workers[0] if workers else None
        time.sleep(0.2)
    assert victim is not None, "no worker started a run"
    os.kill(victim, signal.SIGKILL)
    code, stderr = finished(process)
    assert code == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "TerminatedWorkerError" not in stderr, stderr[-3000:]
    assert "its worker process was killed by signal 9" in stderr
    assert "1 runs ended without a record" in stderr
    completed = [r for r in records(results) if r["status"] == "completed"]
    assert len(completed) == 7  # the other seven of D4's eight runs
    report = results / "claims-smoke"
    assert (report / "CLAIMS.md").exists() and (report / "manifest.json").exists()
    assert sorted(d4_seeds(report / "claims.json")[0]) in ([1, 2], [2, 2])  # the lost run's side has one seed
    again = claims(*args, cwd=tmp_path)
    code, stderr = finished(again)
    assert code == 0, stderr[-3000:]
    assert "8 runs needed: 7 completed before, 1 to run" in stderr
    assert d4_seeds(report / "claims.json") == [(2, 2)] * len(d4_seeds(report / "claims.json"))
