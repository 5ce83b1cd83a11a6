"""Dropout (Srivastava et al. 2014): inverted dropout after hidden activations, identity at evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from sparsebench.errors import check
from sparsebench.nn import Dropout as DropoutLayer
from sparsebench.nn import Dropout2d
from sparsebench.nn.dropout import RNGS
from sparsebench.regularizers.base import (
    REGULARIZERS,
    Regularizer,
    RegularizerConfig,
    applies_to,
)
from sparsebench.schemas import LAYER_KINDS, part


@dataclass
class DropoutConfig(RegularizerConfig):
    name: str = part("dropout")
    p: float = part(0.5)  # drop probability of a hidden unit
    input_p: float = part(0.0)  # drop probability of an input pixel (0.2 in the dropout paper's MNIST nets)
    # Hidden layers that get dropout: linear (the usual choice for CNNs), conv, or both.
    apply_to: str = part("linear")
    spatial: bool = part(False)  # conv layers drop whole channels (Dropout2d) instead of single units
    # Cap on the L2 norm of each hidden unit's incoming weight vector, enforced after every step
    # (the dropout paper's max-norm constraint); null: no cap.
    max_norm: Optional[float] = part(None)
    # Mask source: fast (cheap exact-law masks from a few random bits per element, ~3x cheaper on the
    # CPU; keep probability resolved to 2**-16, exact for p = 0.5) | torch (torch.nn.Dropout itself).
    rng: str = part("fast")

    def __post_init__(self) -> None:
        for key in ("p", "input_p"):
            value = getattr(self, key)
            check(0 <= value < 1, key, value, "a drop probability must lie in [0, 1)")
        check(self.apply_to in LAYER_KINDS, "apply_to", self.apply_to, f"choose one of {', '.join(LAYER_KINDS)}")
        check(self.max_norm is None or self.max_norm > 0, "max_norm", self.max_norm, "must be > 0 or null")
        check(self.rng in RNGS, "rng", self.rng, f"choose one of {', '.join(RNGS)}")


@REGULARIZERS.register("dropout")
class Dropout(Regularizer):
    Config = DropoutConfig

    def _dropout(self, p: float, spatial: bool) -> nn.Module:
        if self.cfg.rng == "torch":
            return nn.Dropout2d(p) if spatial else nn.Dropout(p)
        return Dropout2d(p) if spatial else DropoutLayer(p)

    def input_layer(self, shape):
        return self._dropout(self.cfg.input_p, spatial=False) if self.cfg.input_p > 0 else nn.Identity()

    def activation(self, shape, index):
        if not applies_to(self.cfg.apply_to, shape) or self.cfg.p == 0:
            return nn.ReLU()
        return nn.Sequential(nn.ReLU(), self._dropout(self.cfg.p, spatial=self.cfg.spatial and len(shape) == 3))

    @torch.no_grad()
    def after_step(self, model, lr):
        if self.cfg.max_norm is None:
            return
        for layer in model.weight_layers(hidden_only=True):
            # Row norms of the weights the layer computes with, written to the parameter it trains; a
            # pruned layer's weight_orig takes its zeros too, which its mask hides anyway.
            layer.trained.copy_(torch.renorm(layer.effective(), p=2, dim=0, maxnorm=self.cfg.max_norm))
