"""Composition and validation of the configs in conf/: defaults, overrides, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sparsebench.cli import preflight
from sparsebench.configure import validate
from sparsebench.errors import ConfigError, SparsebenchError
from sparsebench.identity import result_relevant
from sparsebench.schemas import RunConfig
from tests.conftest import compose_config


def test_defaults_compose_to_typed_config():
    run = validate(compose_config([]))
    assert isinstance(run, RunConfig)
    assert run.dataset.name == "embedded" and run.model.name == "mlp" and run.regularizer.name == "none"
    assert run.model.hidden == [1000, 1000]
    assert run.train.epochs == 3 and run.train.optimizer == "sgd"


@pytest.mark.parametrize("override", [
    "seed=7", "train.epochs=2", "train.batch_size=32", "train.lr=0.05", "dataset.root=/tmp/somewhere",
    "results_dir=/tmp/r", "device=cpu", "regularizer=dropout regularizer.p=0.3", "regularizer=l1 regularizer.lam=0.001",
])
def test_every_documented_value_can_be_overridden(override):
    run = validate(compose_config(override.split()))
    key, value = override.split()[-1].split("=")
    node = run
    for part in key.split("."):
        node = getattr(node, part)
    assert str(node) == value


@pytest.mark.parametrize("overrides, key", [
    (["regularizer=dropout", "regularizer.p=1.5"], "regularizer.p"),
    (["regularizer=dropout", "regularizer.input_p=-0.1"], "regularizer.input_p"),
    (["train.lr=-0.1"], "train.lr"),
    (["train.epochs=0"], "train.epochs"),
    (["train.optimizer=rmsprop"], "train.optimizer"),
    (["regularizer=l2", "regularizer.lam=-1"], "regularizer.lam"),
    (["model=mnist_cnn", "model.channels=[30,30,30]"], "model.channels"),
    (["train.select=best_val"], "train.select"),
    (["device=tpu"], "device"),
])
def test_bad_values_name_key_value_and_what_is_allowed(overrides, key):
    with pytest.raises(ConfigError) as caught:
        validate(compose_config(overrides))
    message = str(caught.value)
    assert message.startswith(f"{key}=") and "not allowed" in message
    assert "\n" not in message


@pytest.mark.parametrize("overrides, expected", [
    (["regularizer=nonexistent"], "regularizer=nonexistent is not an option of regularizer: choose one of"),
    (["regularizer.p=abc"], "regularizer.p is not a setting of regularizer"),
    (["regularizer=dropout", "regularizer.p=abc"], "regularizer.p='abc' is not allowed: expected a float value"),
    (["train.epochs=[1"], ""),
    # Hydra itself stops on a config group set to null with a ValueError and its traceback.
    (["dataset=null"], "dataset=null is not allowed: dataset is a config group and takes one of its options "
                       "(cifar10, embedded, fashion_mnist, mnist; files in conf/dataset/)"),
    (["map_axes=null"], "map_axes=null is not allowed: map_axes is a config group and takes one of its options "
                        "(default, wide;"),
    (["+tune=null"], "+tune=null is not allowed: tune is a config group and takes one of its options (continual, "
                     "halving; files in conf/tune/), not null; leave tune out to keep what the experiment or profile chooses"),
])
def test_preflight_turns_hydra_errors_into_one_line(overrides, expected):
    with pytest.raises(SparsebenchError) as caught:
        preflight(overrides, multirun=False)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_preflight_checks_every_job_of_a_sweep_before_any_runs():
    assert preflight(["regularizer=none,dropout", "seed=0,1,2"], multirun=True) == 6
    with pytest.raises(SparsebenchError, match=r"regularizer\.p=1\.5"):
        preflight(["regularizer=dropout", "regularizer.p=0.5,1.5"], multirun=True)


def test_run_identity_ignores_paths_and_speed_settings_only():
    base = result_relevant(validate(compose_config([])))
    moved = result_relevant(validate(compose_config(["results_dir=/elsewhere", "dataset.root=/data", "device=cpu",
                                                     "progress=on", "name=other", "train.compile=true"])))
    assert base == moved
    assert base != result_relevant(validate(compose_config(["seed=1"])))
    assert base != result_relevant(validate(compose_config(["train.lr=0.02"])))


@pytest.mark.system
def test_cli_rejects_bad_value_with_one_line_and_writes_nothing(tmp_path):
    """As a process: the exit status and the one line (test_faults checks many values in this process)."""
    done = subprocess.run([sys.executable, "-m", "sparsebench", "regularizer=dropout", "regularizer.p=1.5",
                           f"results_dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "regularizer.p=1.5" in lines[0] and "[0, 1)" in lines[0]
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())
