"""A record counts once, only in the folder its identity names; nothing in a run folder is followed
through a symbolic link; a resume state is the run's own, or it is set aside and the run starts afresh."""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from sparsebench.atomic import atomic_write_text
from sparsebench.claims.catalogue import load_catalogue
from sparsebench.claims.cli import main as claims_main
from sparsebench.claims.plan import plan
from sparsebench.errors import EnvironmentFault
from sparsebench.identity import config_hash, result_relevant
from sparsebench.objective import objective_value
from sparsebench.records import Problem, RunDir, RunRecord, read
from sparsebench.report.aggregate import load_records
from sparsebench.runner import run, run_dir_for

# What these reports count and say is tested here; their figures are tested in tests/report.
pytestmark = pytest.mark.usefixtures("figures_not_rendered")

TEMPLATE = Path(__file__).parent / "report" / "fixtures" / "none_seed0.json"


# --- one record, one reader --------------------------------------------------------------------------------------

def test_a_record_reads_back_to_the_same_json_completed_or_failed():
    completed = json.loads(TEMPLATE.read_text())
    completed["a_key_of_another_version"] = {"kept": True}
    assert RunRecord.from_json(completed).to_json() == completed
    failed = {k: v for k, v in completed.items() if k not in ("metrics", "history")}
    failed.update(status="failed", error={"type": "Diverged", "message": "loss is nan", "epoch": 2})
    as_json = RunRecord.from_json(failed).to_json()
    assert as_json == failed and "metrics" not in as_json and "history" not in as_json


def test_a_run_writes_its_record_with_the_keys_in_the_order_it_always_had(make_config):
    outcome = run(make_config())
    text = (outcome.path / "result.json").read_text()
    assert list(json.loads(text)) == ["status", "run_id", "experiment", "seed", "config", "data", "environment",
                                      "metrics", "history", "error", "timing"]
    assert text.startswith('{\n "status": "completed",\n "run_id": ') and text.endswith("}\n")
    assert isinstance(read(outcome.path / "result.json"), RunRecord)


# --- crack 1: copies count once, and are named ----------------------------------------------------------------

# The records here are made by hand for the shared setting's runs: no tuning trials to choose from.
UNTUNED = ["tune.arms=[]"]


def _records_for(results: Path, claim: str) -> list:
    """A completed record for every run ``claim`` plans under the smoke profile, in its own folder, with
    near-zero shares and training accuracies that fall with the dropout rate; the plan's jobs."""
    jobs = plan([load_catalogue()[claim]], "smoke", [*UNTUNED, f"results_dir={results}"]).all_jobs()
    template = json.loads(TEMPLATE.read_text())
    for job in jobs:
        record = copy.deepcopy(template)
        p, seed = job.config.regularizer.p, job.config.seed
        record.update(run_id=job.run_id, experiment=job.experiment, seed=seed,
                      config=OmegaConf.to_container(OmegaConf.structured(job.config)),
                      data={"digest": job.run_dir.data_digest})
        record["metrics"]["weights"]["final"]["global"]["rel_0.1"] = 0.1 * p + 0.001 * seed
        record["metrics"]["train"]["accuracy"] = 99.0 - 10 * p - 0.1 * seed
        job.run_dir.path.mkdir(parents=True)
        job.run_dir.result_path.write_text(json.dumps(record))
    return jobs


def _counts(report: dict) -> list[tuple[int, int]]:
    """The runs each side of D3's checks on the metrics the fixture's records hold rests on."""
    return [(c["n_a"], c["n_b"]) for c in report["claims"][0]["checks"]
            if c["metric"] in ("weights/final/global/rel_0.1", "train/accuracy")]


def _claims_report(results: Path) -> dict:
    assert claims_main(["profile=smoke", "claims=D3", "run=false", *UNTUNED, f"results_dir={results}"]) == 0
    return json.loads((results / "claims-smoke" / "claims.json").read_text())


def test_a_backup_copy_of_an_experiment_folder_is_not_counted_and_is_named(tmp_path):
    results = tmp_path / "results"
    jobs = _records_for(results, "D3")
    first = _claims_report(results)
    assert _counts(first) == [(2, 2), (2, 2)]
    assert first["records_not_used"] == []
    shutil.copytree(results / "dropout_rates", results / "dropout_rates.bak", symlinks=True)  # cp -a
    second = _claims_report(results)
    assert _counts(second) == [(2, 2), (2, 2)]
    named = sorted(second["records_not_used"])
    assert len(named) == len(jobs) and all("dropout_rates.bak" in line and "a copy of" in line for line in named)
    assert second["claims"][0]["verdict"] == first["claims"][0]["verdict"]
    # sparsebench-report reads the same way.
    df, skipped = load_records(results)
    assert len(df) == len(jobs) and len(skipped) == len(jobs)
    assert not any("dropout_rates.bak" in path for path in df["path"])


def test_a_record_copied_into_another_runs_folder_is_not_counted_and_is_named(tmp_path):
    results = tmp_path / "results"
    jobs = _records_for(results, "D3")
    [source, target] = [job for job in jobs if job.config.regularizer.p == 0.6]
    shutil.copy(source.run_dir.result_path, target.run_dir.result_path)
    report = _claims_report(results)
    # p = 0.6 now rests on the one run whose record is there, counted once.
    assert _counts(report) == [(1, 2), (2, 2)]
    [named] = report["records_not_used"]
    # Named relative to the results folder, as the report names every record (by hand: <experiment>/<id>/...).
    copy, original = (path.relative_to(results) for path in (target.run_dir.result_path, source.run_dir.result_path))
    assert named.startswith(f"{copy}: a copy of {original}")
    assert "in another run's folder" in named
    assert target.run_dir.status() is None  # the runner runs it again


def test_a_search_objective_reads_only_a_record_that_counts(tmp_path, caplog):
    record = json.loads(TEMPLATE.read_text())
    record["run_id"] = config_hash(result_relevant(record["config"], record["data"]["digest"]))
    own = tmp_path / record["experiment"] / record["run_id"]
    other = tmp_path / record["experiment"] / "0123456789ab"
    for folder in (own, other):
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(record))
    assert objective_value("test/accuracy", "maximize", "skipped", own) == record["metrics"]["test"]["accuracy"]
    with caplog.at_level(logging.ERROR, logger="sparsebench"):
        assert objective_value("test/accuracy", "maximize", "skipped", other) == -math.inf
    assert "in another run's folder" in caplog.text


# --- crack 3: no link in a run folder is followed ------------------------------------------------------------

@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


@pytest.mark.parametrize("name", ["run.lock", "run.log", "state.pt", "result.json", "config.yaml", "csv"])
def test_a_link_planted_in_a_run_folder_is_refused_in_one_line(make_config, victim, name):
    cfg = make_config()
    folder = run_dir_for(cfg).path
    folder.mkdir(parents=True)
    (folder / name).symlink_to(victim)
    with pytest.raises(EnvironmentFault, match=f"{name} is a symbolic link .*victim.txt.* remove the link") as caught:
        run(cfg)
    assert len(str(caught.value).splitlines()) == 1
    assert victim.read_text() == "precious\n"
    assert not run_dir_for(cfg).held()
    (folder / name).unlink()
    assert run(cfg).status == "completed" and victim.read_text() == "precious\n"


def test_a_link_deeper_in_a_run_folder_is_not_appended_to(make_config, victim, caplog):
    cfg = make_config()
    csv = run_dir_for(cfg).path / "csv"
    csv.mkdir(parents=True)
    (csv / "metrics.csv").symlink_to(victim)
    with caplog.at_level(logging.WARNING, logger="sparsebench"):
        assert run(cfg).status == "completed"  # a tracker that cannot log stops; the run goes on
    assert victim.read_text() == "precious\n"
    assert any("metrics.csv is a symbolic link" in r.getMessage() for r in caplog.records)


def test_files_written_whole_replace_a_link_not_its_target(tmp_path, victim):
    link = tmp_path / "config.yaml"
    link.symlink_to(victim)
    atomic_write_text(link, "seed: 0\n")
    assert not link.is_symlink() and link.read_text() == "seed: 0\n"
    assert victim.read_text() == "precious\n"


def test_a_linked_record_is_not_read_and_is_named(make_config, tmp_path):
    cfg = make_config()
    real = run(cfg).path / "result.json"
    elsewhere = tmp_path / "elsewhere.json"
    real.rename(elsewhere)
    real.symlink_to(elsewhere)
    found = read(real)
    assert isinstance(found, Problem) and "symbolic link" in found.reason
    df, skipped = load_records(real.parent.parent)
    assert df.empty and [s.path for s in skipped] == [real] and "not followed" in skipped[0].reason


# --- crack 5: a resume state is the run's own --------------------------------------------------------------

def _state_left_by(cfg, monkeypatch) -> Path:
    """The state.pt that a run of ``cfg`` saves after its last epoch (kept: not dropped at the end)."""
    with monkeypatch.context() as patch:
        patch.setattr(RunDir, "drop_state", lambda self: None)
        assert run(cfg).status == "completed"
    return run_dir_for(cfg).path / "state.pt"


def _numbers(record: dict) -> tuple:
    return (record["seed"], [(e["train_loss"], e["test_accuracy"]) for e in record["history"]],
            record["metrics"]["test"]["accuracy"], record["metrics"]["speed"]["resumed_epochs"])


@pytest.mark.parametrize("other", ["model.hidden=[32]", "seed=1"])
def test_a_state_of_another_run_is_set_aside_and_the_run_starts_afresh(make_config, tmp_path, monkeypatch, caplog,
                                                                        other):
    clean = run(make_config(f"results_dir={tmp_path / 'clean'}"))
    expected = _numbers(json.loads((clean.path / "result.json").read_text()))
    cfg = make_config()
    foreign = _state_left_by(make_config(other), monkeypatch)
    folder = run_dir_for(cfg).path
    folder.mkdir(parents=True)
    shutil.copy(foreign, folder / "state.pt")
    with caplog.at_level(logging.WARNING, logger="sparsebench"):
        outcome = run(cfg)
    assert outcome.status == "completed", outcome.message
    assert _numbers(json.loads((folder / "result.json").read_text())) == expected
    [aside] = folder.glob("state.pt.foreign-*")
    assert aside.read_bytes() == foreign.read_bytes()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"saved by run {foreign.parent.name}" in w and "starts afresh" in w for w in warnings)


def _own_state(tmp_path) -> tuple[RunDir, dict]:
    folder = RunDir(tmp_path / "exp" / "0123456789ab")
    folder.path.mkdir(parents=True)
    state = {"model": {"w": torch.arange(4.0)}, "history": [{"epoch": 1}]}
    folder.save_state(state)
    return folder, state


def test_a_runs_own_state_resumes(tmp_path):
    folder, state = _own_state(tmp_path)
    loaded = folder.load_state()
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["history"] == state["history"]
    assert "run_id" not in loaded and list(folder.path.iterdir()) == [folder.path / "state.pt"]


def test_a_state_without_a_run_id_or_a_truncated_one_is_set_aside_with_a_warning(tmp_path, caplog):
    folder, state = _own_state(tmp_path)
    torch.save(state, folder.path / "state.pt")  # as versions before run ids in states wrote it
    with caplog.at_level(logging.WARNING, logger="sparsebench"):
        assert folder.load_state() is None
    assert len(list(folder.path.glob("state.pt.foreign-*"))) == 1 and not (folder.path / "state.pt").exists()
    folder.save_state(state)
    whole = (folder.path / "state.pt").read_bytes()
    (folder.path / "state.pt").write_bytes(whole[: len(whole) // 2])
    with caplog.at_level(logging.WARNING, logger="sparsebench"):
        assert folder.load_state() is None
    assert len(list(folder.path.glob("state.pt.damaged-*"))) == 1 and not (folder.path / "state.pt").exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "names no run" in warnings[0] and "cannot be read" in warnings[1]
