"""Fixed sparse connectivity (Ahmad & Scheinkman 2019, "How Can We Be So Dense?", arXiv:1903.11257):
each output unit of a Linear / Conv2d layer is connected to a fixed random subset of its inputs.

:func:`random_connectivity_mask` holds the math; :class:`SparseWeights` and :class:`SparseWeights2d`
wrap a layer (kept at ``.module``), own the mask in the buffer ``zero_mask`` and re-zero the masked
weights on request. Their signatures follow numenta's nupic.torch, so they are drop-ins for its users.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from sparsebench.nn.masks import is_real


def random_connectivity_mask(out_units: int, fan_in: int, density: float,
                             generator: torch.Generator | None = None,
                             device: torch.device | str | None = None) -> torch.Tensor:
    """A bool ``(out_units, fan_in)`` tensor, True where a weight is a structural zero: each row keeps
    exactly ``round(density * fan_in)`` inputs (False), chosen uniformly at random without
    replacement, independently per row.

    Args:
        out_units: number of output units (rows), >= 1.
        fan_in: inputs per output unit (columns), >= 1.
        density: fraction of inputs kept, in [0, 1].
        generator: the random source (default: the global CPU generator, or ``device``'s).
        device: where the mask is drawn and returned (default: the generator's device, else the CPU).
    """
    keep = int(round(density * fan_in))
    if device is None:
        device = generator.device if generator is not None else "cpu"
    scores = torch.rand(out_units, fan_in, generator=generator, device=device)
    kept = scores.argsort(dim=1)[:, :keep]  # a uniformly random subset of size ``keep`` per row
    return torch.ones(out_units, fan_in, dtype=torch.bool, device=device).scatter_(1, kept, False)


class SparseWeightsBase(nn.Module):
    """What :class:`SparseWeights` and :class:`SparseWeights2d` share; see :class:`SparseWeights`."""

    _expected = nn.Module
    _kind = "a module"

    def __init__(self, module: nn.Module, weight_sparsity: float | None = None,
                 sparsity: float | None = None, allow_extremes: bool = False, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(module, self._expected):
            raise ValueError(f"module={type(module).__name__} is not allowed: "
                             f"{type(self).__name__} wraps {self._kind}")
        if sparsity is None and weight_sparsity is None:
            raise ValueError("sparsity=None is not allowed: give sparsity, the fraction of weights "
                             "that are zero, in [0, 1)")
        if sparsity is not None and weight_sparsity is not None:
            raise ValueError(f"weight_sparsity={weight_sparsity!r} is not allowed together with "
                             f"sparsity={sparsity!r}: give only sparsity (the fraction of zeros)")
        if sparsity is None:
            warnings.warn("weight_sparsity (the fraction of weights kept) is deprecated, as in "
                          "nupic.torch: pass sparsity=, the fraction of weights that are zero",
                          DeprecationWarning, stacklevel=3)
            if not is_real(weight_sparsity) or not 0.0 < weight_sparsity <= 1.0:
                raise ValueError(f"weight_sparsity={weight_sparsity!r} is not allowed: the fraction of "
                                 f"weights kept must lie in (0, 1]")
            sparsity = 1.0 - weight_sparsity
        in_range = is_real(sparsity) and (0.0 <= sparsity <= 1.0 if allow_extremes else 0.0 <= sparsity < 1.0)
        if not in_range:
            allowed = "[0, 1] (allow_extremes=True)" if allow_extremes else "[0, 1)"
            raise ValueError(f"sparsity={sparsity!r} is not allowed: the fraction of zero weights "
                             f"must lie in {allowed}")
        self.module = module
        self.sparsity = float(sparsity)
        weight = module.weight
        fan_in = math.prod(weight.shape[1:])
        if weight.is_meta:  # a meta tensor holds no values: drawing the mask (a sort of every row) is wasted
            mask = torch.empty(weight.shape, dtype=torch.bool, device=weight.device)
        else:
            mask = random_connectivity_mask(weight.shape[0], fan_in, 1.0 - self.sparsity,
                                            generator=generator).view(weight.shape).to(weight.device)
        self.register_buffer("zero_mask", mask)
        self.register_load_state_dict_post_hook(_rezero_after_load)
        self.rezero_weights()

    @property
    def weight_sparsity(self) -> float:
        """The fraction of weights kept, ``1 - sparsity`` (nupic.torch's deprecated name)."""
        return 1.0 - self.sparsity

    @property
    def fan_in(self) -> int:
        """Inputs per output unit: ``in_features``, or ``in_channels / groups * kh * kw``."""
        return math.prod(self.zero_mask.shape[1:])

    @property
    def kept_per_unit(self) -> int:
        """Inputs each output unit keeps: ``round((1 - sparsity) * fan_in)``."""
        return int(round((1.0 - self.sparsity) * self.fan_in))

    def _weight_parameter(self) -> torch.Tensor:
        # Under torch.nn.utils.prune the trainable tensor is weight_orig; weight is recomputed from it.
        return getattr(self.module, "weight_orig", self.module.weight)

    @torch.no_grad()
    def rezero_weights(self) -> None:
        """Set the structurally zero weights back to 0 (call after every optimizer step).

        Multiplies the weight by the 0/1 keep mask (20x faster on the CPU than ``masked_fill_``); so a
        negative weight becomes -0.0, and a weight that has diverged to inf or NaN becomes NaN."""
        weight = self._weight_parameter()
        if weight.is_meta:  # no values to zero (a model built only to check its shapes fit)
            return
        keep = (~self.zero_mask).view(torch.uint8)
        weight.mul_(keep.to(weight.dtype))
        if hasattr(self.module, "weight_orig"):
            self.module.weight.mul_(keep.to(weight.dtype))

    def structural_mask(self) -> torch.Tensor:
        """A bool tensor shaped like the weight, True where the weight is a structural zero (a copy)."""
        return self.zero_mask.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def extra_repr(self) -> str:
        return f"sparsity={self.sparsity}"


def _rezero_after_load(module: SparseWeightsBase, incompatible_keys) -> None:
    module.rezero_weights()


class SparseWeights(SparseWeightsBase):
    r"""Fixed sparse connectivity for a ``nn.Linear`` (Ahmad & Scheinkman 2019, arXiv:1903.11257).
    A drop-in for ``nupic.torch.modules.SparseWeights``.

    Each output unit keeps exactly ``round((1 - sparsity) * in_features)`` of its inputs, chosen at
    random when the wrapper is built; the other weights are structural zeros:

    .. math:: y = x\,(W \odot (1 - Z))^\top + b, \qquad Z = \text{zero\_mask}

    The wrapper zeroes them at construction and after ``load_state_dict``; an optimizer step moves
    them (their gradient is not masked), so call :meth:`rezero_weights` after every step, or
    ``model.apply(rezero_weights)``. The wrapped layer stays at ``.module``; the bool buffer
    ``zero_mask`` (True: structural zero, shaped like the weight) is carried by ``state_dict``.

    Args:
        module: the ``nn.Linear`` to sparsify (its weight is modified in place).
        weight_sparsity: deprecated (nupic.torch), the fraction of weights *kept*; pass ``sparsity``.
            It is the second positional argument, as in nupic.torch: ``SparseWeights(layer, 0.3)``
            keeps 30% of the weights; write ``SparseWeights(layer, sparsity=0.7)`` instead.
        sparsity: the fraction of weights that are zero, in [0, 1) (density ``1 - sparsity`` in
            (0, 1]).
        allow_extremes: also allow ``sparsity = 1`` (every weight zero).
        generator: keyword only; a ``torch.Generator`` to draw the mask from, so masks can be seeded
            apart from the global random state (default: the global CPU generator).
    """

    _expected = nn.Linear
    _kind = "an nn.Linear"


class SparseWeights2d(SparseWeightsBase):
    r"""Fixed sparse connectivity for a ``nn.Conv2d`` (Ahmad & Scheinkman 2019, arXiv:1903.11257).
    A drop-in for ``nupic.torch.modules.SparseWeights2d``.

    As :class:`SparseWeights`, with each output channel keeping exactly
    ``round((1 - sparsity) * fan_in)`` of its ``fan_in = in_channels / groups * kh * kw`` weights.
    Arguments as in :class:`SparseWeights`, with ``module`` an ``nn.Conv2d``.
    """

    _expected = nn.Conv2d
    _kind = "an nn.Conv2d"


def rezero_weights(module: nn.Module) -> None:
    """Call :meth:`SparseWeightsBase.rezero_weights` if ``module`` is a sparse-weights wrapper; use as
    ``model.apply(rezero_weights)`` after each optimizer step (as in nupic.torch)."""
    if isinstance(module, SparseWeightsBase):
        module.rezero_weights()


@torch.no_grad()
def normalize_sparse_weights(module: nn.Module) -> None:
    """Re-initialise a sparse-weights wrapper's layer as PyTorch initialises Linear / Conv2d layers
    (Kaiming uniform with ``a = sqrt(5)``, and the bias from ``U(-1/sqrt(fan), 1/sqrt(fan))``), but
    with ``fan`` the number of inputs each unit keeps instead of its full fan-in, then re-zero it.
    Does nothing to other modules; use as ``model.apply(normalize_sparse_weights)`` (as in
    nupic.torch)."""
    if not isinstance(module, SparseWeightsBase):
        return
    fan = max(1, module.kept_per_unit)
    weight = module._weight_parameter()
    bound = math.sqrt(3.0) * nn.init.calculate_gain("leaky_relu", math.sqrt(5)) / math.sqrt(fan)
    weight.uniform_(-bound, bound)
    bias = getattr(module.module, "bias", None)
    if bias is not None:
        bias.uniform_(-1.0 / math.sqrt(fan), 1.0 / math.sqrt(fan))
    module.rezero_weights()
