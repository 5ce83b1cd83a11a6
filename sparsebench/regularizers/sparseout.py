"""Sparseout (Khan & Stavness 2019): dropout generalised by a norm exponent q that steers activation
sparsity; q = 2 is dropout."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sparsebench.errors import check
from sparsebench.nn import Sparseout as SparseoutLayer
from sparsebench.regularizers.base import (
    REGULARIZERS,
    Regularizer,
    RegularizerConfig,
    applies_to,
)
from sparsebench.schemas import LAYER_KINDS, part

GRADS = ("reference", "exact")
RNGS = ("fast", "dropout")


@dataclass
class SparseoutConfig(RegularizerConfig):
    name: str = part("sparseout")
    p: float = part(0.5)  # drop probability of the mask
    q: float = part(1.5)  # norm exponent: < 2 sparser activations, 2 is dropout, > 2 denser
    # Gradient: reference (the authors' code: |h|^((q-2)/2) held constant) | exact (plain autograd).
    grad: str = part("reference")
    # Mask source: fast (cheap masks, the same as dropout's rng: fast, so q = 2 trains exactly like
    # regularizer=dropout) | dropout (torch.nn.functional.dropout's own mask, bit for bit).
    rng: str = part("fast")
    apply_to: str = part("linear")  # hidden layers followed by Sparseout: linear, conv or both

    def __post_init__(self) -> None:
        check(0 <= self.p < 1, "p", self.p, "a drop probability must lie in [0, 1)")
        check(self.q > 0, "q", self.q, "the norm exponent q must be > 0")
        check(self.grad in GRADS, "grad", self.grad, f"choose one of {', '.join(GRADS)}")
        check(self.rng in RNGS, "rng", self.rng, f"choose one of {', '.join(RNGS)}")
        check(self.apply_to in LAYER_KINDS, "apply_to", self.apply_to, f"choose one of {', '.join(LAYER_KINDS)}")


@REGULARIZERS.register("sparseout")
class Sparseout(Regularizer):
    Config = SparseoutConfig

    def activation(self, shape, index):
        if self.cfg.p == 0 or not applies_to(self.cfg.apply_to, shape):
            return nn.ReLU()
        return nn.Sequential(nn.ReLU(), SparseoutLayer(self.cfg.p, self.cfg.q, self.cfg.grad, self.cfg.rng))
