"""Which hash is which run: each experiment folder's runs.tsv, and the run id in a sweep's outcomes.jsonl."""

from __future__ import annotations

import csv
import json
import multiprocessing

from sparsebench import cli
from sparsebench.records.index import index_run
from sparsebench.runner import run
from tests.conftest import TINY, call_command


def rows(folder) -> list[dict[str, str]]:
    """runs.tsv read with the standard library's own csv reader, as any tab-separated file."""
    with open(folder / "runs.tsv", newline="") as stream:
        return list(csv.DictReader(stream, delimiter="\t"))


def test_the_index_names_each_run_folder_by_its_overrides(make_config):
    done = {}
    for seed in (0, 1):
        # progress= and dataset.root= change no number: not part of the name.
        overrides = ["regularizer=dropout", f"seed={seed}", "progress=off", "dataset.root=/nowhere"]
        outcome = run(make_config("regularizer=dropout", f"seed={seed}"), overrides=overrides)
        assert outcome.status == "completed"
        done[seed] = outcome.path
    folder = done[0].parent
    assert {p.name for p in folder.iterdir() if p.is_dir()} == {done[0].name, done[1].name}
    assert rows(folder) == [
        {"run_id": done[seed].name, "status": "completed", "seed": str(seed), "name": f"regularizer=dropout,seed={seed}",
         "written": rows(folder)[seed]["written"]} for seed in (0, 1)]
    # Rerun (skipped) through the Python API, with no overrides: one row each still, the readable name kept.
    assert run(make_config("regularizer=dropout", "seed=0")).status == "skipped"
    assert [(r["run_id"], r["name"]) for r in rows(folder)] == \
        [(done[0].name, "regularizer=dropout,seed=0"), (done[1].name, "regularizer=dropout,seed=1")]


def test_a_failed_run_is_indexed_as_failed(make_config):
    outcome = run(make_config("train.lr=1e12"), overrides=["train.lr=1e12"])
    assert outcome.status == "failed"
    [row] = rows(outcome.path.parent)
    assert (row["run_id"], row["status"], row["name"]) == (outcome.path.name, "failed", "train.lr=1e12")


def _index_many(folder, worker: int) -> None:
    for n in range(10):
        index_run(folder, f"{worker:02d}{n:010d}", "completed", n, f"worker={worker},n={n}")


def test_workers_side_by_side_lose_no_row(tmp_path):
    """Four processes, each adding ten rows at once: every row is there, the file never half-written."""
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_index_many, args=(tmp_path, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    found = rows(tmp_path)
    assert sorted(r["run_id"] for r in found) == sorted(f"{w:02d}{n:010d}" for w in range(4) for n in range(10))
    assert not [p for p in tmp_path.iterdir() if p.name not in ("runs.tsv", "runs.tsv.lock")]  # no temporary left


def test_a_sweeps_outcomes_name_each_jobs_run_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    status = call_command(cli.main, "-m", *TINY, "regularizer=none,dropout", f"results_dir={results}")
    assert status == 0
    [outcomes] = results.glob("_hydra/*/outcomes.jsonl")
    lines = [json.loads(line) for line in outcomes.read_text().splitlines()]
    folders = {p.name: p for p in (results / "default").iterdir() if p.is_dir()}
    assert sorted(line["run_id"] for line in lines) == sorted(folders)
    for line in lines:
        assert line["folder"] == str(folders[line["run_id"]])
        config = (folders[line["run_id"]] / "config.yaml").read_text()
        name = next(o for o in line["overrides"] if o.startswith("regularizer=")).partition("=")[2]
        assert f"name: {name}\n" in config  # the line's run is the run its overrides made
    by_id = {r["run_id"]: r["name"] for r in rows(results / "default")}
    # The index names each by the overrides of TINY that can change a number, and the swept regularizer.
    for line in lines:
        regularizer = next(o for o in line["overrides"] if o.startswith("regularizer="))
        assert regularizer in by_id[line["run_id"]].split(",")
        assert not any(part.startswith(("progress=", "device=", "results_dir=")) for part in
                       by_id[line["run_id"]].split(","))


def test_a_runs_name_keeps_what_can_change_its_numbers(make_config):
    """Hydra's own overrides and those of neutral fields (where, how fast, how visibly, which trackers,
    how a plan tunes) are left out; group, experiment and profile choices and identity values stay,
    sorted by key as Hydra's override_dirname sorts them. No overrides: the run id."""
    from omegaconf import OmegaConf

    from sparsebench.records.naming import run_name

    config = OmegaConf.to_container(OmegaConf.structured(make_config("regularizer=dropout", "regularizer.p=0.3")))
    overrides = ["seed=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "dataset.root=/data/mnist",
                 "results_dir=/tmp/r", "progress=on", "threads=2", "device=cpu", "logger=[csv,mlflow]",
                 "tune=standard", "regularizer=dropout", "+experiment=mlp_regularizers", "profile=smoke",
                 "regularizer.p=0.3"]
    assert run_name(overrides, config, "abc123") == \
        "+experiment=mlp_regularizers,profile=smoke,regularizer=dropout,regularizer.p=0.3,seed=2"
    assert run_name(["progress=off"], config, "abc123") == "abc123"
