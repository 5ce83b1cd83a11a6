"""The layers together in small models, built the way sparsebench's models build them: a weight layer
from a fresh nn.Linear / nn.Conv2d, an activation from the per-example shape, hooks after each
optimizer step (rezero_weights) and each epoch (update_boost_strength)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsebench.nn import (
    DropConnectConv2d,
    DropConnectLinear,
    KWinners,
    KWinners2d,
    Sparseout,
    SparseWeights,
    SparseWeights2d,
    rezero_weights,
    update_boost_strength,
)

BOOST, BOOST_FACTOR = 1.5, 0.8


def _mlp():
    return nn.Sequential(
        nn.Flatten(),
        SparseWeights(nn.Linear(64, 32), sparsity=0.5),
        KWinners(32, 0.25, duty_cycle_period=40, boost_strength=BOOST, boost_strength_factor=BOOST_FACTOR),
        DropConnectLinear.from_module(nn.Linear(32, 32), p=0.5), nn.ReLU(), Sparseout(0.5, 1.5),
        nn.Linear(32, 4))


def _cnn():
    return nn.Sequential(
        SparseWeights2d(nn.Conv2d(1, 4, 3, padding=1), sparsity=0.5),
        KWinners2d(4, 0.25, boost_strength=BOOST, boost_strength_factor=BOOST_FACTOR),
        DropConnectConv2d.from_module(nn.Conv2d(4, 4, 3, padding=1), p=0.25), nn.ReLU(),
        Sparseout(0.3, 1.0, grad="exact", rng="fast"),
        KWinners2d(4, 0.5, local=True, boost_strength=BOOST, boost_strength_factor=BOOST_FACTOR),
        nn.Flatten(), nn.Linear(4 * 8 * 8, 4))


def _train(model, steps=6):
    torch.manual_seed(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 4, (16,))
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
        model.apply(rezero_weights)
    model.apply(update_boost_strength)
    return x


def test_models_train_and_keep_their_invariants():
    for build in (_mlp, _cnn):
        model = build()
        x = _train(model)
        for m in model.modules():
            if isinstance(m, (SparseWeights, SparseWeights2d)):
                assert (m.module.weight[m.structural_mask()] == 0).all()
                assert not hasattr(m, "weight")  # sparsebench's Network unwraps through .module
            if isinstance(m, (KWinners, KWinners2d)):
                assert m.learning_iterations.item() == 16 * 6
                # Duty cycles are shares of examples in which a unit was active: in [0, 1], and
                # summing, over the units of one example, to at most its k winners (per position
                # where winners are local; global 2d duty cycles are per channel, averaged over H*W).
                assert ((m.duty_cycle >= 0) & (m.duty_cycle <= 1)).all()
                winners = m.k if getattr(m, "local", False) else m.k * m.duty_cycle.numel() / m.n
                assert 0 < m.duty_cycle.sum().item() <= winners + 1e-5
                # one update after the epoch: the boost strength times its factor, once
                assert m.boost_strength.item() == pytest.approx(BOOST * BOOST_FACTOR, rel=1e-6)
        model.eval()
        assert torch.isfinite(model(x)).all()


def test_whole_model_state_dict_round_trip():
    for build in (_mlp, _cnn):
        torch.manual_seed(1)
        model = build()
        x = _train(model)
        torch.manual_seed(2)
        copy = build()
        copy.load_state_dict(model.state_dict())
        model.eval(), copy.eval()
        assert torch.equal(copy(x), model(x))
