"""KWinners / KWinners2d: k-winners-take-all with boosting and duty cycles (nupic.torch compatible)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sparsebench.nn import (
    KWinners,
    KWinners2d,
    kwinners,
    kwinners2d,
    update_boost_strength,
)


def _tied(shape, seed=0):
    """Positive values with many ties: integers 1..3."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 4, shape, generator=g).float()


def _distinct(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g)


def test_k_is_rounded_from_percent_on_and_k_inference_from_k():
    layer = KWinners(1000, 0.1)
    assert (layer.n, layer.k, layer.k_inference) == (1000, 100, 150)
    layer = KWinners(25, 0.3, k_inference_factor=1.5)  # k = round(7.5) = 8, k_inference = 12
    assert (layer.k, layer.k_inference) == (8, 12)


# The evaluation k of nupic.torch (modules/k_winners.py), written out by hand:
#   KWinners:   k = int(round(n * percent_on)); k_inference = int(k * k_inference_factor)
#   KWinners2d: k_inference = int(round(n * (percent_on * k_inference_factor))), n = C*H*W (or C if local)
@pytest.mark.parametrize("n, percent_on, factor, k, k_inference", [
    (50, 0.1, 1.5, 5, 7),      # 7.5 truncated; rounding half to even would give 8
    (1000, 0.1, 1.5, 100, 150),
    (150, 1 / 3, 1.5, 50, 75),
    (30, 0.1, 1.5, 3, 4),      # 4.5 truncated
    (70, 0.1, 1.7, 7, 11),     # 11.9 truncated
])
def test_evaluation_k_of_kwinners_matches_nupic(n, percent_on, factor, k, k_inference):
    layer = KWinners(n, percent_on, k_inference_factor=factor).eval()
    assert (layer.k, layer.k_inference) == (k, k_inference)
    x = _distinct((3, n))
    assert ((layer(x) != 0).sum(1) == k_inference).all()


@pytest.mark.parametrize("channels, size, percent_on, factor, local, k_inference", [
    (2, 5, 0.1, 1.5, False, 8),     # n = 50: round(7.5) = 8 (k = 5 would truncate to 7)
    (4, 3, 0.2, 1.5, False, 11),    # n = 36: round(10.8) = 11 (k = 7 would give round(10.5) = 10)
    (32, 12, 0.0868056, 1.5, False, 600),  # the k-winners paper's first conv layer: 400 -> 600 of 4608
    (10, 2, 0.3, 1.5, True, 4),     # local, n = 10 channels: round(4.5) = 4
])
def test_evaluation_k_of_kwinners2d_matches_nupic(channels, size, percent_on, factor, local, k_inference):
    layer = KWinners2d(channels, percent_on=percent_on, k_inference_factor=factor, local=local).eval()
    x = _distinct((2, channels, size, size))
    out = layer(x)
    assert layer.k_inference == k_inference
    per_row = (out != 0).sum(1).flatten() if local else (out != 0).flatten(1).sum(1)
    assert (per_row == k_inference).all()


@pytest.mark.parametrize("boost_strength", [0.0, 1.5])
def test_exactly_k_winners_per_example_with_ties(boost_strength):
    layer = KWinners(200, 0.1, boost_strength=boost_strength)
    out = layer(_tied((64, 200)))
    assert ((out != 0).sum(1) == 20).all()


def test_threshold_mode_lets_ties_exceed_k():
    layer = KWinners(200, 0.1, break_ties=False)  # nupic.torch's default
    counts = (layer(_tied((64, 200))) != 0).sum(1)
    assert (counts >= 20).all() and (counts > 20).any()


def test_k_times_factor_winners_at_evaluation():
    layer = KWinners(200, 0.1, k_inference_factor=1.5).eval()
    out = layer(_distinct((32, 200)).abs() + 0.1)
    assert ((out != 0).sum(1) == 30).all()


def test_winners_keep_their_values_and_losers_get_no_gradient():
    x = _distinct((16, 50)).requires_grad_()
    layer = KWinners(50, 0.2, boost_strength=0.0)
    out = layer(x)
    winners = x.detach().topk(10, dim=1).indices
    expected_on = torch.zeros(16, 50, dtype=torch.bool).scatter_(1, winners, True)
    assert torch.equal(out != 0, expected_on)
    assert torch.equal(out[expected_on], x.detach()[expected_on])
    upstream = _distinct((16, 50), seed=1)
    out.backward(upstream)
    assert torch.equal(x.grad, torch.where(expected_on, upstream, 0.0))


def test_boosting_changes_winners_but_not_their_values():
    x = torch.tensor([[10.0, 9.0, 8.0, 7.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]])
    duty = torch.tensor([1.0, 1.0, 0.0, 0.0, 0, 0, 0, 0, 0, 0])
    # exp(-1) * 10 = 3.7 < 7: with boosting units 2 and 3 win, keeping their own values.
    boosted = kwinners(x, duty, 2, 1.0)
    plain = kwinners(x, duty, 2, 0.0)
    assert torch.equal(plain, torch.tensor([[10.0, 9.0, 0, 0, 0, 0, 0, 0, 0, 0]]))
    assert torch.equal(boosted, torch.tensor([[0, 0, 8.0, 7.0, 0, 0, 0, 0, 0, 0]]))
    # the same through the module, with the duty cycle set in its buffer
    layer = KWinners(10, 0.2, boost_strength=1.0).eval()
    layer.k_inference = 2
    layer.duty_cycle.copy_(duty)
    assert torch.equal(layer(x), boosted)


def test_kwinners_matches_a_brute_force_reference():
    x = _distinct((40, 30))
    duty = torch.rand(30, generator=torch.Generator().manual_seed(1))
    beta = 2.0
    out = kwinners(x, duty, 7, beta)
    boosted = x * torch.exp(-beta * duty)
    order = boosted.argsort(dim=1, descending=True)[:, :7]
    expected = torch.zeros_like(x).scatter_(1, order, x.gather(1, order))
    assert torch.equal(out, expected)


def test_duty_cycle_running_mean_by_hand():
    layer = KWinners(4, 0.5, boost_strength=0.0, duty_cycle_period=3)  # k = 2
    layer(torch.tensor([[4.0, 3, 2, 1], [1, 2, 3, 4]]))  # winners {0,1} and {2,3}
    # learning_iterations 2, period min(3, 2) = 2: duty = (0 * 0 + [1,1,1,1]) / 2
    assert torch.allclose(layer.duty_cycle, torch.tensor([0.5, 0.5, 0.5, 0.5]))
    layer(torch.tensor([[4.0, 3, 2, 1], [4, 3, 2, 1]]))  # winners {0,1} twice
    # learning_iterations 4, period 3: duty = (0.5 * (3 - 2) + [2,2,0,0]) / 3
    assert torch.allclose(layer.duty_cycle, torch.tensor([2.5, 2.5, 0.5, 0.5]) / 3)
    assert layer.learning_iterations.item() == 4


def test_duty_cycle_over_several_batches_matches_the_formula():
    period, batch = 50, 16
    layer = KWinners(30, 0.2, boost_strength=1.0, duty_cycle_period=period)
    duty = torch.zeros(30, dtype=torch.float64)
    seen = 0
    for step in range(8):  # crosses the point where seen > period
        out = layer(_distinct((batch, 30), seed=step))
        seen += batch
        t = min(period, seen)
        duty = (duty * (t - batch) + (out > 0).sum(0).double()) / t
        torch.testing.assert_close(layer.duty_cycle.double(), duty, rtol=1e-5, atol=1e-6)
    assert layer.learning_iterations.item() == seen


def test_duty_cycle_2d_by_hand():
    layer = KWinners2d(2, percent_on=0.5, boost_strength=0.0, duty_cycle_period=10)
    x = torch.tensor([[[[4.0, 3.0]], [[2.0, 1.0]]]])  # (1, 2, 1, 2): global winners are channel 0
    layer(x)
    # channel 0 active at 2 of 2 positions, channel 1 at 0: duty = [1, 0] (period min(10, 1) = 1)
    assert torch.allclose(layer.duty_cycle.view(-1), torch.tensor([1.0, 0.0]))
    layer(torch.tensor([[[[1.0, 4.0]], [[3.0, 2.0]]]]))  # winners: (0, 1) and (1, 0)
    # period 2: duty = ([1, 0] * 1 + [0.5, 0.5]) / 2
    assert torch.allclose(layer.duty_cycle.view(-1), torch.tensor([0.75, 0.25]))


def test_no_update_in_evaluation():
    layer = KWinners(30, 0.2)
    layer(_distinct((8, 30)))
    duty, seen = layer.duty_cycle.clone(), layer.learning_iterations.clone()
    layer.eval()
    layer(_distinct((8, 30), seed=1))
    assert torch.equal(layer.duty_cycle, duty) and torch.equal(layer.learning_iterations, seen)


def test_update_boost_strength():
    layer = KWinners(30, 0.2, boost_strength=1.5, boost_strength_factor=0.85)
    layer.update_boost_strength()
    nn.Sequential(layer).apply(update_boost_strength)
    assert math.isclose(layer.boost_strength.item(), 1.5 * 0.85 ** 2, rel_tol=1e-6)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    layer = KWinners(40, 0.1, boost_strength=1.5, boost_strength_factor=0.85, duty_cycle_period=100)
    for step in range(5):
        layer(_distinct((16, 40), seed=step))
    layer.update_boost_strength()
    state = layer.state_dict()
    assert set(state) == {"duty_cycle", "boost_strength", "learning_iterations"}
    restored = KWinners(40, 0.1, boost_strength=1.5, boost_strength_factor=0.85, duty_cycle_period=100)
    restored.load_state_dict(state)
    for name in state:
        assert torch.equal(getattr(restored, name), getattr(layer, name))
    x = _distinct((16, 40), seed=99)
    assert torch.equal(restored(x), layer(x))  # training: same winners, same duty-cycle update
    assert torch.equal(restored.duty_cycle, layer.duty_cycle)
    restored.eval(), layer.eval()
    assert torch.equal(restored(x), layer(x))


def test_loads_a_nupic_state_dict_without_learning_iterations():
    layer = KWinners(10, 0.2)
    layer.load_state_dict({"duty_cycle": torch.full((10,), 0.2), "boost_strength": torch.tensor(0.5)})
    assert layer.boost_strength.item() == 0.5 and layer.learning_iterations.item() == 0


def test_2d_global_and_local():
    x = _tied((4, 8, 5, 5))  # ties everywhere
    glob = KWinners2d(8, percent_on=0.1)  # k = round(0.1 * 200) = 20 over C*H*W
    out = glob(x)
    assert glob.k == 20 and glob.n == 200
    assert ((out != 0).flatten(1).sum(1) == 20).all()
    local = KWinners2d(8, percent_on=0.25, local=True)  # k = 2 channels per position
    out = local(x)
    assert local.k == 2
    assert ((out != 0).sum(1) == 2).all()
    # local winners are the top channels at each position
    y = _distinct((3, 8, 4, 4))
    out = kwinners2d(y, torch.zeros(1, 8, 1, 1), 2, 0.0, local=True)
    top = y.topk(2, dim=1).indices
    assert torch.equal(out != 0, torch.zeros_like(y, dtype=torch.bool).scatter_(1, top, True))
    out = kwinners2d(y, torch.zeros(1, 8, 1, 1), 10, 0.0, local=False)
    flat = y.flatten(1)
    top = flat.topk(10, dim=1).indices
    assert torch.equal((out != 0).flatten(1), torch.zeros_like(flat, dtype=torch.bool).scatter_(1, top, True))


def test_2d_gradient_and_evaluation_k():
    x = _distinct((2, 4, 3, 3)).requires_grad_()
    layer = KWinners2d(4, percent_on=0.2)  # n = 36: k = round(7.2) = 7, k_inference = round(10.8) = 11
    out = layer(x)
    out.backward(torch.ones_like(out))
    assert torch.equal(x.grad != 0, out.detach() != 0)
    layer.eval()
    assert ((layer(x.detach()) != 0).flatten(1).sum(1) == 11).all()
    x = _distinct((2, 8, 3, 3)).requires_grad_()
    out = KWinners2d(8, percent_on=0.25, local=True)(x)
    upstream = _distinct((2, 8, 3, 3), seed=5)
    out.backward(upstream)
    assert torch.equal(x.grad, torch.where(out.detach() != 0, upstream, 0.0))


def test_relu_and_inplace():
    x = -_distinct((8, 20)).abs() - 0.1  # all negative
    x[:, 0] = 1.0
    assert ((KWinners(20, 0.2, relu=True)(x) != 0).sum(1) == 1).all()
    y = _distinct((8, 20))
    ref = KWinners(20, 0.2)(y.clone())
    out = KWinners(20, 0.2, inplace=True)(y)
    assert out is y and torch.equal(y, ref)


def test_repr_names_nupic_arguments():
    text = repr(KWinners2d(8, 0.1, local=True))
    for part in ("channels=8", "local=True", "percent_on=0.1", "boost_strength=1.0",
                 "boost_strength_factor=0.9", "k_inference_factor=1.5", "duty_cycle_period=1000"):
        assert part in text


@pytest.mark.parametrize("kwargs, name", [
    ({"percent_on": 0.0}, "percent_on=0.0"), ({"percent_on": 1.0}, "percent_on=1.0"),
    ({"percent_on": 1.2}, "percent_on=1.2"), ({"percent_on": 0.5, "k_inference_factor": 2.0},
                                              "k_inference_factor=2.0"),
    ({"k_inference_factor": 0.0}, "k_inference_factor=0.0"), ({"boost_strength": -1.0}, "boost_strength=-1.0"),
    ({"boost_strength_factor": 1.5}, "boost_strength_factor=1.5"), ({"duty_cycle_period": 0}, "duty_cycle_period=0"),
    ({"n": 0}, "n=0"), ({"n": 100, "percent_on": 0.001}, "percent_on=0.001"),
])
def test_bad_arguments_raise(kwargs, name):
    args = {"n": 100, "percent_on": 0.1} | kwargs
    with pytest.raises(ValueError, match="is not allowed") as info:
        KWinners(**args)
    assert str(info.value).startswith(name)


def test_bad_2d_arguments_and_shapes_raise():
    with pytest.raises(ValueError, match="channels=0"):
        KWinners2d(0, 0.1)
    with pytest.raises(ValueError, match="percent_on=0.1"):
        KWinners2d(4, 0.1, local=True)  # round(0.4) = 0 channels
    with pytest.raises(ValueError, match="shape"):
        KWinners2d(4, 0.5)(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        KWinners(10, 0.5)(torch.zeros(2, 11))
