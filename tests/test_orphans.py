"""kill -9 of a command that runs jobs in parallel leaves no worker behind: real processes, a real
SIGKILL, and the process table read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY

pytestmark = [pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc"),
              pytest.mark.system]

LONG = ["train.epochs=1000"]  # runs that are still training when the command is killed


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        table[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, (ppid, _) in table.items() if ppid == parent]
        found.update(children)
        todo.extend(children)
    return found


def alive(pids: set[int]) -> set[int]:
    table = process_table()
    return {p for p in pids if p in table and table[p][1] != "Z"}


def training_holders(results: Path, count: int, command: subprocess.Popen, timeout: float = 240) -> set[int]:
    """The pids in the run locks of ``count`` runs that have finished an epoch (so they are training)."""
    deadline = time.time() + timeout
    while time.time() < deadline and command.poll() is None:
        holders = set()
        for state in results.glob("*/*/state.pt"):
            text = (state.parent / "run.lock").read_text().strip()
            if text.isdigit():
                holders.add(int(text))
        if len(holders & alive(holders)) >= count:
            return holders
        time.sleep(0.2)
    raise AssertionError(f"{count} runs were not training within {timeout} s (exit status {command.poll()})")


def kill_and_watch(command: subprocess.Popen, holders: set[int]) -> set[int]:
    """SIGKILL the command; the processes it had started that are still alive 5 s later."""
    workers = descendants(command.pid)
    assert holders <= workers, "the runs are not run by the command's children"
    os.kill(command.pid, signal.SIGKILL)
    command.wait(timeout=30)
    deadline = time.time() + 5
    while alive(workers) and time.time() < deadline:
        time.sleep(0.1)
    survivors = alive(workers)
    for pid in survivors:  # leave nothing running behind a failed test
        os.kill(pid, signal.SIGKILL)
    return survivors


def test_killing_a_local_sweep_kills_its_workers(tmp_path):
    results = tmp_path / "results"
    command = subprocess.Popen([sys.executable, "-m", "sparsebench", "-m", "hydra/launcher=local",
                                "hydra.launcher.n_jobs=2", *TINY, *LONG, "seed=0,1", f"results_dir={results}"],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    holders = training_holders(results, 2, command)
    assert not kill_and_watch(command, holders)


def test_killing_a_parallel_claims_run_kills_its_workers(tmp_path):
    results = tmp_path / "results"
    command = subprocess.Popen([sys.executable, "-m", "sparsebench.claims.cli", "profile=smoke", "claims=D4", "jobs=2",
                                *TINY, *LONG, f"results_dir={results}"],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    holders = training_holders(results, 2, command)
    assert not kill_and_watch(command, holders)
