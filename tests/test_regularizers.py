"""DropConnect, Sparseout and k-winners in the runner: every model, hooks, state, identity with dropout."""

from __future__ import annotations

import json

import pytest
import torch

from sparsebench.data import load_splits
from sparsebench.errors import ConfigError
from sparsebench.models import build_model
from sparsebench.nn import KWinners, KWinners2d, SparseWeights
from sparsebench.regularizers import build_regularizer
from sparsebench.runner import run
from sparsebench.train import fit

MODELS = {
    "mlp": [],
    "mnist_cnn": ["model=mnist_cnn", "model.channels=[8]", "model.hidden=[32]"],
    "cifar_cnn": ["model=cifar_cnn", "model.stages=[[8],[16]]", "model.hidden=[32]"],
}
REGULARIZERS = {
    "dropconnect": ["regularizer=dropconnect", "regularizer.apply_to=both"],
    "dropconnect_gaussian": ["regularizer=dropconnect", "regularizer.inference=gaussian", "regularizer.samples=20"],
    "sparseout": ["regularizer=sparseout", "regularizer.apply_to=both", "regularizer.q=1.5"],
    "kwinners": ["regularizer=kwinners", "regularizer.percent_on=[0.2]", "regularizer.weight_density=0.5"],
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("regularizer", REGULARIZERS)
def test_every_regularizer_trains_every_model(make_config, model, regularizer):
    cfg = make_config(*MODELS[model], *REGULARIZERS[regularizer], "dataset.train_subset=300", "dataset.test_subset=100")
    outcome = run(cfg)
    assert outcome.status == "completed", outcome.message
    record = json.loads((outcome.path / "result.json").read_text())
    assert record["metrics"]["test"]["accuracy"] >= 0


def _fit(cfg, epochs_hook=None):
    torch.manual_seed(cfg.seed)
    data = load_splits(cfg.dataset, torch.device("cpu"))
    regularizer = build_regularizer(cfg.regularizer)
    model = build_model(cfg.model, regularizer, tuple(cfg.dataset.shape), 10)
    return model, fit(model, regularizer, data, cfg.train, seed=cfg.seed, eval_batch_size=500)


def test_sparseout_with_q_2_trains_exactly_like_dropout(make_config):
    dropout_model, dropout = _fit(make_config("regularizer=dropout", "regularizer.p=0.3", "train.epochs=2"))
    sparseout_model, sparseout = _fit(make_config("regularizer=sparseout", "regularizer.p=0.3", "regularizer.q=2.0",
                                                  "train.epochs=2"))
    assert [e["train_loss"] for e in dropout.history] == [e["train_loss"] for e in sparseout.history]
    assert all(torch.equal(a, b) for a, b in zip(dropout_model.parameters(), sparseout_model.parameters()))
    _, other_q = _fit(make_config("regularizer=sparseout", "regularizer.p=0.3", "regularizer.q=1.5", "train.epochs=2"))
    assert [e["train_loss"] for e in other_q.history] != [e["train_loss"] for e in dropout.history]


def test_kwinners_hooks_decay_boost_once_per_epoch_and_keep_sparse_weights_zero(make_config):
    cfg = make_config("model=mnist_cnn", "model.channels=[8]", "model.hidden=[64]", "regularizer=kwinners",
                      "regularizer.percent_on=[0.1,0.25]", "regularizer.weight_density=0.3",
                      "regularizer.boost_strength=1.5", "regularizer.boost_strength_factor=0.5", "train.epochs=3")
    model, _ = _fit(cfg)
    kw = [m for m in model.modules() if isinstance(m, (KWinners, KWinners2d))]
    assert len(kw) == 2 and all(abs(float(m.boost_strength) - 1.5 * 0.5 ** 3) < 1e-6 for m in kw)
    assert all(m.duty_cycle.sum() > 0 for m in kw)
    [sparse] = [m for m in model.modules() if isinstance(m, SparseWeights)]
    assert torch.all(sparse.module.weight[sparse.structural_mask()] == 0)
    kept = (~sparse.structural_mask()).sum(1)
    assert torch.all(kept == round(0.3 * sparse.module.in_features))


def test_kwinners_state_and_structural_zeros_reach_the_record(make_config):
    cfg = make_config("regularizer=kwinners", "regularizer.percent_on=[0.1]", "regularizer.weight_density=0.3")
    outcome = run(cfg)
    record = json.loads((outcome.path / "result.json").read_text())
    weights = record["metrics"]["weights"]["final"]
    assert abs(weights["hidden1"]["structural"] - (1 - round(0.3 * 784) / 784)) < 1e-9
    assert weights["output"]["structural"] == 0
    assert record["metrics"]["activations"]["hidden1"]["zero_fraction"] >= 1 - 0.1 * 1.5 - 1e-9
    state = torch.load(outcome.path / "checkpoint.pt", weights_only=True)
    assert {"hidden1.activation.duty_cycle", "hidden1.activation.boost_strength", "hidden1.weight.zero_mask"} <= set(state)


def test_dropconnect_sample_masks_over_budget_are_refused_before_any_work(make_config):
    with pytest.raises(ConfigError, match=r"regularizer.mask='sample' is not allowed: per-example masks need "
                                          r"20,070,400 bytes for batch size 100") as caught:
        make_config("regularizer=dropconnect", "regularizer.mask=sample", "regularizer.max_mask_bytes=1000000")
    assert "train.batch_size" in str(caught.value)
    cfg = make_config("regularizer=dropconnect", "regularizer.mask=sample", "train.batch_size=10",
                      "dataset.train_subset=200")
    assert run(cfg).status == "completed"
