"""Models built through the regularizer interface: shapes, parts, and what each regularizer puts in."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsebench.models import MODELS, build_model
from sparsebench.nn import Dropout, Dropout2d
from sparsebench.regularizers import REGULARIZERS, build_regularizer


def _build(model: str, regularizer: str = "none", shape=(1, 28, 28), model_args=None, **reg_args):
    cfg = MODELS[model].Config(**(model_args or {}))
    return build_model(cfg, build_regularizer(REGULARIZERS[regularizer].Config(**reg_args)), shape, 10)


@pytest.mark.parametrize("model, shape, hidden", [
    ("mlp", (1, 28, 28), 2), ("mnist_cnn", (1, 28, 28), 2), ("cifar_cnn", (3, 32, 32), 7)])
def test_models_classify_and_expose_their_layers(model, shape, hidden):
    torch.manual_seed(0)
    net = _build(model, shape=shape)
    assert net(torch.randn(5, *shape)).shape == (5, 10)
    assert len(net.hidden_blocks()) == hidden
    layers = net.weight_layers()
    assert [layer.name for layer in layers][-1] == "output" and len(layers) == hidden + 1
    assert all(isinstance(layer.module, (nn.Linear, nn.Conv2d)) for layer in layers)


def test_kwinners_paper_sparse_cnn2_shapes():
    net = _build("mnist_cnn", model_args={"channels": [32, 64], "hidden": [700]})
    features = []
    for _, block in net.hidden_blocks():
        block.register_forward_hook(lambda m, i, o: features.append(o[0].numel()))
    net(torch.randn(2, 1, 28, 28))
    assert features == [4608, 1024, 700]  # the paper's k = 400 of 4608, 300 of 1024, 100 of 700


def test_same_seed_gives_same_initial_weights_whatever_the_regularizer():
    torch.manual_seed(3)
    plain = _build("mlp")
    torch.manual_seed(3)
    dropped = _build("mlp", "dropout", p=0.5, input_p=0.2)
    for a, b in zip(plain.weight_layers(), dropped.weight_layers()):
        assert torch.equal(a.module.weight, b.module.weight)


def test_dropout_placement_and_eval_identity():
    torch.manual_seed(0)
    net = _build("mlp", "dropout", p=0.5, input_p=0.2)
    assert isinstance(net.input, Dropout) and net.input.p == 0.2
    assert all(isinstance(block.activation[1], Dropout) for _, block in net.hidden_blocks())
    x = torch.randn(4, 1, 28, 28)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_dropout_on_conv_nets_defaults_to_linear_layers_and_spatial_uses_dropout2d():
    net = _build("mnist_cnn", "dropout", p=0.5)
    conv_block, linear_block = (block for _, block in net.hidden_blocks())
    assert isinstance(conv_block.activation, nn.ReLU)
    assert isinstance(linear_block.activation[1], Dropout) and not linear_block.activation[1].spatial
    net = _build("mnist_cnn", "dropout", p=0.5, apply_to="conv", spatial=True)
    conv_block, linear_block = (block for _, block in net.hidden_blocks())
    assert isinstance(conv_block.activation[1], Dropout2d) and isinstance(linear_block.activation, nn.ReLU)
    net = _build("mnist_cnn", "dropout", p=0.5, rng="torch")
    assert isinstance(list(net.hidden_blocks())[1][1].activation[1], nn.Dropout)


def test_l1_and_l2_penalties_sum_weights_not_biases():
    torch.manual_seed(0)
    net = _build("mlp", model_args={"hidden": [8]})
    weights = [net.hidden1.weight.weight, net.output.weight]
    l1 = build_regularizer(REGULARIZERS["l1"].Config(lam=0.5)).penalty(net)
    l2 = build_regularizer(REGULARIZERS["l2"].Config(lam=0.5)).penalty(net)
    assert torch.allclose(l1, 0.5 * sum(w.abs().sum() for w in weights))
    assert torch.allclose(l2, 0.5 * sum(w.square().sum() for w in weights))
    with_bias = build_regularizer(REGULARIZERS["l1"].Config(lam=0.5, include_bias=True)).penalty(net)
    assert torch.allclose(with_bias - l1, 0.5 * (net.hidden1.weight.bias.abs().sum() + net.output.bias.abs().sum()))


def test_decoupled_l2_matches_the_penalty_under_plain_sgd_but_stays_out_of_momentum():
    def train(lam: float, decoupled: bool, momentum: float) -> torch.Tensor:
        torch.manual_seed(0)
        net = _build("mlp", model_args={"hidden": [16]})
        reg = build_regularizer(REGULARIZERS["l2"].Config(lam=lam, decoupled=decoupled))
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=momentum)
        data = torch.Generator().manual_seed(1)
        for _ in range(5):
            x, y = torch.randn(8, 1, 28, 28, generator=data), torch.randint(0, 10, (8,), generator=data)
            loss = nn.functional.cross_entropy(net(x), y)
            penalty = reg.penalty(net)
            opt.zero_grad()
            (loss if penalty is None else loss + penalty).backward()
            opt.step()
            reg.after_step(net, 0.1)
        return net.hidden1.weight.weight.detach()

    def decay_effects(momentum: float) -> tuple[float, float, float]:
        free, decoupled, penalty = train(0.0, False, momentum), train(0.05, True, momentum), train(0.05, False, momentum)
        size = lambda t: t.abs().max().item()  # noqa: E731
        return size(decoupled - free), size(penalty - free), size(decoupled - penalty)

    decoupled, penalty, gap = decay_effects(0.0)
    assert decoupled > 0 and gap < 0.2 * decoupled  # the same decay up to a second-order term
    decoupled, penalty, gap = decay_effects(0.9)
    assert penalty > 3 * decoupled  # momentum amplifies the penalty's decay, not the decoupled one


def test_max_norm_caps_incoming_weight_vectors_of_hidden_units():
    torch.manual_seed(0)
    net = _build("mlp", "dropout", model_args={"hidden": [32, 32]}, max_norm=0.5)
    with torch.no_grad():
        for layer in net.weight_layers():
            layer.module.weight.mul_(10)
    build_regularizer(REGULARIZERS["dropout"].Config(max_norm=0.5)).after_step(net, 0.1)
    for layer in net.weight_layers(hidden_only=True):
        assert layer.module.weight.norm(dim=1).max() <= 0.5 + 1e-5
    assert net.output.weight.norm(dim=1).max() > 1  # the output layer is not a hidden unit's
