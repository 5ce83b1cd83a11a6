"""DropConnect, Sparseout and k-winners in the runner: every model, hooks, state, identity with dropout."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsebench.data import load_splits
from sparsebench.metrics.evaluation import evaluate
from sparsebench.models import build_model
from sparsebench.network import HiddenBlock
from sparsebench.nn import (
    DropConnectConv2d,
    DropConnectLinear,
    KWinners,
    KWinners2d,
    Sparseout,
    SparseWeights,
)
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
    "dropconnect_gaussian": ["regularizer=dropconnect", "regularizer.apply_to=both", "regularizer.inference=gaussian",
                             "regularizer.samples=20"],
    "sparseout": ["regularizer=sparseout", "regularizer.apply_to=both", "regularizer.q=1.5"],
    "kwinners": ["regularizer=kwinners", "regularizer.percent_on=[0.2]", "regularizer.weight_density=0.5"],
}
# The module each regularizer puts in every hidden block of these configs (in the weight layer or after it).
MECHANISMS = {"dropconnect": (DropConnectLinear, DropConnectConv2d),
              "dropconnect_gaussian": (DropConnectLinear, DropConnectConv2d),
              "sparseout": (Sparseout,), "kwinners": (KWinners, KWinners2d)}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("regularizer", REGULARIZERS)
def test_every_regularizer_trains_every_model(make_config, model, regularizer):
    cfg = make_config(*MODELS[model], *REGULARIZERS[regularizer], "dataset.train_subset=400", "dataset.test_subset=200",
                      "train.batch_size=20", "train.epochs=2", "train.lr=0.02")
    network = build_model(cfg.model, build_regularizer(cfg.regularizer), tuple(cfg.dataset.shape), 10)
    blocks = network.hidden_blocks()
    assert any(isinstance(block.weight, torch.nn.Conv2d) for _, block in blocks) == (model != "mlp")
    for name, block in blocks:  # the method reaches every hidden layer, convolutions included
        assert any(isinstance(m, MECHANISMS[regularizer]) for m in block.modules()), name
    outcome = run(cfg)
    assert outcome.status == "completed", outcome.message
    record = json.loads((outcome.path / "result.json").read_text())
    losses = [entry["train_loss"] for entry in record["history"]]
    assert losses[1] < losses[0] and losses[1] < 2.2  # it learns (a guess costs ln 10 = 2.30 nats)
    # 40 steps do clearly better than chance (10%) on 200 test images (30-75% here), measured in
    # evaluation mode: through Gaussian inference for dropconnect_gaussian
    assert record["metrics"]["test"]["accuracy"] > 20


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
    for m in kw:  # shares of examples in which each unit won, so at most k winners an example in all
        winners = m.k * m.duty_cycle.numel() / m.n  # global 2d duty cycles are per channel, averaged over H*W
        assert ((m.duty_cycle >= 0) & (m.duty_cycle <= 1)).all() and 0 < m.duty_cycle.sum() <= winners + 1e-5
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


def test_dropconnect_sample_masks_have_no_batch_limit(make_config):
    """Per-example masks are regenerated in the backward pass, never stored: a batch whose masked
    weights need 20 times max_mask_bytes (once refused) trains, and a dropout-on evaluation pass at a
    larger batch runs."""
    cfg = make_config("regularizer=dropconnect", "regularizer.mask=sample", "regularizer.max_mask_bytes=1000000",
                      "train.batch_size=100", "dataset.train_subset=200", "eval.batch_size=500",
                      "eval.train_mode_passes=1")
    outcome = run(cfg)
    assert outcome.status == "completed", outcome.message


# --- DropConnect's Gaussian inference inside a model --------------------------------------------

DROPCONNECT_GAUSSIAN = ["regularizer=dropconnect", "regularizer.apply_to=both", "regularizer.inference=gaussian",
                        "regularizer.samples=20"]


def _dropconnect_layers(model):
    return [m for m in model.modules() if isinstance(m, (DropConnectLinear, DropConnectConv2d))]


@pytest.mark.parametrize("model", MODELS)
def test_gaussian_inference_agrees_with_mean_inference_when_almost_nothing_is_dropped(make_config, model):
    """At p = 1e-4 the Gaussian draws barely spread, so both inferences must give the same network.
    Moment matching is on the pre-activation: a BatchNorm (cifar_cnn) or a pooling (mnist_cnn) between
    the weight layer and the activation must see the drawn pre-activation, not an averaged activation
    (which, in a trained cifar_cnn, left 34% of the first hidden layer at zero against 43%)."""
    overrides = [*MODELS[model], *DROPCONNECT_GAUSSIAN, "regularizer.p=0.0001"]
    gaussian_model, _ = _fit(make_config(*overrides))  # one real epoch, so batch norm has real statistics
    assert _dropconnect_layers(gaussian_model)[0] is gaussian_model.hidden1.weight  # the first layer is reached
    mean_cfg = make_config(*overrides, "regularizer.inference=mean")
    mean_model = build_model(mean_cfg.model, build_regularizer(mean_cfg.regularizer), tuple(mean_cfg.dataset.shape), 10)
    mean_model.load_state_dict(gaussian_model.state_dict())
    data = load_splits(mean_cfg.dataset, torch.device("cpu"))
    x = data.test.inputs[:200]
    outputs = {}
    for name, network in (("gaussian", gaussian_model.eval()), ("mean", mean_model.eval())):
        first = []
        handle = network.hidden1.register_forward_hook(lambda module, args, out: first.append(out))
        with torch.no_grad():
            logits = network(x)
        handle.remove()
        outputs[name] = (first[0], logits)
    zeros = {name: (hidden == 0).double().mean().item() for name, (hidden, _) in outputs.items()}
    # A unit within a draw's spread of 0 is exactly 0 under mean inference but rarely after averaging
    # 20 draws: that alone moves the zero share by under a point here.
    assert abs(zeros["gaussian"] - zeros["mean"]) < 0.015, zeros
    logits = {name: out for name, (_, out) in outputs.items()}
    assert (logits["gaussian"] - logits["mean"]).abs().max() < 0.01 * logits["mean"].abs().max()


def test_gaussian_inference_is_reproducible_and_leaves_the_global_generator_alone(make_config):
    cfg = make_config(*MODELS["cifar_cnn"], *DROPCONNECT_GAUSSIAN, "regularizer.p=0.5")
    model, _ = _fit(cfg)
    assert len(_dropconnect_layers(model)) == 3  # both conv layers and the hidden linear layer
    data = load_splits(cfg.dataset, torch.device("cpu"))
    state = torch.get_rng_state()
    first = evaluate(model, data.test.inputs, data.test.labels, 64)
    assert torch.equal(torch.get_rng_state(), state)
    second = evaluate(model, data.test.inputs, data.test.labels, 64)
    assert (first.accuracy, first.loss) == (second.accuracy, second.loss)


def test_evaluation_with_gaussian_inference_does_not_change_what_training_draws(make_config):
    """The loop evaluates after every epoch; the training masks of the next epoch must not depend on
    whether that evaluation drew Gaussian samples: training is the same as with mean inference."""
    overrides = [*MODELS["mnist_cnn"], *DROPCONNECT_GAUSSIAN, "regularizer.p=0.5", "train.epochs=2"]
    gaussian_model, gaussian = _fit(make_config(*overrides))
    mean_model, mean = _fit(make_config(*overrides, "regularizer.inference=mean"))
    assert [e["train_loss"] for e in gaussian.history] == [e["train_loss"] for e in mean.history]
    assert all(torch.equal(a, b) for a, b in zip(gaussian_model.parameters(), mean_model.parameters()))
    assert gaussian.history[-1]["test_loss"] != mean.history[-1]["test_loss"]  # the inferences did differ


def _explicit_mask_average(weight, bias, x, p, draws, follow, generator):
    """E[follow(u)] over DropConnect masks, by Monte Carlo over explicit Bernoulli masks drawn with
    torch.bernoulli, one per example and draw: u = (W * m / (1 - p)) x + b, for a weight of shape
    (out, fan_in) and a batch x of shape (batch, fan_in, positions) (positions: 1 for a linear layer,
    the unfolded patches of a convolution). Returns the average and its standard error."""
    outs = []
    for example in x:
        total = total_sq = 0.0
        for start in range(0, draws, 2000):
            count = min(2000, draws - start)
            keep = torch.bernoulli(torch.full((count, *weight.shape), 1 - p, dtype=weight.dtype),
                                   generator=generator)
            u = torch.einsum("nok,kq->noq", weight * keep / (1 - p), example) + bias.view(1, -1, 1)
            y = follow(u)
            total = total + y.sum(0)
            total_sq = total_sq + y.square().sum(0)
        mean = total / draws
        outs.append((mean, ((total_sq / draws - mean.square()).clamp_min(0) / draws).sqrt()))
    return torch.stack([m for m, _ in outs]), torch.stack([s for _, s in outs])


def _batch_norm(u, norm):
    """Batch normalisation in evaluation mode, written out: (u - running mean) / sqrt(running var + eps)
    * weight + bias, over the channel dim 1."""
    shape = (1, -1) + (1,) * (u.dim() - 2)
    scale = (norm.weight / (norm.running_var + norm.eps).sqrt()).view(shape)
    return (u - norm.running_mean.view(shape)) * scale + norm.bias.view(shape)


def _set_statistics(norm, generator):
    with torch.no_grad():
        for tensor, low, high in ((norm.running_mean, -1.0, 1.0), (norm.running_var, 0.5, 2.0),
                                  (norm.weight, 0.5, 1.5), (norm.bias, -0.5, 0.5)):
            tensor.copy_(torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) * (high - low) + low)


def test_gaussian_inference_of_a_block_matches_explicit_dropconnect_masks():
    """A hidden block whose weight layer is followed by batch norm and pooling: the block's output at
    evaluation is the average over Gaussian draws of the pre-activation of norm -> pool -> ReLU, which,
    for a wide fan-in, is DropConnect's own expectation over masks (a Monte Carlo estimate over
    explicit masks here, computed without the code under test)."""
    generator = torch.Generator().manual_seed(0)
    p, draws = 0.5, 20_000

    # Linear (fan-in 400) -> BatchNorm1d -> max over pairs of units -> ReLU. The units of a linear
    # layer use disjoint weights, so their pre-activations are independent, as the draws assume.
    linear = nn.Linear(400, 6).double()
    norm = nn.BatchNorm1d(6).double().eval()
    _set_statistics(norm, generator)
    pairs = nn.Sequential(nn.Unflatten(1, (1, 6)), nn.MaxPool1d(2), nn.Flatten())
    block = HiddenBlock(DropConnectLinear.from_module(linear, p=p, inference="gaussian", samples=draws),
                        nn.ReLU(), norm=norm, pool=pairs).eval()
    x = torch.randn(3, 400, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        ours = block(x)
        expected, se = _explicit_mask_average(
            linear.weight, linear.bias, x.unsqueeze(-1), p, draws,
            lambda u: _batch_norm(u[..., 0], norm).view(-1, 3, 2).amax(-1).clamp_min(0), generator)
        scale = expected.abs().max()
    assert ours.shape == (3, 3)
    assert ((ours - expected).abs() <= 6 * se + 0.01 * scale).all(), (ours, expected, se)

    # Conv2d (fan-in 16 x 5 x 5) -> BatchNorm2d -> ReLU: no pooling, since the positions of one
    # filter share its mask, which independent draws per position do not model.
    conv = nn.Conv2d(16, 4, 5).double()
    norm2d = nn.BatchNorm2d(4).double().eval()
    _set_statistics(norm2d, generator)
    block = HiddenBlock(DropConnectConv2d.from_module(conv, p=p, inference="gaussian", samples=draws),
                        nn.ReLU(), norm=norm2d).eval()
    x = torch.randn(2, 16, 6, 6, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        ours = block(x)
        patches = F.unfold(x, 5)  # (batch, 16 * 5 * 5, 4 positions)
        expected, se = _explicit_mask_average(
            conv.weight.flatten(1), conv.bias, patches, p, draws,
            lambda u: _batch_norm(u, norm2d).clamp_min(0), generator)
        expected, se = expected.view(2, 4, 2, 2), se.view(2, 4, 2, 2)
        scale = expected.abs().max()
    assert ((ours - expected).abs() <= 6 * se + 0.01 * scale).all(), (ours, expected, se)


def test_dropconnect_paper_protocol_uses_per_example_masks_and_gaussian_inference(make_config):
    from sparsebench.sweep import compose_jobs, hydra_configs

    with hydra_configs():
        # The embedded subset cannot give the experiment's 10,000 validation images: a smaller split.
        jobs = compose_jobs(["experiment=dropconnect_paper_mlp", "dataset=embedded", "dataset.val_size=500"], multirun=True)
    arms = {}
    for _, cfg in jobs:
        arms.setdefault(cfg.regularizer.name, []).append(cfg)
    assert sorted(arms) == ["dropconnect", "dropout", "none"]
    assert all(sorted(c.seed for c in runs) == [0, 1, 2, 3, 4] for runs in arms.values())  # mean of 5 runs
    for cfg in arms["dropconnect"]:
        assert (cfg.regularizer.mask, cfg.regularizer.inference, cfg.regularizer.p) == ("sample", "gaussian", 0.5)
    assert all(list(c.model.hidden) == [800, 800] for runs in arms.values() for c in runs)
    # regularizer=dropconnect keeps its own defaults
    plain = make_config("regularizer=dropconnect").regularizer
    assert (plain.mask, plain.inference) == ("batch", "mean")
