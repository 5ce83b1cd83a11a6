"""The three commands read one command line (Hydra's override grammar) and end one way: one line
``<command>: error: ...`` and status 2 for bad input, before any work; quietly for a closed pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparsebench import cli
from sparsebench.claims import cli as claims_cli
from sparsebench.cli import preflight
from sparsebench.data import identity
from sparsebench.errors import SparsebenchError
from sparsebench.report import cli as report_cli
from sparsebench.runner import run
from tests.conftest import TINY, call_command


def sparsebench(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``sparsebench ARGS`` run in this process."""
    monkeypatch.setattr(sys, "argv", ["sparsebench", *args])
    try:
        cli.main()
        status = 0
    except SystemExit as done:
        status = done.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr[-3000:]
    return lines[0]


# --- names and folders -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("override, says", [
    ("name=..", "name='..' is not allowed"),
    ("name=" + "n" * 300, "at most 255 bytes"),
    ("results_dir=", "results_dir='' is not allowed"),
    ("dataset.mean=[nan]", "dataset.mean=[nan] is not allowed: every entry must be a finite number"),
    ("regularizer.lam=inf", "regularizer.lam=inf is not allowed: must be a finite number"),
])
def test_folders_outside_the_results_and_non_finite_numbers_are_refused_before_any_work(
        override, says, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = ["regularizer=l1", *TINY, f"results_dir={tmp_path / 'results'}", override]
    with pytest.raises(SparsebenchError, match=says.replace("[", r"\[").replace("]", r"\]")):
        preflight(args, multirun=False)
    status, out, err = sparsebench(monkeypatch, capsys, *args)
    assert status == 2 and one_line(err).startswith("sparsebench: error: ") and says in err
    assert not any(tmp_path.iterdir())  # not even the results folder


@pytest.mark.parametrize("multirun", [False, True])
def test_a_setting_under_a_null_node_is_one_line_naming_it(multirun, monkeypatch, capsys, tmp_path):
    """The default experiment is not tuned (tune: null): tune.shared has nowhere to go. OmegaConf's own
    failure is a bare assertion with a traceback; the command says which override and why."""
    monkeypatch.chdir(tmp_path)
    args = ["-m", "tune.shared=false,true"] if multirun else ["tune.shared=false"]
    status, _, err = sparsebench(monkeypatch, capsys, *args, *TINY, f"results_dir={tmp_path / 'results'}")
    line = one_line(err)
    assert status == 2 and line.startswith("sparsebench: error: ")
    assert "tune.shared=" in line and "tune is null in this config, so nothing can be set under it" in line
    assert not any(tmp_path.iterdir())


def test_claims_give_tune_settings_to_the_tuned_experiments_only(monkeypatch, tmp_path, capsys):
    """D4's experiment is tuned, S2's (sparseout_dropout) is not: tune.confirm_near_ties reaches the one
    and leaves the other composed without it, rather than refusing the command."""
    from sparsebench.claims.catalogue import load_catalogue
    from sparsebench.claims.plan import plan

    catalogue = load_catalogue()
    the_plan = plan([catalogue["D4"], catalogue["S2"]], "standard",
                    ["tune.confirm_near_ties=true", f"results_dir={tmp_path}"])
    assert the_plan.tunings["mlp_regularizers"].spec.confirm_near_ties
    untuned = [e for e in catalogue["S2"].experiments_for("standard") if e not in the_plan.tunings]
    assert untuned and all(job.config.tune is None for e in untuned for job in the_plan.jobs[e])
    # A bad tune setting is still refused where it reaches a tuned experiment, naming it.
    with pytest.raises(SparsebenchError, match=r"experiment mlp_regularizers: tune.eta=1 is not allowed"):
        plan([catalogue["D4"], catalogue["S2"]], "standard", ["tune.eta=1", f"results_dir={tmp_path}"])


def test_claims_read_quoted_values_as_hydra_does(monkeypatch, tmp_path, capsys):
    # Hydra needs the quotes for a path with spaces or brackets; the records and the report must land
    # in the folder they name, not one whose name keeps the quotes.
    monkeypatch.chdir(tmp_path)
    status = claims_cli.main(["profile=smoke", "claims=D4", "run=false", "results_dir='runs (copy)'"])
    assert status == 0, capsys.readouterr().err[-2000:]
    report = json.loads((tmp_path / "runs (copy)" / "claims-smoke" / "claims.json").read_text())
    assert report["counts"] == {"reused": 0, "not run": 8}
    assert [p.name for p in tmp_path.iterdir()] == ["runs (copy)"]


@pytest.mark.parametrize("override, says", [
    ("name=foo", "each claim's experiment names its own folder"),
    ("experiment=mlp_kwinners", "each claim names the experiments it rests on"),
    ("profile=fast", "profile='fast' is not allowed"),
    ("results_dir=[a,b]", "give one name or path"),
])
def test_claims_refuse_what_they_do_not_use_in_one_line(override, says, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    status = claims_cli.main(["claims=D4", "run=false", override])
    err = capsys.readouterr().err
    assert status == 2 and one_line(err).startswith("sparsebench-claims: error: ") and says in err
    assert not any(tmp_path.iterdir())


def test_the_report_takes_key_value_settings_like_the_other_commands(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert report_cli.main(["results_dir='no such (folder)'"]) == 2
    assert one_line(capsys.readouterr().err) == "sparsebench-report: error: results_dir=no such (folder) does not exist"
    assert report_cli.main(["--out", "x"]) == 2
    assert "write results_dir=DIR, out=DIR or figures=false" in one_line(capsys.readouterr().err)
    assert report_cli.main(["figures=maybe"]) == 2
    assert "figures='maybe' is not allowed" in one_line(capsys.readouterr().err)


# --- config files of one's own -----------------------------------------------------------------------------------

@pytest.fixture
def my_conf(tmp_path) -> Path:
    folder = tmp_path / "my_conf"
    (folder / "experiment").mkdir(parents=True)
    (folder / "experiment" / "mine.yaml").write_text("# @package _global_\nname: mine\nregularizer:\n  p: 0.25\n"
                                                     "defaults:\n  - override /regularizer: dropout\n")
    (folder / "experiment" / "broken.yaml").write_text("# @package _global_\nname: broken\ntrain:\n  epochs: [1\n")
    (folder / "experiment" / "evil.yaml").write_text(
        "# @package _global_\nname: !!python/object/apply:os.system ['touch pwned']\n")
    return folder


@pytest.mark.parametrize("where", ["--config-dir", "hydra.searchpath"])
def test_experiments_of_ones_own_are_found_where_hydra_finds_them(where, my_conf, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    given = ["--config-dir", "my_conf"] if where == "--config-dir" else ["hydra.searchpath=[file://my_conf]"]
    status, out, err = sparsebench(monkeypatch, capsys, "--cfg", "job", *given, "experiment=mine")
    assert status == 0, err
    assert "name: mine" in out and "p: 0.25" in out


def test_the_preflight_of_a_sweep_sees_the_search_path(my_conf, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert preflight(["hydra.searchpath=[file://my_conf]", "experiment=mine", "seed=0,1,2"], multirun=True) == 3


def test_a_broken_config_file_is_one_line_naming_file_and_line(my_conf, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    status, out, err = sparsebench(monkeypatch, capsys, "--config-dir", "my_conf", "experiment=broken")
    assert status == 2 and one_line(err).startswith(f"sparsebench: error: {my_conf / 'experiment' / 'broken.yaml'}, "
                                                    "line 5: expected ',' or ']'")
    status, out, err = sparsebench(monkeypatch, capsys, "--config-dir", "my_conf", "experiment=evil")
    assert status == 2 and "evil.yaml, line 2: could not determine a constructor" in one_line(err)
    assert not (tmp_path / "pwned").exists()


# --- the machine ---------------------------------------------------------------------------------------------------

def test_a_digest_cache_that_cannot_be_written_costs_a_warning_not_the_run(make_config, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))  # a folder under a file: refused even to root
    monkeypatch.setattr(identity, "_MEMO", {})
    monkeypatch.setattr(identity, "_CACHE_WARNED", False, raising=False)
    outcomes = [run(make_config(f"seed={seed}")).status for seed in (0, 1)]
    assert outcomes == ["completed", "completed"]
    warnings = [r.getMessage() for r in caplog.records if "digest cache" in r.getMessage()]
    assert len(warnings) == 1 and str(blocker / "cache") in warnings[0]


def test_missing_data_is_bad_input_for_both_commands(tmp_path, capsys):
    # Data the user must provide is input: status 2 from sparsebench, as from sparsebench-claims.
    empty = tmp_path / "no-data"
    empty.mkdir()
    status = claims_cli.main(["claims=D1", "dataset=mnist", f"dataset.root={empty}", "dataset.download=false",
                              f"results_dir={tmp_path / 'claims'}"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and last.startswith("sparsebench-claims: error: data set 'mnist': missing") and str(empty) in last
    status = call_command(cli.main, *TINY, "dataset=mnist", f"dataset.root={empty}", "dataset.download=false",
                          "dataset.train_subset=100", "dataset.test_subset=100", f"results_dir={tmp_path / 'results'}")
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-2000:]
    assert "Traceback" not in stderr and str(empty) in stderr


@pytest.mark.system
@pytest.mark.parametrize("module, args", [
    ("sparsebench", ["--help"]),
    ("sparsebench.claims.cli", ["--help"]),
    ("sparsebench.report.cli", ["--help"]),
    ("sparsebench", ["--cfg", "job"]),
])
def test_a_reader_that_goes_away_ends_the_command_quietly(module, args):
    # `sparsebench --help | head -1`: the pipe is closed before the command writes to it.
    process = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=300) == 141, err
    assert not err.strip(), err
