"""Sparseout: h' = h + sign(h) |h|^(q/2) (M - 1), M = m / (1 - p), m ~ Bernoulli(1 - p)."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
import torch.nn.functional as F

from sparsebench.nn import Sparseout, sparseout
from sparsebench.nn.masks import keep_probability

sparseout_module = importlib.import_module("sparsebench.nn.sparseout")


def _inputs(shape=(64, 50), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g)


@pytest.fixture(params=["rand", "dropout_call"])
def mask_path(request, monkeypatch):
    """Both ways of drawing dropout's mask: float64 torch.rand (where it reproduces dropout, checked at
    first use) and a call to dropout itself (the fallback)."""
    if request.param == "dropout_call":
        for dtype in (torch.float32, torch.float64, torch.float16):
            monkeypatch.setitem(sparseout_module._RAND_REPRODUCES_DROPOUT, dtype, False)
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.8])
def test_q2_is_dropout_bit_for_bit(p, dtype, mask_path):
    h = _inputs().relu().to(dtype).requires_grad_()
    h2 = h.detach().clone().requires_grad_()
    torch.manual_seed(11)
    expected = F.dropout(h, p, training=True)
    torch.manual_seed(11)
    got = Sparseout(p, q=2.0)(h2)
    assert torch.equal(got, expected)
    upstream = _inputs(seed=1).to(dtype)
    expected.backward(upstream)
    got.backward(upstream)
    assert torch.equal(h2.grad, h.grad)


def test_the_random_state_after_sparseout_is_the_one_after_dropout(mask_path):
    h = _inputs()
    torch.manual_seed(12)
    F.dropout(h, 0.3, training=True)
    after_dropout = torch.rand(5)
    torch.manual_seed(12)
    sparseout(h, 0.3, 1.5)
    assert torch.equal(torch.rand(5), after_dropout)


@pytest.mark.parametrize("q", [0.5, 1.5, 3.0])
def test_mask_is_dropouts_mask_and_output_is_the_formula(q, mask_path):
    p = 0.3
    h = _inputs()
    torch.manual_seed(5)
    scaled = F.dropout(torch.ones_like(h), p, training=True)  # M as dropout draws it
    torch.manual_seed(5)
    got = sparseout(h, p, q)
    expected = h + h.sign() * h.abs() ** (q / 2) * (scaled - 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rng", ["dropout", "fast"])
@pytest.mark.parametrize("q", [1.0, 1.5, 3.0])
def test_monte_carlo_mean_is_h_and_variance_is_p_over_1_minus_p_abs_h_to_the_q(q, rng):
    p = 0.3
    n = 40_000  # draws per element
    row = torch.cat([torch.linspace(-2, 2, 20, dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)])
    torch.manual_seed(3)
    out = sparseout(row.expand(n, -1).contiguous(), p, q, rng=rng)
    keep = 1 - p if rng == "dropout" else keep_probability(p)
    r = (1 - keep) / keep  # Var[M - 1] = p / (1 - p)
    # M - 1 is -1 with probability 1 - keep and r otherwise; its fourth central moment:
    mu4 = (1 - keep) * 1.0 + keep * r ** 4
    s = row.abs() ** (q / 2)  # h' - h = sign(h) s (M - 1)
    var = r * s ** 2
    se_mean = (var / n).sqrt()
    se_var = s ** 2 * math.sqrt((mu4 - r ** 2) / n)
    assert ((out.mean(0) - row).abs() <= 5 * se_mean + 1e-12).all()
    assert ((out.var(0) - var).abs() <= 5 * se_var + 1e-12).all()
    assert torch.equal(out[:, -1], torch.zeros(n, dtype=torch.float64))  # h = 0 stays 0


def test_identity_in_evaluation():
    h = _inputs()
    layer = Sparseout(0.5, q=1.5).eval()
    assert layer(h) is h
    assert sparseout(h, 0.5, 1.5, training=False) is h
    assert sparseout(h, 0.0, 1.5) is h


@pytest.mark.parametrize("q", [0.5, 1.5, 2.0, 3.0])
def test_reference_and_exact_gradients(q):
    p = 0.5
    h = _inputs(seed=4).double()  # no exact zeros
    torch.manual_seed(8)
    scaled = F.dropout(torch.ones_like(h), p, training=True)
    grads = {}
    for grad in ("reference", "exact"):
        x = h.clone().requires_grad_()
        torch.manual_seed(8)
        sparseout(x, p, q, grad=grad).sum().backward()
        grads[grad] = x.grad
    factor = h.abs() ** ((q - 2) / 2)
    # reference: the factor |h|^((q-2)/2) treated as a constant
    torch.testing.assert_close(grads["reference"], 1 + (scaled - 1) * factor)
    # exact: plain autograd of the formula, with the same mask
    x = h.clone().requires_grad_()
    (x + x.sign() * x.abs() ** (q / 2) * (scaled - 1)).sum().backward()
    torch.testing.assert_close(grads["exact"], x.grad)
    # their noise terms differ by the factor q / 2 (and coincide for q = 2)
    torch.testing.assert_close(grads["exact"] - 1, (q / 2) * (grads["reference"] - 1))
    if q == 2.0:
        assert torch.equal(grads["exact"], grads["reference"])


@pytest.mark.parametrize("rng", ["dropout", "fast"])
@pytest.mark.parametrize("grad", ["reference", "exact"])
@pytest.mark.parametrize("q", [0.1, 0.5, 1.0, 1.5])
@pytest.mark.parametrize("p", [0.5, 0.9, 0.999])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_no_nan_or_inf_at_zero_or_tiny_values(p, q, grad, rng, dtype):
    h = _inputs((32, 40)).relu()  # half exact zeros
    tiny = torch.finfo(dtype).tiny
    h[0, :10] = torch.tensor([tiny / 8, tiny / 2, tiny, 2 * tiny, 1e-30, -1e-30, 1e-3, -tiny / 4, 0.0, -0.0])
    h = h.to(dtype).requires_grad_()
    torch.manual_seed(0)
    out = sparseout(h, p, q, grad=grad, rng=rng)
    out.backward(torch.ones_like(out))
    assert torch.isfinite(out).all() and torch.isfinite(h.grad).all()
    zero = h.detach() == 0
    assert (out[zero] == 0).all()
    assert (h.grad[zero] == 1).all()  # the noise term is flat at h = 0 for q != 2


def test_gradient_at_zero_for_q2_is_dropouts():
    h = torch.zeros(10, 10, requires_grad=True)
    torch.manual_seed(0)
    sparseout(h, 0.5, 2.0).sum().backward()
    torch.manual_seed(0)
    mask = F.dropout(torch.ones(10, 10), 0.5, training=True)  # dropout's scaled mask: 0 or 2
    assert torch.equal(h.grad, mask) and set(mask.unique().tolist()) == {0.0, 2.0}


def test_fast_rng_q2_is_inverted_dropout_with_its_own_mask():
    h = _inputs((200, 100))
    torch.manual_seed(2)
    out = sparseout(h, 0.5, 2.0, rng="fast")
    ratio = out / h
    assert set(ratio.unique().tolist()) <= {0.0, 2.0}
    dropped = (ratio == 0).double().mean().item()
    assert abs(dropped - 0.5) < 5 * math.sqrt(0.25 / h.numel())


@pytest.mark.parametrize("kwargs, name", [
    ({"p": 1.5}, "p=1.5"), ({"p": 1.0}, "p=1.0"), ({"p": -0.1}, "p=-0.1"), ({"q": 0.0}, "q=0.0"),
    ({"q": -1.0}, "q=-1.0"), ({"q": math.inf}, "q=inf"), ({"grad": "autograd"}, "grad='autograd'"),
    ({"rng": "cuda"}, "rng='cuda'"),
])
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match="is not allowed") as info:
        Sparseout(**kwargs)
    assert str(info.value).startswith(name)
    assert "\n" not in str(info.value)


def test_module_repr_and_defaults():
    layer = Sparseout()
    assert (layer.p, layer.q, layer.grad, layer.rng) == (0.5, 2.0, "reference", "dropout")
    assert "q=2.0" in repr(layer)
