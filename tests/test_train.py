"""The training loop on tiny real configs: determinism, divergence, selection, resuming."""

from __future__ import annotations

import io
import json

import pytest
import torch

from sparsebench.data import load_splits
from sparsebench.errors import ConfigError
from sparsebench.models import build_model
from sparsebench.regularizers import build_regularizer
from sparsebench.runner import run, run_dir_for
from sparsebench.train import fit


def _fit(run_cfg, **kwargs):
    torch.manual_seed(run_cfg.seed)
    data = load_splits(run_cfg.dataset, torch.device("cpu"))
    regularizer = build_regularizer(run_cfg.regularizer)
    model = build_model(run_cfg.model, regularizer, tuple(run_cfg.dataset.shape), run_cfg.dataset.num_classes)
    result = fit(model, regularizer, data, run_cfg.train, seed=run_cfg.seed, eval_batch_size=500, **kwargs)
    return model, result


def test_same_config_and_seed_give_the_same_numbers(make_config):
    cfg = make_config("regularizer=dropout", "train.epochs=2")
    (model_a, a), (model_b, b) = _fit(cfg), _fit(cfg)
    strip = lambda history: [{k: v for k, v in e.items() if k not in ("seconds", "samples_per_second")} for e in history]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    assert all(torch.equal(x, y) for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    _, other = _fit(make_config("regularizer=dropout", "train.epochs=2", "seed=1"))
    assert strip(other.history) != strip(a.history)


def test_without_the_test_curve_no_epoch_scores_the_test_split_and_nothing_else_moves(make_config):
    """A tuning trial's setting (eval.test_curve=false): the epochs score validation only, and the
    training (the validation curve, the final weights) is the same as with the test scored."""
    cfg = make_config("regularizer=dropout", "train.epochs=2", "dataset.val_size=500")
    model_on, on = _fit(cfg)
    model_off, off = _fit(cfg, test_curve=False)
    assert all("test_accuracy" in e and "test_loss" in e for e in on.history)
    assert not any(key.startswith("test_") for e in off.history for key in e)
    assert [e["validation_accuracy"] for e in off.history] == [e["validation_accuracy"] for e in on.history]
    assert all(torch.equal(x, y) for x, y in zip(model_on.state_dict().values(), model_off.state_dict().values()))
    # The validation score is the final network's accuracy on the held-out images, counted here by hand.
    data = load_splits(cfg.dataset, torch.device("cpu"))
    model_off.eval()
    with torch.no_grad():
        accuracy = 100.0 * (model_off(data.val.inputs).argmax(1) == data.val.labels).float().mean().item()
    assert abs(accuracy - off.history[-1]["validation_accuracy"]) < 1e-6


def test_the_best_test_epoch_needs_the_test_curve(make_config):
    with pytest.raises(ConfigError, match="eval.test_curve=true"):
        make_config("eval.best_test=true", "eval.test_curve=false")


def test_training_learns(make_config):
    _, result = _fit(make_config("train.epochs=2", "train.lr=0.05"))
    assert result.history[-1]["test_accuracy"] > 60  # chance is 10%; 1,000 images, two epochs
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_schedule_and_first_epoch_batch_size(make_config):
    cfg = make_config("train.epochs=3", "train.schedule=step", "train.gamma=0.8", "train.first_epoch_batch_size=20")
    _, result = _fit(cfg)
    assert [e["batch_size"] for e in result.history] == [20, 100, 100]
    lrs = [e["lr"] for e in result.history]
    assert abs(lrs[1] - 0.8 * lrs[0]) < 1e-12 and abs(lrs[2] - 0.64 * lrs[0]) < 1e-12


def test_best_val_selection_restores_the_chosen_epoch(make_config):
    cfg = make_config("train.epochs=3", "train.select=best_val", "dataset.val_size=500", "train.lr=0.2")
    model, result = _fit(cfg)
    best = max(result.history, key=lambda e: e["validation_accuracy"])
    assert result.selected_epoch == best["epoch"]
    data = load_splits(cfg.dataset, torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        accuracy = 100.0 * (model(data.val.inputs).argmax(1) == data.val.labels).float().mean().item()
    assert abs(accuracy - best["validation_accuracy"]) < 1e-6


def test_best_test_weights_are_kept_beside_the_selected_ones(make_config):
    cfg = make_config("train.epochs=3", "train.lr=0.2")
    model, result = _fit(cfg, keep=("best_test",))
    assert result.selected_epoch == 3  # select=last: the model holds the last epoch
    epoch, state = result.kept["best_test"]
    assert epoch == max(result.history, key=lambda e: e["test_accuracy"])["epoch"]
    data = load_splits(cfg.dataset, torch.device("cpu"))
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        accuracy = 100.0 * (model(data.test.inputs).argmax(1) == data.test.labels).float().mean().item()
    assert abs(accuracy - result.history[epoch - 1]["test_accuracy"]) < 1e-6


def test_resuming_from_a_saved_epoch_matches_an_uninterrupted_run(make_config):
    cfg = make_config("regularizer=dropout", "train.epochs=3", "train.select=best_val", "dataset.val_size=500")
    saved = []

    def save_state(state: dict) -> None:  # a copy through bytes, as the runner writes it to disk
        buffer = io.BytesIO()
        torch.save(state, buffer)
        saved.append(buffer.getvalue())

    full_model, full = _fit(cfg, save_state=save_state, keep=("best_test",))
    after_epoch_one = torch.load(io.BytesIO(saved[0]), weights_only=False)
    resumed_model, resumed = _fit(cfg, resume=after_epoch_one, keep=("best_test",))
    assert resumed.resumed_from == 1
    assert resumed.selected_epoch == full.selected_epoch and resumed.kept["best_test"][0] == full.kept["best_test"][0]
    assert [e["test_accuracy"] for e in resumed.history] == [e["test_accuracy"] for e in full.history]
    assert all(torch.equal(x, y) for x, y in zip(full_model.state_dict().values(), resumed_model.state_dict().values()))


def test_divergence_is_recorded_as_failed_with_epoch_and_reason(make_config):
    cfg = make_config("train.lr=1e12", "train.epochs=2")
    outcome = run(cfg)
    assert outcome.status == "failed"
    record = json.loads((run_dir_for(cfg).result_path).read_text())
    assert record["status"] == "failed" and record["error"]["epoch"] == 1
    assert "nan" in record["error"]["message"] or "inf" in record["error"]["message"]
    assert not (outcome.path / "checkpoint.pt").exists()
    # A failed run is not retried unless asked, and it still counts as failed.
    again = run(cfg)
    assert again.status == "failed" and "retry_failed=true" in again.message


def test_one_log_line_per_epoch_without_a_progress_bar(make_config, caplog):
    caplog.set_level("INFO", logger="sparsebench")
    _fit(make_config("train.epochs=2"), progress=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "left" in lines[0] and "test" in lines[0]
