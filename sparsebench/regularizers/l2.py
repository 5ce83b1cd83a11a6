"""L2 penalty ``lam * sum w^2`` over the weight matrices, or the same as decoupled weight decay."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsebench.errors import check
from sparsebench.regularizers.base import (
    REGULARIZERS,
    Regularizer,
    RegularizerConfig,
    trained_weights,
    weight_matrices,
)
from sparsebench.schemas import part


@dataclass
class L2Config(RegularizerConfig):
    name: str = part("l2")
    lam: float = part(1e-4)  # penalty strength
    include_bias: bool = part(False)  # penalise biases too
    # Shrink the weights after each optimizer step (w *= 1 - 2 * lr * lam) instead of adding the
    # penalty to the loss. With plain SGD the two updates agree up to a term of order lr^2 * lam;
    # with momentum or Adam the decoupled form keeps the shrinkage out of the optimizer's running
    # statistics (as SGDW / AdamW do), so the effective decay no longer grows with momentum.
    decoupled: bool = part(False)

    def __post_init__(self) -> None:
        check(self.lam >= 0, "lam", self.lam, "the penalty strength must be >= 0")


@REGULARIZERS.register("l2")
class L2(Regularizer):
    Config = L2Config

    def penalty(self, model) -> torch.Tensor | None:
        if self.cfg.decoupled:
            return None
        return self.cfg.lam * sum(w.square().sum() for w in weight_matrices(model, self.cfg.include_bias))

    @torch.no_grad()
    def after_step(self, model, lr: float) -> None:
        if self.cfg.decoupled:
            # The factor 2 is the gradient of lam * w^2, so that lam means the same in both forms.
            torch._foreach_mul_(trained_weights(model, self.cfg.include_bias), 1.0 - 2.0 * lr * self.cfg.lam)
