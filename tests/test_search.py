"""Hyperparameter search: each job returns its objective (a metric path of its record) to Hydra's
Optuna sweeper; a failed run returns the worst value instead of crashing the search; every corner of
the search space is checked before the first trial."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sparsebench.cli import preflight
from sparsebench.errors import SparsebenchError
from sparsebench.sweep import hydra_configs, search_overrides
from tests.conftest import TINY


def sparsebench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparsebench", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*/*/result.json"))]


def optimization_results(results: Path) -> dict:
    [path] = results.glob("_hydra/*/optimization_results.yaml")
    return yaml.safe_load(path.read_text())


def test_a_search_checks_the_corners_of_its_space_before_any_run():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'sparsebench[tune]'")
    with pytest.raises(SparsebenchError, match=r"regularizer.p=1.5 is not allowed"):
        preflight(["hydra/sweeper=optuna", "regularizer=dropout", "regularizer.p=interval(0.1,1.5)"], multirun=True)
    assert preflight(["hydra/sweeper=optuna", "regularizer=dropout", "regularizer.p=interval(0.1,0.7)", "seed=0,1"],
                     multirun=True) == 4


@pytest.mark.parametrize("overrides,expected", [
    (["objective=test/acc"], "test/ holds test/accuracy, test/loss"),
    (["objective=noise/pixels/score", "eval.noise=[]"], "starts with one of"),
    (["objective=validation/accuracy"], "starts with one of"),  # no validation split
    (["objective=val/accuracy", "dataset.val_size=100"], "starts with one of"),  # the name before validation
    (["objective_direction=up"], "choose one of maximize, minimize"),
])
def test_an_objective_the_record_cannot_hold_is_refused(overrides, expected):
    with pytest.raises(SparsebenchError, match=expected):
        preflight(overrides, multirun=False)


@pytest.mark.system
def test_the_objective_of_a_search_is_found_in_the_records(tmp_path):
    """The example search (conf/experiment/search_dropout_rate.yaml), three trials on the embedded data:
    Optuna's best value and parameters are those of the record with the best validation accuracy; run
    again, the same sampler seed proposes the same rates and the values come back from the records."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'sparsebench[tune]'")
    results = tmp_path / "results"
    args = ["-m", "experiment=search_dropout_rate", *TINY, "dataset.val_size=500", "hydra.sweeper.n_trials=3",
            f"results_dir={results}"]
    done = sparsebench(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = records(results)
    assert len(found) == 3 and all(0.1 <= r["config"]["regularizer"]["p"] <= 0.7 for r in found)
    best = max(found, key=lambda r: r["metrics"]["validation"]["accuracy"])
    result = optimization_results(results)
    assert result["best_value"] == best["metrics"]["validation"]["accuracy"]
    assert result["best_params"] == {"regularizer.p": best["config"]["regularizer"]["p"]}

    again = sparsebench(*args, cwd=tmp_path)
    assert again.returncode == 0 and "sweep: 3 runs: 3 skipped" in again.stderr, again.stderr[-3000:]
    assert len(records(results)) == 3
    assert [r["best_value"] for r in map(yaml.safe_load, (p.read_text() for p in sorted(
        results.glob("_hydra/*/optimization_results.yaml"))))] == [result["best_value"]] * 2


@pytest.mark.system
def test_a_failed_trial_gives_the_worst_value_and_the_search_goes_on(tmp_path):
    """A grid over two learning rates, one of which diverges: the diverging trial returns -inf (the
    objective is maximized), Optuna's best is the other run's test accuracy, the summary names the
    failure and the exit status is 1; no traceback."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'sparsebench[tune]'")
    results = tmp_path / "results"
    done = sparsebench("-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=2",
                       "train.lr=choice(0.05,1e12)", *TINY, f"results_dir={results}", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    [good] = [r for r in records(results) if r["status"] == "completed"]
    [bad] = [r for r in records(results) if r["status"] == "failed"]
    assert bad["config"]["train"]["lr"] == 1e12
    assert "objective test/accuracy: the run gave no value (failed); the sweeper gets -inf" in done.stderr
    assert optimization_results(results)["best_value"] == good["metrics"]["test"]["accuracy"]
    assert "sweep: 2 runs: 1 completed, 1 failed" in done.stderr


def test_the_sweeper_follows_the_objective_direction():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'sparsebench[tune]'")
    with hydra_configs():
        # Optuna's own default is to minimize: the objective's direction wins unless the command line says.
        assert search_overrides(["hydra/sweeper=optuna"]) == ["hydra.sweeper.direction=maximize",
                                                              "hydra.sweeper.sampler.seed=0"]
        assert search_overrides(["hydra/sweeper=optuna", "objective=test/loss", "objective_direction=minimize",
                                 "hydra/sweeper/sampler=grid"]) == []  # the grid sampler draws nothing at random
        assert search_overrides(["hydra/sweeper=optuna", "hydra.sweeper.direction=maximize",
                                 "hydra.sweeper.sampler.seed=7"]) == ["hydra.sweeper.sampler.seed=7"]
        with pytest.raises(SparsebenchError, match="contradicts objective_direction=maximize"):
            search_overrides(["hydra/sweeper=optuna", "hydra.sweeper.direction=minimize"])
        assert search_overrides([]) == []  # the basic sweeper does not search


def optuna_study(storage: str, name: str, values: list[float], running: int = 0):
    """A study made with Optuna itself: a trial per value, and ``running`` trials asked for and never told."""
    import optuna

    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for value in values:
        trial = study.ask()
        trial.suggest_float("regularizer.p", 0.1, 0.7)
        study.tell(trial, value)
    for _ in range(running):
        study.ask()
    return study


def test_a_stored_study_is_continued_not_started_again(tmp_path):
    """With hydra.sweeper.storage, n_trials counts the trials the study holds (those that ended: a trial
    left running by a killed command is not done), and the sampler is seeded past them."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'sparsebench[tune]'")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna_study(storage, "mine", [0.5, 0.6, 0.7], running=1)
    command = ["hydra/sweeper=optuna", "regularizer=dropout", "regularizer.p=interval(0.1,0.7)",
               f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=mine", "hydra.sweeper.n_trials=5",
               "hydra.sweeper.sampler.seed=10"]
    with hydra_configs():
        assert search_overrides(command) == ["hydra.sweeper.direction=maximize", "hydra.sweeper.study_name='mine'",
                                             "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.seed=13"]
        # done already: nothing more to run
        assert "hydra.sweeper.n_trials=0" in search_overrides([*command, "hydra.sweeper.n_trials=2"])


def test_a_stored_study_is_named_by_what_the_search_is(tmp_path):
    """Without a study_name, the same search finds the same study (whatever n_trials or progress say);
    a search of other runs (another number of epochs) or another space gets a study of its own."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'sparsebench[tune]'")
    command = ["hydra/sweeper=optuna", "regularizer=dropout", "regularizer.p=interval(0.1,0.7)",
               f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}"]

    def name(*more: str) -> str:
        [setting] = [s for s in search_overrides([*command, *more]) if s.startswith("hydra.sweeper.study_name=")]
        return setting.partition("=")[2]

    with hydra_configs():
        same = name()
        assert same.startswith("'default-")
        assert name("hydra.sweeper.n_trials=50", "progress=off") == same
        assert name("train.epochs=5") != same
        assert name("regularizer.p=interval(0.2,0.7)") != same


def test_a_storage_optuna_cannot_open_is_refused_in_one_line(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'sparsebench[tune]'")
    with hydra_configs(), pytest.raises(SparsebenchError, match=r"hydra.sweeper.storage=nosuchdb://x: Optuna could not"):
        search_overrides(["hydra/sweeper=optuna", "regularizer=dropout", "regularizer.p=interval(0.1,0.7)",
                          "hydra.sweeper.storage=nosuchdb://x"])


@pytest.mark.system
def test_a_search_stored_in_sqlite_resumes_when_run_again(tmp_path):
    """Two trials stored in sqlite; the same command with n_trials=3 adds one trial to the same study (the
    first two kept, with their values, and not trained again), at a value not tried before; run once more,
    it runs nothing. Each trial's value is its record's test accuracy."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'sparsebench[tune]'")
    import optuna

    results, storage = tmp_path / "results", f"sqlite:///{tmp_path / 'study.db'}"
    args = ["-m", "hydra/sweeper=optuna", "regularizer=dropout", "regularizer.p=interval(0.1,0.7)", *TINY,
            f"results_dir={results}", f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_jobs=1"]

    def trials() -> list[tuple[float, float]]:
        [summary] = optuna.get_all_study_summaries(storage)
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        return [(t.params["regularizer.p"], t.value) for t in study.trials]

    first = sparsebench(*args, "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = trials()
    assert len(before) == 2
    again = sparsebench(*args, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 trials done, 1 to run" in again.stderr and "sweep: 1 runs: 1 completed" in again.stderr
    after = trials()
    assert after[:2] == before and len(after) == 3 and after[2][0] not in {p for p, _ in before}
    found = records(results)
    assert sorted((r["config"]["regularizer"]["p"], r["metrics"]["test"]["accuracy"]) for r in found) == sorted(after)
    done = sparsebench(*args, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert done.returncode == 0 and "3 trials done, 0 to run" in done.stderr, done.stderr[-3000:]
    assert trials() == after and len(records(results)) == 3
