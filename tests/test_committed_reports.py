"""The committed standard report's readings, remade from its committed records and checked against the
records' own JSON, read here without sparsebench's code: each tuned arm's choice (the best validation
accuracy at the full budget; a tie goes to the point that scored better at the first rung, which orders
the last rung's trials, and then to the grid's order) and the means its checks compare."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from sparsebench.claims import cli as claims_cli
from tests.conftest import MNIST, call_command

RECORDS = Path(__file__).resolve().parents[1] / "docs" / "claims-standard" / "records"

pytestmark = pytest.mark.system


def _records(folder: str) -> list[dict]:
    found = [json.loads(path.read_text()) for path in (RECORDS / folder).glob("*/result.json")]
    return [record for record in found if record["status"] == "completed"]


def _chosen(folder: str, grid: list[tuple], **regularizer) -> tuple:
    """The point (learning rate, then the arm's own knob where it has one) a tuned arm chose."""
    knob = {"l1": "lam", "l2": "lam"}.get(regularizer.get("name"))

    def point(record: dict) -> tuple:
        return (record["config"]["train"]["lr"],) + ((record["config"]["regularizer"][knob],) if knob else ())
    trials = [r for r in _records(folder)
              if all(r["config"]["regularizer"].get(key) == value for key, value in regularizer.items())]
    scores = {rung: {point(r): r["metrics"]["validation"]["accuracy"] for r in trials
                     if r["config"]["train"]["epochs"] == rung} for rung in (5, 20)}
    return max(scores[20], key=lambda at: (scores[20][at], scores[5].get(at, -1.0),
                                           -grid.index(at) if at in grid else -len(grid)))


def _hoyer(folder: str, lr: float, seeds: int, **regularizer) -> list[float]:
    runs = [r for r in _records(folder) if r["config"]["train"]["lr"] == lr and r["seed"] < seeds
            and all(r["config"]["regularizer"].get(key) == value for key, value in regularizer.items())]
    return [run["metrics"]["weights"]["final"]["global"]["hoyer"] for run in runs]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    if not MNIST.exists():
        pytest.skip("needs the MNIST files (SPARSEBENCH_DATA)")
    out = tmp_path_factory.mktemp("standard")
    status = call_command(claims_cli.main, "profile=standard", f"dataset.root={MNIST}",
                          f"results_dir={RECORDS}", "run=false", f"out={out}", "progress=off")
    assert status == 0
    return {claim["id"]: claim for claim in json.loads((out / "claims.json").read_text())["claims"]}


RATES = [0.00625, 0.0125, 0.025, 0.0375, 0.05, 0.075, 0.1, 0.15, 0.2]  # conf/experiment/dropout_rates.yaml
DENSE = [0.0125, 0.025, 0.0375, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3]  # conf/experiment/mlp_regularizers.yaml
L2 = [(lr, lam) for lr in (0.05, 0.1, 0.2) for lam in (1.0e-4, 5.0e-4, 2.5e-3)]  # its tune.arms, in grid order


@pytest.mark.parametrize("claim, against, seeds", [("D1", "none", 9), ("D2", "l2", 5)])
def test_the_usual_rates_compare_each_rate_at_its_own_tuned_rate_with_the_tuned_arm(report, claim, against, seeds):
    grid = [(lr,) for lr in DENSE] if against == "none" else L2
    point = _chosen("mlp_regularizers-tuning", grid, name=against)
    other = _hoyer("mlp_regularizers", point[0], seeds, name=against,
                   **({"lam": point[1]} if against == "l2" else {}))
    [check] = [c for c in report[claim]["checks"] if c["label"].startswith("at a usual rate")]
    cells = {cell["setting"]["regularizer.p"]: cell for cell in check["cells"]}
    assert sorted(cells) == [0.2, 0.4]
    for p, cell in cells.items():
        [lr] = _chosen("dropout_rates-tuning", [(lr,) for lr in RATES], p=p)
        dropout = _hoyer("dropout_rates", lr, 5, p=p)
        assert (cell["n_a"], cell["n_b"]) == (len(dropout), len(other)) == (5, seeds)
        assert cell["effect"] == pytest.approx(statistics.mean(dropout) - statistics.mean(other), rel=1e-9)
    # D1: both rates inside the ±0.03 band; D2: both rates' weights less sparse in shape than L2's.
    assert check["verdict"] == "refuted"


def test_every_two_arm_check_reads_one_arm_a_side(report):
    # dropout_rates' arms are dropout too: a check of D1 or D2 that names no experiment would pool them with
    # mlp_regularizers' tuned dropout arm. (A grid's verdict names the groups of its deciding setting only.)
    for claim in report.values():
        for check in claim.get("checks", []):  # a claim this profile does not run has none
            if check["b"] and "constant" not in check["b"]:  # a constant's side lists every group, read by none
                assert len(check["groups_a"]) == 1 and len(check["groups_b"]) == 1, (claim["id"], check["label"])
