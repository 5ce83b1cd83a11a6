"""k-winners-take-all activations with boosting (Ahmad & Scheinkman 2019, "How Can We Be So Dense?
The Benefits of Using Highly Sparse Representations", arXiv:1903.11257).

Stateless functions (:func:`kwinners`, :func:`kwinners2d`, :func:`boost_activations`,
:func:`update_duty_cycle_`) hold the math and take every piece of state as an argument; the modules
:class:`KWinners` and :class:`KWinners2d` own that state in registered buffers (``duty_cycle``,
``boost_strength``, ``learning_iterations``), so ``state_dict()`` carries it. Constructor arguments,
buffer names and methods follow numenta's nupic.torch, so the modules are drop-ins for its users.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sparsebench.nn.masks import is_int, is_real


def boost_activations(x: torch.Tensor, duty_cycles: torch.Tensor,
                      boost_strength: float | torch.Tensor) -> torch.Tensor:
    r"""The values that winners are ranked by: ``x * exp(-boost_strength * duty_cycles)``, detached.

    The paper's boost factor is ``exp(boost_strength * (target_density - duty_cycles))``; it differs
    from the one here by the positive constant ``exp(boost_strength * target_density)``, which does not
    change any ranking. Boosting only ranks: the winners keep their unboosted values.

    Args:
        x: activity, ``(batch, n)`` or ``(batch, C, H, W)``.
        duty_cycles: each unit's recent frequency of being active, broadcastable to ``x``
            (``(n,)`` or ``(1, C, 1, 1)``), values in [0, 1].
        boost_strength: ``beta >= 0``, a float or a 0-d tensor (a tensor never forces a host sync).
    """
    if not isinstance(boost_strength, torch.Tensor) and boost_strength == 0.0:
        return x.detach()
    return x.detach() * torch.exp(duty_cycles * -boost_strength)


_KEY_TYPES = {torch.float32: (torch.int32, 0x7FFFFFFF), torch.float64: (torch.int64, 0x7FFFFFFFFFFFFFFF),
              torch.float16: (torch.int16, 0x7FFF), torch.bfloat16: (torch.int16, 0x7FFF)}


def _ranking_key(values: torch.Tensor) -> torch.Tensor:
    """Integers ordered as the floats ``values`` are (``-0.0`` just below ``0.0``); ``topk`` on them is
    about 1.5x faster on the CPU than on the floats. Other dtypes are returned as they are."""
    if values.dtype not in _KEY_TYPES:
        return values
    int_type, magnitude_bits = _KEY_TYPES[values.dtype]
    bits = values.view(int_type)
    # Negative floats order backwards as integers: flip their magnitude bits.
    return bits ^ ((bits >> (bits.element_size() * 8 - 1)) & magnitude_bits)


class _KeepWinners(torch.autograd.Function):
    """Rows of ``x`` with only the entries at ``indices`` kept (and, with ``relu``, only those > 0);
    the gradient flows through the kept entries only. Saves just the indices."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, indices: torch.Tensor, relu: bool):
        values = rows.gather(1, indices)
        gate = None
        if relu:
            gate = values > 0
            values = values * gate
        ctx.save_for_backward(indices, gate)
        ctx.relu = relu
        return torch.zeros_like(rows).scatter_(1, indices, values)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        indices, gate = ctx.saved_tensors
        grad = grad_output.gather(1, indices)
        if ctx.relu:
            grad = grad * gate
        return torch.zeros_like(grad_output).scatter_(1, indices, grad), None, None


def _winners(rows: torch.Tensor, boosted: torch.Tensor, k: int, break_ties: bool, relu: bool) -> torch.Tensor:
    """k-winners-take-all along dim 1 of the 2-d ``rows``, ranked by ``boosted`` (same shape)."""
    if break_ties:
        indices = _ranking_key(boosted).topk(k, dim=1, sorted=False).indices
        return _KeepWinners.apply(rows, indices, relu)
    # nupic.torch's faster mode: a threshold at the k-th largest value; ties with it all win.
    threshold = boosted.topk(k, dim=1, sorted=False).values.amin(dim=1, keepdim=True)
    off = boosted < threshold
    if relu:
        off |= boosted <= 0
    return rows.masked_fill(off, 0)


def _finish(x: torch.Tensor, out: torch.Tensor, inplace: bool) -> torch.Tensor:
    return x.copy_(out) if inplace else out


def kwinners(x: torch.Tensor, duty_cycles: torch.Tensor, k: int, boost_strength: float | torch.Tensor,
             break_ties: bool = True, relu: bool = False, inplace: bool = False) -> torch.Tensor:
    """k-winners-take-all over dim 1 of ``x`` (``(batch, n)``): the ``k`` units with the largest
    boosted values (:func:`boost_activations`) keep their value ``x``, the others become 0. Autograd
    passes the gradient through the winners only.

    Args:
        x: activity, ``(batch, n)``.
        duty_cycles: ``(n,)``, each unit's duty cycle.
        k: winners per example, ``1 <= k <= n``.
        boost_strength: ``beta >= 0`` (float or 0-d tensor).
        break_ties: True: exactly ``k`` winners per example (``topk``), ties broken arbitrarily.
            False: every unit whose boosted value reaches the k-th largest wins, so ties give more than
            ``k`` winners (nupic.torch's default).
        relu: also zero every unit whose value is <= 0, as a ReLU in front would (then at most k win).
        inplace: also write the result into ``x`` and return ``x`` (for nupic.torch compatibility; it
            saves no memory).
    """
    out = _winners(x, boost_activations(x, duty_cycles, boost_strength), k, break_ties, relu)
    return _finish(x, out, inplace)


def kwinners2d(x: torch.Tensor, duty_cycles: torch.Tensor, k: int, boost_strength: float | torch.Tensor,
               local: bool = True, break_ties: bool = True, relu: bool = False,
               inplace: bool = False) -> torch.Tensor:
    """k-winners-take-all for ``(batch, C, H, W)`` activity.

    ``local=True``: ``k`` winners among the ``C`` channels at each position (``1 <= k <= C``).
    ``local=False``: ``k`` winners among all ``C*H*W`` units of each example (``1 <= k <= C*H*W``).
    ``duty_cycles`` is ``(1, C, 1, 1)``; the other arguments are as in :func:`kwinners` (the default
    ``local=True`` follows nupic.torch's function; the module :class:`KWinners2d` defaults to global).
    """
    boosted = boost_activations(x, duty_cycles, boost_strength)
    batch, channels, height, width = x.shape
    if local:
        # (B, C, H, W) -> (B*H*W, C): one row of channels per position.
        rows = x.permute(0, 2, 3, 1).reshape(-1, channels)
        ranked = boosted.permute(0, 2, 3, 1).reshape(-1, channels)
        out = _winners(rows, ranked, k, break_ties, relu)
        out = out.view(batch, height, width, channels).permute(0, 3, 1, 2)
    else:
        out = _winners(x.reshape(batch, -1), boosted.reshape(batch, -1), k, break_ties, relu).view(x.shape)
    return _finish(x, out, inplace)


@torch.no_grad()
def update_duty_cycle_(duty_cycle: torch.Tensor, learning_iterations: torch.Tensor, output: torch.Tensor,
                       duty_cycle_period: int) -> None:
    r"""Fold one training batch into the running duty cycles, in place (nupic.torch's rule).

    With ``B`` the batch size, ``learning_iterations += B``, ``T = min(duty_cycle_period,
    learning_iterations)`` and ``a`` the number of examples in which a unit's output is > 0:

    .. math:: \text{duty} \leftarrow \frac{\text{duty}\,(T - B) + a}{T}

    so the duty cycle is the plain mean over all examples seen while fewer than ``duty_cycle_period``
    have been, then an exponential running mean over about ``duty_cycle_period`` examples. For
    ``(batch, C, H, W)`` outputs ``a`` is averaged over the ``H*W`` positions of each channel. (When
    ``duty_cycle_period < B``, where nupic's rule leaves [0, 1], ``T`` is raised to ``B``: the duty
    cycle becomes the batch mean.) Only tensor operations: no host sync.

    Args:
        duty_cycle: ``(n,)`` or ``(1, C, 1, 1)`` float tensor, updated in place.
        learning_iterations: 0-d integer tensor, examples seen so far, updated in place.
        output: the layer's output for the batch, ``(batch, n)`` or ``(batch, C, H, W)``.
        duty_cycle_period: ``>= 1``, the number of examples the running mean spans.
    """
    batch = output.shape[0]
    if batch == 0:
        return
    learning_iterations.add_(batch)
    period = learning_iterations.clamp(max=max(duty_cycle_period, batch))
    active = output.gt(0)
    if output.dim() == 4:
        counts = active.sum(dim=(0, 2, 3), dtype=duty_cycle.dtype).div_(output.shape[2] * output.shape[3])
        counts = counts.view(duty_cycle.shape)
    else:
        counts = active.sum(dim=0, dtype=duty_cycle.dtype)
    duty_cycle.mul_(period - batch).add_(counts).div_(period)


def _binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of Bernoulli(p), 0 at p = 0 and p = 1."""
    p = p.clamp(0.0, 1.0)
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)) / math.log(2.0)


def _check_count(name: str, value) -> None:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")


class KWinnersBase(nn.Module):
    """What :class:`KWinners` and :class:`KWinners2d` share: validation, the boost strength and the
    duty-cycle bookkeeping. See :class:`KWinners` for the arguments."""

    def __init__(self, percent_on: float, k_inference_factor: float = 1.0, boost_strength: float = 1.0,
                 boost_strength_factor: float = 1.0, duty_cycle_period: int = 1000,
                 break_ties: bool = True, relu: bool = False, inplace: bool = False):
        super().__init__()
        if not is_real(percent_on) or not 0.0 < percent_on < 1.0:
            raise ValueError(f"percent_on={percent_on!r} is not allowed: the fraction of winners must "
                             f"lie in (0, 1)")
        if not is_real(k_inference_factor) or not k_inference_factor > 0.0:
            raise ValueError(f"k_inference_factor={k_inference_factor!r} is not allowed: it must be > 0")
        if not percent_on * k_inference_factor < 1.0:
            raise ValueError(f"k_inference_factor={k_inference_factor!r} is not allowed with "
                             f"percent_on={percent_on!r}: percent_on * k_inference_factor must be < 1")
        if not is_real(boost_strength) or not 0.0 <= boost_strength < math.inf:
            raise ValueError(f"boost_strength={boost_strength!r} is not allowed: it must be a finite "
                             f"number >= 0 (0: no boosting)")
        if not is_real(boost_strength_factor) or not 0.0 <= boost_strength_factor <= 1.0:
            raise ValueError(f"boost_strength_factor={boost_strength_factor!r} is not allowed: it must "
                             f"lie in [0, 1]")
        _check_count("duty_cycle_period", duty_cycle_period)
        self.percent_on = float(percent_on)
        self.k_inference_factor = float(k_inference_factor)
        self.percent_on_inference = self.percent_on * self.k_inference_factor
        self.boost_strength_factor = float(boost_strength_factor)
        self.duty_cycle_period = int(duty_cycle_period)
        self.break_ties, self.relu, self.inplace = bool(break_ties), bool(relu), bool(inplace)
        self.n = 0
        self.k = 0
        self.k_inference = 0
        self.register_buffer("boost_strength", torch.tensor(float(boost_strength), dtype=torch.float))
        self.register_buffer("learning_iterations", torch.tensor(0, dtype=torch.long))

    def _winner_counts(self, n: int, k_inference: int) -> tuple[int, int]:
        """``k = round(percent_on * n)`` for ``n`` competing units, checked, with ``k_inference``
        (capped at ``n``), which each class computes as nupic.torch does."""
        k = int(round(self.percent_on * n))
        if k < 1:
            raise ValueError(f"percent_on={self.percent_on!r} is not allowed for {n} competing units: "
                             f"round(percent_on * {n}) = 0 winners; raise percent_on to at least "
                             f"{0.5 / n:.3g}")
        k_inference = min(n, k_inference)
        if k_inference < 1:
            raise ValueError(f"k_inference_factor={self.k_inference_factor!r} is not allowed with "
                             f"k={k}: it leaves 0 winners at evaluation")
        return k, k_inference

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # nupic.torch checkpoints have no learning_iterations; keep ours, as nupic itself would.
        state_dict.setdefault(prefix + "learning_iterations", self.learning_iterations.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def update_boost_strength(self) -> None:
        """Multiply the boost strength by ``boost_strength_factor`` (call after each epoch)."""
        self.boost_strength.mul_(self.boost_strength_factor)

    def update_duty_cycle(self, x: torch.Tensor) -> None:
        """Fold the output ``x`` of one training batch into ``duty_cycle`` (see
        :func:`update_duty_cycle_`)."""
        update_duty_cycle_(self.duty_cycle, self.learning_iterations, x, self.duty_cycle_period)

    def entropy(self) -> torch.Tensor:
        """The summed binary entropy (bits) of the units' duty cycles (per channel for 2d, scaled to
        all ``n`` units)."""
        entropy = _binary_entropy(self.duty_cycle).sum()
        return entropy * (self.n / self.duty_cycle.numel()) if self.n else entropy

    def max_entropy(self) -> float:
        """The largest :meth:`entropy` possible with ``k`` of ``n`` units active: ``n * H(k / n)``."""
        n = self.n
        if n == 0:
            return 0.0
        return float(n * _binary_entropy(torch.tensor(self.k / n, dtype=torch.float64)))

    def extra_repr(self) -> str:
        # The boost strength is a float32 buffer: shown to float32's precision (1.4, not 1.399999976...).
        text = (f"n={self.n}, percent_on={self.percent_on}, boost_strength={float(f'{float(self.boost_strength):.6g}')}, "
                f"boost_strength_factor={self.boost_strength_factor}, "
                f"k_inference_factor={self.k_inference_factor}, duty_cycle_period={self.duty_cycle_period}, "
                f"break_ties={self.break_ties}")
        if self.relu:
            text += ", relu=True"
        if self.inplace:
            text += ", inplace=True"
        return text


class KWinners(KWinnersBase):
    r"""k-winners-take-all with boosting for ``(batch, n)`` activity (Ahmad & Scheinkman 2019, "How
    Can We Be So Dense?", arXiv:1903.11257), used in place of a ReLU. A drop-in for
    ``nupic.torch.modules.KWinners``.

    For each example the ``k = round(percent_on * n)`` units with the largest boosted values

    .. math:: b_i = x_i \, e^{-\beta\, d_i}

    (``beta`` the boost strength, ``d`` the duty cycles) output ``x_i``; all others output 0, and the
    gradient flows through the winners only. In training exactly ``k`` units win (with the default
    ``break_ties=True``) and the duty cycles are updated (:func:`update_duty_cycle_`): ``d`` is a
    running mean over about ``duty_cycle_period`` examples of ``output > 0``. At evaluation
    ``k_inference`` units win, boosting still applies and nothing is
    updated (``k_inference = int(k * k_inference_factor)``, truncated, as nupic.torch's KWinners
    computes it). :meth:`update_boost_strength` multiplies ``beta`` by ``boost_strength_factor``; call it
    after each epoch. The paper used ``boost_strength=1.5``, ``boost_strength_factor=0.85``,
    ``k_inference_factor=1.5``, ``duty_cycle_period=1000``.

    Buffers (carried by ``state_dict``): ``duty_cycle`` ``(n,)``, ``boost_strength`` (0-d float),
    ``learning_iterations`` (0-d int, examples seen in training).

    Args:
        n: number of units, an integer >= 1.
        percent_on: fraction of units that win in training, in (0, 1); ``round(percent_on * n)`` must
            be >= 1.
        k_inference_factor: > 0, multiplies ``k`` at evaluation; ``percent_on * k_inference_factor``
            must be < 1.
        boost_strength: ``beta`` at the start, a finite number >= 0 (0: no boosting).
        boost_strength_factor: in [0, 1], multiplies ``beta`` at each :meth:`update_boost_strength`.
        duty_cycle_period: integer >= 1, the number of examples the duty-cycle running mean spans
            (it should be at least the batch size).
        break_ties: True (default): exactly ``k`` winners per example. False: nupic.torch's default,
            a threshold at the k-th largest boosted value, so ties can give more than ``k`` winners.
        relu: if True, units with value <= 0 never win (as with a ReLU in front).
        inplace: if True, also write the output into the input tensor (nupic.torch compatibility; it
            saves no memory).
    """

    def __init__(self, n: int, percent_on: float, k_inference_factor: float = 1.5,
                 boost_strength: float = 1.0, boost_strength_factor: float = 0.9,
                 duty_cycle_period: int = 1000, break_ties: bool = True, relu: bool = False,
                 inplace: bool = False):
        super().__init__(percent_on=percent_on, k_inference_factor=k_inference_factor,
                         boost_strength=boost_strength, boost_strength_factor=boost_strength_factor,
                         duty_cycle_period=duty_cycle_period, break_ties=break_ties, relu=relu,
                         inplace=inplace)
        _check_count("n", n)
        self.n = int(n)
        # nupic.torch's KWinners truncates: int(k * k_inference_factor) (k = 5, factor 1.5: 7).
        self.k, self.k_inference = self._winner_counts(
            self.n, int(int(round(self.n * self.percent_on)) * self.k_inference_factor))
        self.register_buffer("duty_cycle", torch.zeros(self.n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.n:
            raise ValueError(f"KWinners(n={self.n}) needs input of shape (batch, {self.n}), "
                             f"got {tuple(x.shape)}")
        k = self.k if self.training else self.k_inference
        out = kwinners(x, self.duty_cycle, k, self.boost_strength, self.break_ties, self.relu,
                       self.inplace)
        if self.training:
            self.update_duty_cycle(out)
        return out


class KWinners2d(KWinnersBase):
    r"""k-winners-take-all with boosting for ``(batch, C, H, W)`` activity (Ahmad & Scheinkman 2019,
    arXiv:1903.11257). A drop-in for ``nupic.torch.modules.KWinners2d``.

    As :class:`KWinners`, with units competing either globally (default, ``local=False``): the
    ``k = round(percent_on * C*H*W)`` largest boosted units of each example win, ``k`` computed from
    each input's shape; or locally (``local=True``): the ``k = round(percent_on * C)`` largest boosted
    channels win at each of the ``H*W`` positions. Duty cycles are per channel, ``(1, C, 1, 1)``: the
    fraction of an example's positions at which the channel is active, averaged over examples.
    At evaluation ``k_inference = round(n * percent_on * k_inference_factor)`` (``n`` the competing
    units: ``C*H*W``, or ``C`` with ``local``), rounded from the unit count as nupic.torch's
    KWinners2d does.

    Buffers: ``duty_cycle`` ``(1, C, 1, 1)``, ``boost_strength``, ``learning_iterations``.

    Args:
        channels: number of channels ``C``, an integer >= 1.
        percent_on: fraction of winners, in (0, 1) (default 0.1, as nupic.torch).
        k_inference_factor, boost_strength, boost_strength_factor, duty_cycle_period, break_ties,
        relu, inplace: as in :class:`KWinners`.
        local: False (default): compete over all ``C*H*W`` units; True: over channels at each position.
    """

    def __init__(self, channels: int, percent_on: float = 0.1, k_inference_factor: float = 1.5,
                 boost_strength: float = 1.0, boost_strength_factor: float = 0.9,
                 duty_cycle_period: int = 1000, local: bool = False, break_ties: bool = True,
                 relu: bool = False, inplace: bool = False):
        super().__init__(percent_on=percent_on, k_inference_factor=k_inference_factor,
                         boost_strength=boost_strength, boost_strength_factor=boost_strength_factor,
                         duty_cycle_period=duty_cycle_period, break_ties=break_ties, relu=relu,
                         inplace=inplace)
        _check_count("channels", channels)
        self.channels = int(channels)
        self.local = bool(local)
        if self.local:
            self.k, self.k_inference = self._winner_counts(self.channels, self._k_inference_2d(self.channels))
        self.register_buffer("duty_cycle", torch.zeros((1, self.channels, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"KWinners2d(channels={self.channels}) needs input of shape "
                             f"(batch, {self.channels}, H, W), got {tuple(x.shape)}")
        n = x.shape[1] * x.shape[2] * x.shape[3]
        if n != self.n:
            self.n = n
            if not self.local:
                self.k, self.k_inference = self._winner_counts(n, self._k_inference_2d(n))
        k = self.k if self.training else self.k_inference
        out = kwinners2d(x, self.duty_cycle, k, self.boost_strength, self.local, self.break_ties,
                         self.relu, self.inplace)
        if self.training:
            self.update_duty_cycle(out)
        return out

    def _k_inference_2d(self, n: int) -> int:
        # nupic.torch's KWinners2d rounds from the unit count: round(n * percent_on * k_inference_factor).
        return int(round(n * self.percent_on_inference))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, local={self.local}, {super().extra_repr()}"


def update_boost_strength(module: nn.Module) -> None:
    """Call :meth:`KWinnersBase.update_boost_strength` if ``module`` is a k-winners layer; use as
    ``model.apply(update_boost_strength)`` after each epoch (as in nupic.torch)."""
    if isinstance(module, KWinnersBase):
        module.update_boost_strength()
