"""k-winners (Ahmad & Scheinkman 2019, "How can we be so dense?"): k-winners-take-all activations with
boosting instead of ReLU, and optionally fixed sparse connectivity of the hidden linear layers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sparsebench import seeds
from sparsebench.errors import ConfigError, check
from sparsebench.nn import KWinners as KWinnersLayer
from sparsebench.nn import (
    KWinners2d,
    SparseWeights,
    SparseWeights2d,
    rezero_weights,
    update_boost_strength,
)
from sparsebench.regularizers.base import (
    REGULARIZERS,
    Regularizer,
    RegularizerConfig,
    applies_to,
)
from sparsebench.schemas import LAYER_KINDS, part


@dataclass
class KWinnersConfig(RegularizerConfig):
    name: str = part("kwinners")
    # Share of units that win, per hidden layer in the order data flows (one entry: every layer).
    # k = round(percent_on * n), n = C*H*W after a conv block (or C with local: true). 1.0: that layer
    # keeps a plain ReLU (the k-winners paper's convention for its dense layers, "k = n").
    percent_on: list[float] = part(factory=lambda: [0.1])
    k_inference_factor: float = part(1.5)  # k is multiplied by this at evaluation
    boost_strength: float = part(1.5)  # beta: winners are ranked on x * exp(-beta * duty_cycle)
    boost_strength_factor: float = part(0.85)  # beta is multiplied by this after each epoch
    duty_cycle_period: int = part(1000)  # samples in the running mean of each unit's duty cycle
    local: bool = part(False)  # conv layers: winners per spatial position instead of over C*H*W
    apply_to: str = part("both")  # hidden layers whose ReLU becomes k-winners: linear, conv or both
    # Fixed sparse connectivity (SparseWeights): the share of inputs each unit keeps, in hidden
    # linear layers and in conv layers; 1.0: dense. The paper: 0.3 for linear, dense convolutions.
    weight_density: float = part(1.0)
    conv_weight_density: float = part(1.0)

    def __post_init__(self) -> None:
        check(len(self.percent_on) > 0 and all(0 < p <= 1 for p in self.percent_on), "percent_on",
              list(self.percent_on), "every entry must lie in (0, 1] (1: a plain ReLU layer)")
        check(self.k_inference_factor > 0, "k_inference_factor", self.k_inference_factor, "must be > 0")
        check(all(p * self.k_inference_factor < 1 for p in self.percent_on if p < 1), "k_inference_factor",
              self.k_inference_factor, f"percent_on x k_inference_factor must stay below 1 (percent_on "
              f"{list(self.percent_on)})", "lower it or percent_on")
        check(self.boost_strength >= 0, "boost_strength", self.boost_strength, "must be >= 0")
        check(0 < self.boost_strength_factor <= 1, "boost_strength_factor", self.boost_strength_factor,
              "must lie in (0, 1]")
        check(self.duty_cycle_period > 0, "duty_cycle_period", self.duty_cycle_period, "must be a positive count")
        check(self.apply_to in LAYER_KINDS, "apply_to", self.apply_to, f"choose one of {', '.join(LAYER_KINDS)}")
        for key in ("weight_density", "conv_weight_density"):
            value = getattr(self, key)
            check(0 < value <= 1, key, value, "a density must lie in (0, 1] (1: dense)")


@REGULARIZERS.register("kwinners")
class KWinners(Regularizer):
    Config = KWinnersConfig

    def check_model(self, model, batch_size):
        layers, values = len(model.hidden_blocks()), list(self.cfg.percent_on)
        if len(values) not in (1, layers):
            raise ConfigError("regularizer.percent_on", values,
                              f"needs one entry per hidden layer ({layers} in this model) or a single entry for all")

    def _percent_on(self, index: int) -> float:
        values = self.cfg.percent_on
        return values[0] if len(values) == 1 else values[min(index, len(values) - 1)]

    def weight_layer(self, layer, index):
        conv = isinstance(layer, nn.Conv2d)
        density = self.cfg.conv_weight_density if conv else self.cfg.weight_density
        if density >= 1:
            return layer
        # A generator of its own keeps the masks from shifting the initial weights of later layers.
        generator = torch.Generator().manual_seed(seeds.weight_mask(torch.initial_seed(), index))
        wrapper = SparseWeights2d if conv else SparseWeights
        return wrapper(layer, sparsity=1.0 - density, generator=generator)

    def activation(self, shape, index):
        if not applies_to(self.cfg.apply_to, shape) or self._percent_on(index) >= 1:
            return nn.ReLU()
        args = dict(percent_on=self._percent_on(index), k_inference_factor=self.cfg.k_inference_factor,
                    boost_strength=self.cfg.boost_strength, boost_strength_factor=self.cfg.boost_strength_factor,
                    duty_cycle_period=self.cfg.duty_cycle_period)
        if len(shape) == 3:
            return KWinners2d(shape[0], local=self.cfg.local, **args)
        return KWinnersLayer(shape[0], **args)

    def after_step(self, model, lr):
        if self.cfg.weight_density < 1 or self.cfg.conv_weight_density < 1:
            model.apply(rezero_weights)

    def after_epoch(self, model):
        model.apply(update_boost_strength)
