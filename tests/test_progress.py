"""What a run shows: bars on a terminal, the same log lines with or without one; the claims command's bar."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from types import SimpleNamespace

import pytest

from sparsebench.claims import plan
from sparsebench.runner import run
from tests.conftest import TINY

# Every measurement after training, each with a loop long enough for a bar: dropout left on, noise, pruning
# with its fine-tunes.
MEASURED = ["regularizer=dropout", "train.epochs=2", "dataset.val_size=200", "eval.noise=[pixels]",
            "eval.pixel_levels=[0.0,0.2,0.4]", "prune.fractions=[0.5,0.9]", "prune.finetune_epochs=0.1",
            "eval.train_mode_passes=3"]
# What changes between two runs of the same config: the time stamps and the seconds each part took.
TIMES = [(re.compile(r"^\S+ \S+ "), ""), (re.compile(r"\d+\.\d s\b"), "T"), (re.compile(r"\d+m\d\ds\b"), "T"),
         (re.compile(r"\d+h\d\dm\b"), "T")]


def lines_without_times(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        for pattern, replacement in TIMES:
            line = pattern.sub(replacement, line)
        out.append(line)
    return out


def from_run_line(lines: list[str]) -> list[str]:
    return lines[next(n for n, line in enumerate(lines) if line.startswith("INFO run ")):]


def epoch_accuracies(lines: list[str], split: str) -> list[float]:
    return [float(m.group(1)) for line in lines if (m := re.search(rf"epoch \d+/\d+: .*{split} ([\d.]+)%", line))]


def test_run_log_holds_the_same_lines_with_and_without_a_terminal(make_config, monkeypatch, capsys):
    """With stderr a terminal (progress=auto decides on isatty, patched here), bars show and the log lines
    go above them; run.log is the same as without a terminal, line for line but the times, and holds each
    epoch's accuracy as the record's history has it and a line per measurement."""
    logs = {}
    for terminal in (True, False):
        monkeypatch.setattr(sys.stderr, "isatty", lambda terminal=terminal: terminal)
        cfg = make_config(*MEASURED, "progress=auto", f"name=terminal_{terminal}")
        outcome = run(cfg)
        assert outcome.status == "completed", outcome.message
        logs[terminal] = outcome.path
        err = capsys.readouterr().err
        # The bars of every phase, by their descriptions, only on the terminal.
        bars = ("training", "epoch 1", "passes with dropout left on", "noise robustness: pixels",
                "pruning (global, one-shot and fine-tuned)")
        assert all(f"{name}:" in err for name in bars) == terminal, err[-2000:]
    # From the run's first line: the data set is read from its files (and says so) once per process.
    with_terminal, without = (from_run_line(lines_without_times(logs[t] / "run.log")) for t in (True, False))
    assert with_terminal == without
    assert len(without) == 1 + 2 + 2 * 4  # the run, two epochs, four measurements begun and ended
    record = json.loads((logs[True] / "result.json").read_text())
    assert epoch_accuracies(without, "validation") == [round(e["validation_accuracy"], 2) for e in record["history"]]
    assert epoch_accuracies(without, "test") == [round(e["test_accuracy"], 2) for e in record["history"]]
    labels = ("scores, weights and activations", "test passes with dropout left on", "noise robustness",
              "pruning and fine-tunes")
    for number, label in enumerate(labels, start=1):
        assert f"INFO measuring {number}/4: {label}" in without and f"INFO measured {label} in T" in without


def test_the_epoch_bar_shows_the_validation_accuracy(make_config, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    outcome = run(make_config("train.epochs=2", "dataset.val_size=200", "progress=auto"))
    err = capsys.readouterr().err
    record = json.loads((outcome.path / "result.json").read_text())
    for entry in record["history"]:
        assert f"val={entry['validation_accuracy']:.2f}%" in err
    # Without a validation split, the test accuracy (the split that is there).
    outcome = run(make_config("train.epochs=1", "progress=on"))
    [entry] = json.loads((outcome.path / "result.json").read_text())["history"]
    assert f"test={entry['test_accuracy']:.2f}%" in capsys.readouterr().err


@pytest.mark.system
def test_run_log_of_a_run_on_a_pseudo_terminal_equals_that_of_a_piped_run(tmp_path):
    """The sparsebench command as a process, its stderr once a pseudo-terminal (a real isatty), once a pipe."""
    logs = {}
    for terminal in (True, False):
        results = tmp_path / f"results_{terminal}"
        command = [sys.executable, "-m", "sparsebench", *TINY[:-2], *MEASURED, "device=cpu", "progress=auto",
                   f"results_dir={results}"]
        if terminal:
            leader, follower = pty.openpty()
            # A terminal of 40 rows and 120 columns (a new pseudo-terminal has none, and tqdm then draws nothing).
            fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower,
                                       cwd=tmp_path)
            os.close(follower)
            shown = b""
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal's other end closed: the process is done
                    break
                if not chunk:
                    break
                shown += chunk
            os.close(leader)
            assert process.wait(timeout=300) == 0, shown.decode(errors="replace")[-2000:]
            assert b"pruning (global, one-shot and fine-tuned):" in shown and b"training:" in shown
        else:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert "training:" not in done.stderr
        [logs[terminal]] = results.glob("default/*/run.log")
    assert lines_without_times(logs[True]) == lines_without_times(logs[False])
    assert len(lines_without_times(logs[False])) >= 12


def test_claims_runs_show_one_bar_over_the_runs_on_a_terminal(monkeypatch, capsys):
    """The claims command's bar: one over every run it does here, with the runs' lines above it; plain
    lines (no bar) without a terminal."""
    monkeypatch.setattr(plan, "_run_job", lambda config, threads, overrides: "completed")
    jobs = [SimpleNamespace(config=None, command=[f"seed={n}"], overrides=[f"seed={n}"]) for n in range(3)]
    the_plan = SimpleNamespace(jobs={"exp_a": jobs[:2], "exp_b": jobs[2:]})
    for terminal in (True, False):
        monkeypatch.setattr(sys.stderr, "isatty", lambda terminal=terminal: terminal)
        outcomes = plan._here(the_plan, jobs, 1)
        assert list(outcomes.values()) == ["completed"] * 3
        err = capsys.readouterr().err
        assert ("claims runs: 100%" in err and "3/3" in err) == terminal, err


def test_a_run_in_a_claims_worker_process_shows_no_bars(monkeypatch, make_config):
    """In a worker process (threads given) the run's bars are off, so that workers side by side leave
    nothing between the command's lines; its identity, and so its folder, do not change."""
    seen = []
    monkeypatch.setattr(plan, "run", lambda config, overrides: seen.append((config, overrides)) or
                        SimpleNamespace(status="completed"))
    cfg = make_config("progress=on")
    assert plan._run_job(cfg, 1, ["seed=0"]) == "completed"
    [(given, overrides)] = seen
    assert given.progress == "off" and overrides == ["seed=0"]
    from sparsebench.runner import run_dir_for
    assert run_dir_for(given).path == run_dir_for(cfg).path
