"""Records for the reporter's tests, built from two real ``result.json`` files (fixtures/) with the
numbers that a test needs written in, so that every expected value is known by construction.
(A module of its own, not conftest.py, so that tests can import it by a name no other folder uses.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from sparsebench.identity import config_hash, result_relevant

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATES = {"none": "none_seed0.json", "dropout": "dropout_p0.5_seed0.json"}


def template(kind: str) -> dict:
    return json.loads((FIXTURES / TEMPLATES[kind]).read_text())


def make_record(regularizer: dict, seed: int, accuracy: float, *, near_zero: float = 0.02,
                experiment: str = "exp", **config_changes) -> dict:
    """A completed record of the real layout with ``regularizer`` (a dict: name and parameters), ``seed``,
    test accuracy ``accuracy``, and a global final near-zero fraction ``near_zero`` at |w| < 0.001
    (init: 0.01, so the change from init is near_zero - 0.01). ``config_changes``: dotted key -> value."""
    record = template("dropout" if regularizer["name"] == "dropout" else "none")
    record = copy.deepcopy(record)
    config = record["config"]
    config["regularizer"] = dict(regularizer)
    config["seed"] = seed
    config["name"] = experiment
    for key, value in config_changes.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    # Its run id is the hash of its config and data, as the runner makes it: the record counts.
    record.update(seed=seed, experiment=experiment,
                  run_id=config_hash(result_relevant(config, record["data"]["digest"])))
    metrics = record["metrics"]
    metrics["test"]["accuracy"] = accuracy
    metrics["generalization_gap"] = metrics["train"]["accuracy"] - accuracy
    metrics["weights"]["init"]["global"]["abs_0.001"] = 0.01
    metrics["weights"]["final"]["global"]["abs_0.001"] = near_zero
    levels = metrics["noise"]["pixels"]["levels"]
    metrics["noise"]["pixels"]["accuracy"] = [accuracy - 5 * i for i in range(len(levels))]
    return record


def write_record(folder: Path, record: dict, name: str | None = None) -> Path:
    """``record`` in its own folder, ``folder/<experiment>/<run id>`` (where it counts), or in
    ``folder/<experiment>/<name>`` (where it does not, unless ``name`` is its run id)."""
    run = folder / record["experiment"] / (name or record["run_id"])
    run.mkdir(parents=True, exist_ok=True)
    path = run / "result.json"
    path.write_text(json.dumps(record))
    return path


# Test accuracies of the standard folder: none clearly above dropout p=0.5; dropout p=0.2 in between.
ACCURACY = {("none", None): [98.0, 98.2, 98.1], ("dropout", 0.5): [96.0, 96.4, 96.2],
            ("dropout", 0.2): [97.0, 97.5, 97.3]}
NEAR_ZERO = {("none", None): [0.02, 0.021, 0.019], ("dropout", 0.5): [0.05, 0.052, 0.048],
             ("dropout", 0.2): [0.03, 0.031, 0.029]}


def regularizer_config(name: str, p: float | None) -> dict:
    if name == "none":
        return {"name": "none"}
    return {"name": "dropout", "p": p, "input_p": 0.0, "apply_to": "linear", "spatial": False, "max_norm": None}


def write_results(folder: Path) -> Path:
    """A results folder of 9 completed runs in ``folder``: none, dropout p=0.2 and p=0.5, seeds 0, 1, 2."""
    for (name, p), accuracies in ACCURACY.items():
        for seed, accuracy in enumerate(accuracies):
            write_record(folder, make_record(regularizer_config(name, p), seed, accuracy,
                                             near_zero=NEAR_ZERO[(name, p)][seed]))
    return folder
