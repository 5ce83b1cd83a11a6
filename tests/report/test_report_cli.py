"""``sparsebench-report`` end to end on a folder of records written by the test."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from sparsebench.report.cli import main

TABLES = ["runs.csv", "summary.csv", "summary.md", "summary.tex"]


def test_report_of_a_messy_folder(messy_results, capsys):
    assert main([f"results_dir={messy_results}"]) == 0
    out = capsys.readouterr().out
    assert "read 9 runs in 3 groups" in out and "skipped 7 records" in out
    skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 7 and any("truncated" in line and "not valid JSON" in line for line in skipped)
    report = messy_results / "report"
    for name in TABLES:
        assert (report / name).stat().st_size > 0
    for figure in ("weight_histograms", "near_zero_curves", "pruning_curves", "noise_curves", "dropout_rate_sweep",
                   "training_curves"):
        assert (report / f"{figure}.png").exists() and (report / f"{figure}.pdf").exists()
    assert str(report) in out
    assert not list(report.glob(".*.tmp"))


def test_out_option_and_a_second_report_over_the_first(results, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    assert main([f"results_dir={results}", f"out={out}", "figures=false"]) == 0
    assert sorted(p.name for p in out.iterdir()) == TABLES
    assert main([f"results_dir={results}", f"out={out}", "figures=false"]) == 0  # overwrites in place
    assert "read 9 runs" in capsys.readouterr().out


def test_missing_or_empty_folders_exit_2_with_one_line(tmp_path, capsys):
    assert main([f"results_dir={tmp_path / 'absent'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    assert main([f"results_dir={tmp_path / 'empty'}"]) == 2
    assert "no completed run record" in capsys.readouterr().err
    broken = tmp_path / "broken" / "run"
    broken.mkdir(parents=True)
    (broken / "result.json").write_text("{")
    assert main([f"results_dir={tmp_path / 'broken'}"]) == 2
    captured = capsys.readouterr()
    assert "not valid JSON" in captured.out and "no completed run record" in captured.err


@pytest.mark.system
def test_the_installed_command(results, tmp_path):
    command = shutil.which("sparsebench-report")
    args = [command] if command else [sys.executable, "-m", "sparsebench.report.cli"]
    done = subprocess.run([*args, f"results_dir={results}", f"out={tmp_path / 'r'}", "figures=false"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "summary.md").exists()
