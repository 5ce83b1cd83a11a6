"""The measurement registry is the one home of a metric: what a run records, what a search objective
may name and what the reporter calls a metric all follow from it."""

from __future__ import annotations

import json
import re

import pytest

from sparsebench.configure import validate
from sparsebench.errors import ConfigError
from sparsebench.measurements import (
    MEASUREMENTS,
    derived_columns,
    measurement,
    metric_groups,
    ordered,
)
from sparsebench.report.names import metric_name
from sparsebench.runner import run
from tests.conftest import TINY, compose_config

SHORT = ["dataset.train_subset=300", "dataset.test_subset=200", "model.hidden=[16]"]


@pytest.mark.parametrize("overrides", [
    [],
    ["regularizer=dropout", "eval.train_mode_passes=2", "eval.noise=[pixels]", "eval.pixel_levels=[0.0,0.5]",
     "prune.fractions=[0.5]", "prune.finetune_epochs=0", "eval.best_test=true", "dataset.val_size=100",
     "eval.early_stop=true"],
    ["continual=permuted", "continual.tasks=2"],
])
def test_a_record_holds_exactly_the_groups_the_registry_says(overrides, make_config):
    cfg = make_config(*SHORT, *overrides)
    outcome = run(cfg)
    assert outcome.status == "completed", outcome.message
    record = json.loads((outcome.path / "result.json").read_text())
    assert list(record["metrics"]) == metric_groups(cfg)


def test_every_metric_path_of_a_record_has_a_human_name(make_config):
    cfg = make_config(*SHORT, "regularizer=dropout", "eval.train_mode_passes=2", "eval.noise=[gaussian]",
                      "eval.gaussian_levels=[0.0,0.3]", "prune.fractions=[0.5]", "prune.finetune_epochs=0",
                      "dataset.val_size=100", "eval.early_stop=true", "train.epochs=2")
    record = json.loads((run(cfg).path / "result.json").read_text())
    assert {"validation", "mc_dropout", "early_stop"} <= set(record["metrics"])
    assert metric_name("early_stop/mc_dropout/ece").name == \
        "expected calibration error of MC dropout on the test set (15 bins) at the early-stopping (best-validation) epoch"
    unnamed = []

    def walk(tree, prefix):
        for key, value in tree.items():
            path = f"{prefix}/{key}" if prefix else key
            if isinstance(value, dict) and value:
                walk(value, path)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and metric_name(path).name == path:
                unnamed.append(path)

    walk({k: v for k, v in record["metrics"].items() if k != "speed"}, "")
    assert unnamed == [], unnamed


def test_the_objective_accepts_what_the_registry_records_and_refuses_the_rest(tmp_path):
    base = [*TINY, f"results_dir={tmp_path}"]
    validate(compose_config([*base, "continual=permuted", "continual.tasks=2", "objective=continual/forgetting"]))
    with pytest.raises(ConfigError, match="noise, prune, val"):
        validate(compose_config([*base, "objective=noise/pixels/score"]))  # TINY turns noise off


def test_derived_columns_are_the_change_of_each_near_zero_share_written_out():
    metrics = {"weights": {"init": {"global": {"abs_0.01": 0.25, "count": 10}},
                           "final": {"global": {"abs_0.01": 0.75, "count": 10, "structural": 0.0}}}}
    assert derived_columns(metrics) == {"weights/change/global/abs_0.01": 0.5}


def test_a_new_measurement_is_one_decorated_function(make_config):
    """The worked example of README's Layout: a measurement added in one place is run, recorded,
    named, and may be a search objective."""
    @measurement("mean_abs_output_bias", ("output_bias",), names=(
        (r"output_bias/mean_abs", "mean |bias| of the output layer", ""),))
    def output_bias(trained):
        bias = trained.model.weight_layers()[-1].module.bias
        return {"output_bias": {"mean_abs": bias.abs().mean().item()}}

    try:
        cfg = make_config(*SHORT, "objective=output_bias/mean_abs")
        assert metric_groups(cfg)[-1] == "output_bias"
        outcome = run(cfg)
        record = json.loads((outcome.path / "result.json").read_text())
        import torch

        bias = torch.load(outcome.path / "checkpoint.pt")["output.bias"]
        assert record["metrics"]["output_bias"]["mean_abs"] == pytest.approx(bias.abs().mean().item())
        metric_name.cache_clear()
        assert metric_name("output_bias/mean_abs").name == "mean |bias| of the output layer"
        assert "mean_abs_output_bias" in record["metrics"]["speed"]["measure_seconds_by_part"]
    finally:
        MEASUREMENTS.remove("mean_abs_output_bias")
        metric_name.cache_clear()


def first_segment(pattern: str) -> str:
    """The pattern up to its first '/' outside parentheses: what matches a path's group."""
    depth = 0
    for index, char in enumerate(pattern):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "/" and depth == 0:
            return pattern[:index]
    return pattern


def test_every_measurement_names_only_paths_of_its_own_groups():
    for item in ordered():
        for pattern, _, _ in item.names:
            head = first_segment(pattern)
            assert any(re.fullmatch(head, group) for group in item.groups), (item.name, pattern)
