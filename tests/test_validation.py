"""The validation split of the claim experiments and what is measured on it: the split itself (disjoint from
training, the same for every arm and seed), early stopping (the epoch of best validation accuracy, measured
again), the per-image correctness of the test set, and old records' ``val`` read as ``validation``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sparsebench.claims.catalogue import load_catalogue
from sparsebench.configure import validate
from sparsebench.data import load_splits
from sparsebench.errors import ConfigError
from sparsebench.measurements import kept_epochs
from sparsebench.metrics.evaluation import unpack_correct
from sparsebench.models import build_model
from sparsebench.records.record import RunRecord
from sparsebench.regularizers import build_regularizer
from sparsebench.report.aggregate import load_records, metric_columns
from sparsebench.report.tables import summarize
from sparsebench.runner import run
from tests.conftest import TINY, compose_config


def _indices(cfg) -> tuple[set, set, set]:
    data = load_splits(cfg.dataset, torch.device("cpu"))
    return set(data.train.index.tolist()), set(data.val.index.tolist()), set(data.test.index.tolist())


def test_the_validation_split_is_disjoint_from_training_and_the_same_for_every_arm_and_seed(tmp_path):
    # The smoke profile's budget (the embedded subset, val_size 500 of its 5,000 training images) over the
    # experiments of several claims, their arms and seeds.
    arms = [["experiment=mlp_regularizers", "regularizer=none", "seed=0"],
            ["experiment=mlp_regularizers", "regularizer=dropout", "seed=3"],
            ["experiment=mlp_kwinners", "seed=1"],
            ["experiment=sparseout_q", "regularizer.q=1.0", "seed=4"]]
    splits = []
    for arm in arms:
        cfg = validate(compose_config([*arm, "profile=smoke", f"results_dir={tmp_path}"]))
        assert cfg.dataset.val_size == 500 and cfg.eval.early_stop
        splits.append(_indices(cfg))
    train, val, test = splits[0]
    assert len(val) == 500 and len(train) == 2000 and not train & val
    assert val <= set(range(5000)) and train <= set(range(5000))
    assert all(other == (train, val, test) for other in splits[1:])


def test_every_claim_experiment_holds_out_validation_images_and_measures_early_stopping(tmp_path):
    # As written (the standard profile): 10,000 of MNIST's 60,000 training images, 5,000 of CIFAR-10's
    # 50,000; task sequences hold theirs out too but have no single epoch to stop at; a regime map's cells
    # measure only their primary checks' metrics (conf/experiment/map_*.yaml), no early-stopping copy.
    experiments = {e for claim in load_catalogue().values() for e in claim.all_experiments()}
    assert "mlp_regularizers" in experiments and "continual_mlp" in experiments
    for experiment in sorted(experiments):
        cfg = validate(compose_config([f"experiment={experiment}", f"results_dir={tmp_path}"]))
        expected = 5000 if cfg.dataset.name == "cifar10" else 10000
        assert (cfg.dataset.val_size, cfg.dataset.split_seed, cfg.train.select) == (expected, 0, "last"), experiment
        stops = cfg.continual is None and not cfg.axes
        assert cfg.eval.early_stop == stops, experiment
        assert kept_epochs(cfg) == (("best_test",) if cfg.eval.best_test else ()) + (("best_val",) if stops else ()), \
            experiment


def test_early_stopping_without_a_validation_split_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="eval.early_stop=True is not allowed: early stopping needs a validation"):
        validate(compose_config([*TINY, "eval.early_stop=true", f"results_dir={tmp_path}"]))


def _checkpoint_model(cfg, folder):
    model = build_model(cfg.model, build_regularizer(cfg.regularizer), tuple(cfg.dataset.shape),
                        cfg.dataset.num_classes)
    model.load_state_dict(torch.load(folder / "checkpoint.pt", map_location="cpu"))
    return model.eval()


def test_early_stop_measures_the_best_validation_epoch_on_real_mnist(make_config, mnist_dir):
    base = ["dataset=mnist", f"dataset.root={mnist_dir}", "dataset.val_size=1000", "dataset.train_subset=2000",
            "dataset.test_subset=1000", "model.hidden=[32]", "train.lr=0.3", "regularizer=dropout",
            "eval.early_stop=true", "eval.train_mode_passes=2", "eval.noise=[pixels]", "eval.pixel_levels=[0.0,0.3]"]
    cfg = make_config(*base, "train.epochs=5")
    outcome = run(cfg)
    assert outcome.status == "completed", outcome.message
    record = json.loads((outcome.path / "result.json").read_text())
    metrics, history = record["metrics"], record["history"]
    scores = [entry["validation_accuracy"] for entry in history]
    best = int(np.argmax(scores)) + 1  # the first epoch of the highest validation accuracy
    found = metrics["early_stop"]
    assert found["epoch"] == best
    # Else this test would not tell the best epoch's weights from the last epoch's.
    assert best < len(history) and history[best - 1]["test_accuracy"] != metrics["test"]["accuracy"]
    assert set(found) == {"epoch", "test", "train", "generalization_gap", "validation", "weights", "activations",
                          "noise", "dropout_on", "mc_dropout"}
    assert set(found["test"]) == {"accuracy", "loss", "ece"}
    assert found["validation"]["accuracy"] == pytest.approx(scores[best - 1])

    # That epoch's weights, made again independently: the same config trained for `best` epochs (a constant
    # learning rate, the same seeds: its first epochs are those of the longer run), read from its checkpoint.
    short = make_config(*base, f"train.epochs={best}")
    again = run(short)
    model = _checkpoint_model(short, again.path)
    data = load_splits(cfg.dataset, torch.device("cpu"))
    with torch.no_grad():
        correct = model(data.test.inputs).argmax(1) == data.test.labels
    assert found["test"]["accuracy"] == pytest.approx(100.0 * correct.double().mean().item())
    assert found["noise"]["pixels"]["accuracy"][0] == pytest.approx(found["test"]["accuracy"])  # level 0: clean
    # The short run's best epoch is its last: its early_stop groups are copies of its own measurements, which
    # must be what the long run measured on the kept weights of that epoch, group by group.
    short_metrics = json.loads((again.path / "result.json").read_text())["metrics"]
    assert short_metrics["early_stop"] == found

    # The run's own test/correct_bits are its last epoch's per-image correctness, in the stored order.
    last = _checkpoint_model(cfg, outcome.path)
    with torch.no_grad():
        last_correct = (last(data.test.inputs).argmax(1) == data.test.labels).numpy()
    assert metrics["test"]["count"] == 1000
    assert unpack_correct(metrics["test"]["correct_bits"], 1000).tolist() == last_correct.tolist()
    assert metrics["test"]["accuracy"] == pytest.approx(100.0 * last_correct.mean())

    # The reporter reads the bits as a string beside the numbers, never as a metric to average.
    df, _ = load_records(cfg.results_dir)
    assert len(df) == 2 and "test/correct_bits" in df.columns
    assert "test/correct_bits" not in metric_columns(df) and "early_stop/mc_dropout/nll" in metric_columns(df)
    assert "test/correct_bits" not in set(summarize(df)["metric"])


def test_an_old_record_s_val_is_read_as_validation():
    old = {"status": "completed", "run_id": "x", "experiment": "e", "seed": 0, "config": {}, "data": {},
           "environment": {}, "metrics": {"test": {"accuracy": 90.0, "loss": 0.3}, "val": {"accuracy": 91.0, "loss": 0.2}},
           "history": [{"epoch": 1, "val_accuracy": 91.0, "val_loss": 0.2, "test_accuracy": 90.0}], "error": None,
           "timing": {}}
    record = RunRecord.from_json(old)
    assert record.metrics == {"test": {"accuracy": 90.0, "loss": 0.3}, "validation": {"accuracy": 91.0, "loss": 0.2}}
    assert record.history == [{"epoch": 1, "validation_accuracy": 91.0, "validation_loss": 0.2, "test_accuracy": 90.0}]
    assert old["metrics"]["val"] == {"accuracy": 91.0, "loss": 0.2}  # the file's data is left as read
