"""The committed standard report's readings, remade from its committed records and checked against the
records' own JSON, read here without sparsebench's code: each tuned arm's choice (the best validation
accuracy at the full budget, ties to the grid's first point) and the means its checks compare."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from sparsebench.claims import cli as claims_cli
from tests.conftest import MNIST, call_command

RECORDS = Path(__file__).resolve().parents[1] / "docs" / "claims-standard" / "records"
HOYER = ("weights", "final", "global", "hoyer")

pytestmark = pytest.mark.system


def _records(folder: str) -> list[dict]:
    found = [json.loads(path.read_text()) for path in (RECORDS / folder).glob("*/result.json")]
    return [record for record in found if record["status"] == "completed"]


def _chosen_lr(folder: str, grid: list[float], **regularizer) -> float:
    """The learning rate a tuned arm chose: its best validation accuracy at the full budget (20 epochs),
    a tie going to the point the grid lists first."""
    trials = [r for r in _records(folder) if r["config"]["train"]["epochs"] == 20
              and all(r["config"]["regularizer"].get(key) == value for key, value in regularizer.items())]
    scores = {r["config"]["train"]["lr"]: r["metrics"]["validation"]["accuracy"] for r in trials}
    return max(scores, key=lambda lr: (scores[lr], -grid.index(lr)))


def _hoyer(folder: str, lr: float, seeds: int, **regularizer) -> list[float]:
    runs = [r for r in _records(folder) if r["config"]["train"]["lr"] == lr and r["seed"] < seeds
            and all(r["config"]["regularizer"].get(key) == value for key, value in regularizer.items())]
    values = []
    for run in runs:
        value = run["metrics"]
        for key in HOYER:
            value = value[key]
        values.append(value)
    return values


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    if not MNIST.exists():
        pytest.skip("needs the MNIST files (SPARSEBENCH_DATA)")
    out = tmp_path_factory.mktemp("standard")
    status = call_command(claims_cli.main, "profile=standard", "claims=D1,D2", f"dataset.root={MNIST}",
                          f"results_dir={RECORDS}", "run=false", f"out={out}", "progress=off")
    assert status == 0
    return {claim["id"]: claim for claim in json.loads((out / "claims.json").read_text())["claims"]}


def test_d1_at_the_usual_rates_compares_each_rate_at_its_own_tuned_rate_with_the_tuned_dense_net(report):
    rates = [0.00625, 0.0125, 0.025, 0.0375, 0.05, 0.075, 0.1, 0.15, 0.2]  # conf/experiment/dropout_rates.yaml
    dense = [0.0125, 0.025, 0.0375, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3]  # conf/experiment/mlp_regularizers.yaml
    none = _hoyer("mlp_regularizers", _chosen_lr("mlp_regularizers-tuning", dense, name="none"), 9, name="none")
    [check] = [c for c in report["D1"]["checks"] if c["label"].startswith("at a usual rate")]
    cells = {cell["setting"]["regularizer.p"]: cell for cell in check["cells"]}
    assert sorted(cells) == [0.2, 0.4]
    for p, cell in cells.items():
        lr = _chosen_lr("dropout_rates-tuning", rates, p=p)
        dropout = _hoyer("dropout_rates", lr, 5, p=p)
        assert (cell["n_a"], cell["n_b"]) == (len(dropout), len(none)) == (5, 9)
        assert cell["effect"] == pytest.approx(statistics.mean(dropout) - statistics.mean(none), rel=1e-9)
    assert check["verdict"] == "refuted"  # both rates inside the ±0.03 band: no usual rate supports D1


def test_every_two_arm_check_reads_one_arm_a_side(report):
    # dropout_rates' arms are dropout too: a check that names no experiment would pool them with
    # mlp_regularizers' tuned dropout arm.
    for claim in report.values():
        for check in claim["checks"]:
            if check["b"]:
                assert len(check["groups_a"]) == 1 and len(check["groups_b"]) == 1, (claim["id"], check["label"])
