"""L1 penalty: ``lam * sum |w|`` over the weight matrices, added to the loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsebench.errors import check
from sparsebench.regularizers.base import (
    REGULARIZERS,
    Regularizer,
    RegularizerConfig,
    weight_matrices,
)
from sparsebench.schemas import part


@dataclass
class L1Config(RegularizerConfig):
    name: str = part("l1")
    lam: float = part(1e-5)  # penalty strength
    include_bias: bool = part(False)  # penalise biases too

    def __post_init__(self) -> None:
        check(self.lam >= 0, "lam", self.lam, "the penalty strength must be >= 0")


@REGULARIZERS.register("l1")
class L1(Regularizer):
    Config = L1Config

    def penalty(self, model) -> torch.Tensor:
        return self.cfg.lam * sum(w.abs().sum() for w in weight_matrices(model, self.cfg.include_bias))
