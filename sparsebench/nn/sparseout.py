"""Sparseout (Khan & Stavness 2019, "Sparseout: Controlling Sparsity in Deep Networks",
arXiv:1904.08050): dropout whose noise scales with ``|h|^(q/2)``, so the expected penalty it induces is
an L_q norm of the activations instead of dropout's L_2.

The function :func:`sparseout` holds the math and takes every piece of state as an argument; the
module :class:`Sparseout` is the drop-in layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sparsebench.nn.masks import (
    check_drop_probability,
    is_real,
    keep_probability,
    scaled_keep_mask,
)

GRADS = ("reference", "exact")
RNGS = ("dropout", "fast")


def _check(p: float, q: float, grad: str, rng: str) -> None:
    check_drop_probability(p)
    if not is_real(q) or not 0.0 < q < float("inf"):
        raise ValueError(f"q={q!r} is not allowed: the norm exponent q must be a finite number > 0")
    if grad not in GRADS:
        raise ValueError(f"grad={grad!r} is not allowed: choose 'reference' (the authors' gradient) "
                         f"or 'exact' (autograd of the formula)")
    if rng not in RNGS:
        raise ValueError(f"rng={rng!r} is not allowed: choose 'dropout' (the random stream of "
                         f"torch.nn.functional.dropout) or 'fast' (16-bit masks)")


def _zero_floor(dtype: torch.dtype, exponent: float, largest_scale_minus_one: float) -> float:
    """The floor on ``|h|`` in ``max(|h|, floor)^((q-2)/2) * min(|h| / floor, 1)``, the form
    ``|h|^((q-2)/2)`` is computed in: the smallest normal number of ``dtype``, raised where needed so
    that the factor times ``M - 1`` stays finite."""
    info = torch.finfo(dtype)
    floor = info.tiny
    if exponent < 0 and largest_scale_minus_one > 0:
        # |h|**exponent <= floor**exponent <= info.max / (4 * (M - 1))
        floor = max(floor, (info.max / (4.0 * largest_scale_minus_one)) ** (1.0 / exponent))
    return floor


_RAND_REPRODUCES_DROPOUT: dict[torch.dtype, bool] = {}


def _rand_reproduces_dropout(dtype: torch.dtype) -> bool:
    """Whether, on the CPU, ``torch.rand(..., float64) < 1 - p`` draws the very mask (and leaves the
    generator in the very state) that ``torch.nn.functional.dropout`` does. It does wherever dropout
    samples with ``bernoulli_`` one double per element (PyTorch's default CPU kernel), at half the
    cost. Checked once per dtype, on a saved and restored random state."""
    if dtype not in _RAND_REPRODUCES_DROPOUT:
        with torch.random.fork_rng(devices=[]):
            ones = torch.ones(4099, dtype=dtype)
            torch.manual_seed(20190419)
            expected = F.dropout(ones, 0.3, True)
            after_dropout = torch.rand(3)
            torch.manual_seed(20190419)
            got = _rand_scaled_mask(ones, 0.3)
            after_ours = torch.rand(3)
        same = torch.equal(expected, got) and torch.equal(after_dropout, after_ours)
        _RAND_REPRODUCES_DROPOUT[dtype] = same
    return _RAND_REPRODUCES_DROPOUT[dtype]


def _rand_scaled_mask(h: torch.Tensor, p: float) -> torch.Tensor:
    mask = torch.empty_like(h)
    torch.lt(torch.rand(h.shape, dtype=torch.float64, device=h.device), 1.0 - p, out=mask)
    return mask.div_(1.0 - p)  # as dropout scales its noise


def _dropout_scaled_mask(h: torch.Tensor, p: float) -> torch.Tensor:
    """``M = m / (1 - p)``, drawn exactly as ``torch.nn.functional.dropout(h, p, True)`` draws it: the
    same values and the same random numbers consumed (``h * M`` is that dropout, bit for bit)."""
    if h.device.type == "cpu" and _rand_reproduces_dropout(h.dtype):
        return _rand_scaled_mask(h, p)
    return F.dropout(torch.ones_like(h), p, True, inplace=True)


def _power_(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """``x ** exponent`` for positive ``x``, in place. Exponents -1/4 and -3/4 (q = 1.5 and 0.5) go
    through sqrt and rsqrt, several times cheaper on the CPU than the general ``pow``."""
    if exponent == -0.25:
        return x.sqrt_().rsqrt_()
    if exponent == -0.75:
        return x.rsqrt().mul_(x.sqrt_().rsqrt_())
    return x.pow_(exponent)


class _SparseoutNoise(torch.autograd.Function):
    """``h * noise`` with ``noise = 1 + |h|^((q-2)/2) * (M - 1)`` and a choice of backward."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, mask_minus_one: torch.Tensor, q: float, exact: bool, floor: float):
        if q == 2.0:
            noise = mask_minus_one.add_(1.0)
        else:
            # |h|^((q-2)/2) as max(|h|, floor)^((q-2)/2) * min(|h| / floor, 1): finite, and 0 at h = 0,
            # where the noise term is taken as flat (see Sparseout).
            magnitude = h.detach().abs()
            factor = _power_(magnitude.clamp_min(floor), (q - 2.0) / 2.0)
            factor.mul_(magnitude.clamp_max_(floor).mul_(1.0 / floor))
            noise = factor.mul_(mask_minus_one).add_(1.0)
        ctx.save_for_backward(noise)
        ctx.q, ctx.exact = q, exact
        return h * noise

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (noise,) = ctx.saved_tensors
        if ctx.exact and ctx.q != 2.0:
            # d/dh [h (1 + |h|^e (M-1))] = 1 + (1 + e) |h|^e (M-1) = 1 + (q/2) (noise - 1)
            half_q = ctx.q / 2.0
            grad = grad_output * (noise * half_q + (1.0 - half_q))
        else:
            grad = grad_output * noise
        return grad, None, None, None, None


def sparseout(h: torch.Tensor, p: float = 0.5, q: float = 2.0, training: bool = True,
              grad: str = "reference", rng: str = "dropout") -> torch.Tensor:
    """Sparseout of ``h``; see :class:`Sparseout` for the formula and the arguments.

    Identity when ``training`` is False or ``p`` is 0.
    """
    _check(p, q, grad, rng)
    if not training or p == 0.0:
        return h
    if rng == "dropout":
        scaled_mask = _dropout_scaled_mask(h, p)  # dropout's own mask, from the same random numbers
        if q == 2.0:
            return h * scaled_mask
        mask_minus_one = scaled_mask.sub_(1.0)
        largest = 1.0 / (1.0 - p) - 1.0
    else:
        if q == 2.0:
            return h * scaled_keep_mask(h.shape, p, dtype=h.dtype, device=h.device)
        mask_minus_one = scaled_keep_mask(h.shape, p, dtype=h.dtype, device=h.device, minus_one=True)
        largest = 1.0 / keep_probability(p) - 1.0
    floor = _zero_floor(h.dtype, (q - 2.0) / 2.0, largest)
    return _SparseoutNoise.apply(h, mask_minus_one, float(q), grad == "exact", floor)


class Sparseout(nn.Module):
    r"""Sparseout (Khan & Stavness 2019, arXiv:1904.08050), a drop-in for ``nn.Dropout``.

    In training, every element of the input ``h`` becomes

    .. math::
        h' = h + \operatorname{sign}(h)\,|h|^{q/2}\,(M - 1), \qquad M = m / (1 - p),\;
        m \sim \mathrm{Bernoulli}(1 - p)

    computed as ``h * (1 + |h|^((q-2)/2) * (M - 1))``, the reference code's form. ``E[h'] = h`` and
    ``Var[h'] = p / (1 - p) * |h|^q``. With ``q = 2`` this is inverted dropout; with ``rng='dropout'``
    it returns what ``torch.nn.functional.dropout(h, p, True)`` returns, bit for bit, from the same
    random numbers (and, with any ``q``, uses dropout's mask). At evaluation (``module.eval()``) the
    layer is the identity.

    Gradient (``grad``):
      * ``'reference'`` (default): the gradient of the authors' code (github najeebkhan/sparseout,
        ``SparseoutLayer.backward`` returns ``grad_output * noise``), which treats the factor
        ``|h|^((q-2)/2)`` as a constant: ``dh'/dh = 1 + (M - 1) |h|^((q-2)/2)``. It is the default
        because the paper's numbers come from that code.
      * ``'exact'``: the derivative of the formula, ``dh'/dh = 1 + (M - 1) (q/2) |h|^((q-2)/2)``.
        The two agree for ``q = 2``; elsewhere their noise terms ``dh'/dh - 1`` differ by the factor
        ``q/2``.

    At ``h = 0`` (exact zeros are everywhere after a ReLU) the noise term is zero and, for ``q < 2``,
    the factor ``|h|^((q-2)/2)`` is infinite. The factor is computed as
    ``max(|h|, floor)^((q-2)/2) * min(|h| / floor, 1)`` with ``floor`` the smallest normal number of
    the input's dtype (raised for extreme ``p`` with tiny ``q`` so that every product stays finite):
    it equals ``|h|^((q-2)/2)`` for ``|h| >= floor``, is 0 at ``h = 0`` and finite everywhere. So, in both modes, ``dh'/dh = 1`` at ``h = 0`` for ``q != 2``
    (the true derivative for ``q > 2``; for ``q < 2`` the noise term is taken as flat there) and ``M``
    for ``q = 2`` (dropout's), and no output or gradient is ever NaN or infinite. A ReLU in front
    passes no gradient at 0 anyway. The reference code instead adds 1e-12 to ``|h|``, which gives a
    gradient of ``1 + 1e-12**((q-2)/2) (M - 1)`` at zero, about ``1 +- 1000`` for ``q = 1.5``.

    Args:
        p: drop probability, in [0, 1) (0 makes the layer the identity).
        q: the norm exponent, > 0. ``q < 2`` pushes activations towards sparsity, ``q = 2`` is
           dropout, ``q > 2`` pushes them away from it.
        grad: ``'reference'`` (default) or ``'exact'``, see above.
        rng: how the mask ``m`` is drawn. ``'dropout'`` (default): exactly as
           ``torch.nn.functional.dropout`` draws it, the same mask from the same random numbers. On
           the CPU that is one double per element (``torch.rand`` in float64 compared with ``1 - p``,
           which reproduces dropout's ``bernoulli_`` at half its cost; checked at first use, else
           dropout itself is called). ``'fast'``: from 1 to 16 random bits per element
           (:mod:`sparsebench.nn.masks`), 5 to 20 times cheaper on the CPU, with the keep
           probability rounded to a multiple of ``2**-16`` (exact for p = 0.5, 0.25, 0.75) and ``M``
           scaled by the inverse of that realised probability.
    """

    stochastic = True  # random in training mode, deterministic in evaluation mode (see sparsebench.nn)

    def __init__(self, p: float = 0.5, q: float = 2.0, grad: str = "reference", rng: str = "dropout"):
        super().__init__()
        _check(p, q, grad, rng)
        self.p, self.q, self.grad, self.rng = float(p), float(q), grad, rng

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return sparseout(h, self.p, self.q, self.training, self.grad, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}, q={self.q}, grad={self.grad!r}, rng={self.rng!r}"
