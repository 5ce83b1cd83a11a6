"""The shape every model shares: an input stage, hidden blocks, and an output layer.

Measurements, pruning and penalties reach a model's parts only through ``Network.hidden_blocks`` and
``Network.weight_layers``, so they work the same on every model and with every regularizer.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn


class HiddenBlock(nn.Sequential):
    """One hidden layer: its weight layer, then optional normalisation and pooling, then its activation.

    The block's output is the hidden activation that activation-sparsity measurements look at.

    A weight layer that infers by averaging over Gaussian draws of its pre-activation (DropConnect's
    moment matching, Wan et al. 2013) says so with ``averages_gaussian_draws`` and takes what follows
    it as ``then``: every draw goes through the rest of the block (normalisation, pooling,
    activation) and the block's outputs are averaged.
    """

    def __init__(self, weight: nn.Module, activation: nn.Module, norm: nn.Module | None = None,
                 pool: nn.Module | None = None):
        parts = OrderedDict(weight=weight)
        if norm is not None:
            parts["norm"] = norm
        if pool is not None:
            parts["pool"] = pool
        parts["activation"] = activation
        super().__init__(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if getattr(weight, "averages_gaussian_draws", False):
            return weight(x, then=self._after_weight)
        return super().forward(x)

    def _after_weight(self, x: torch.Tensor) -> torch.Tensor:
        for name, part in self.named_children():
            if name != "weight":
                x = part(x)
        return x


@dataclass
class WeightLayer:
    name: str  # "hidden1", ..., "output"
    module: nn.Module  # the Linear / Conv2d that owns ``weight`` (inside any wrapper)
    structural_mask: torch.Tensor | None  # True where a weight is fixed at zero by sparse connectivity

    # torch.nn.utils.prune turns ``weight`` into a plain tensor that a forward pre-hook recomputes as
    # ``weight_orig * weight_mask`` before every forward: the optimizer trains ``weight_orig``, a write
    # to ``weight`` is lost at the next forward, and ``weight`` lags one optimizer step behind until then.

    @property
    def trained(self) -> nn.Parameter:
        """The parameter the optimizer updates for this layer's weight, which after-step hooks
        (max-norm, decoupled decay) must change: ``weight_orig`` while the layer is pruned, else ``weight``."""
        return getattr(self.module, "weight_orig", self.module.weight)

    def effective(self) -> torch.Tensor:
        """The weight the layer computes with, from the current parameter (pruned entries zero, and no
        gradient through them): ``weight_orig * weight_mask`` while pruned, else ``weight`` itself."""
        if hasattr(self.module, "weight_orig"):
            return self.module.weight_orig * self.module.weight_mask
        return self.module.weight


def _unwrap(layer: nn.Module) -> tuple[nn.Module, torch.Tensor | None]:
    # Wrappers such as SparseWeights keep the wrapped layer as ``module`` and know their fixed zeros.
    mask = layer.structural_mask() if hasattr(layer, "structural_mask") else None
    while not hasattr(layer, "weight") and hasattr(layer, "module"):
        layer = layer.module
    return layer, mask


class Network(nn.Sequential):
    """A feed-forward classifier: ``input``, ``hidden1`` ... ``hiddenN`` (with any pooling or
    flattening modules between them) and ``output``."""

    def hidden_blocks(self) -> list[tuple[str, HiddenBlock]]:
        return [(name, m) for name, m in self.named_children() if isinstance(m, HiddenBlock)]

    def weight_layers(self, hidden_only: bool = False) -> list[WeightLayer]:
        layers = [(name, block.weight) for name, block in self.hidden_blocks()]
        if not hidden_only:
            layers.append(("output", self.output))
        return [WeightLayer(name, *_unwrap(layer)) for name, layer in layers]


def assemble(input_layer: nn.Module, parts: list[tuple[str, nn.Module]], output: nn.Linear) -> Network:
    """A Network from its input stage, its named middle parts in order, and its output layer."""
    return Network(OrderedDict([("input", input_layer), *parts, ("output", output)]))
