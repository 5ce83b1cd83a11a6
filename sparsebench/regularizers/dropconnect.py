"""DropConnect (Wan et al. 2013): a Bernoulli mask on the weights of hidden layers, scaled in training."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sparsebench import seeds
from sparsebench.errors import check
from sparsebench.nn import DropConnectConv2d, DropConnectLinear
from sparsebench.regularizers.base import (
    REGULARIZERS,
    Regularizer,
    RegularizerConfig,
    applies_to,
)
from sparsebench.schemas import LAYER_KINDS, part

MASKS = ("batch", "sample")
INFERENCES = ("mean", "gaussian")


@dataclass
class DropConnectConfig(RegularizerConfig):
    name: str = part("dropconnect")
    p: float = part(0.5)  # drop probability of a weight
    mask: str = part("batch")  # batch: one mask per mini-batch | sample: one per example
    # Inference: mean (the plain weights) | gaussian (moment matching, as in the paper: `samples` draws
    # of each unit's Gaussian pre-activation go through what follows the weight layer in its block,
    # batch norm and pooling included, and the block's outputs are averaged; the draws are seeded, so
    # evaluation is reproducible and leaves the training masks' random stream alone).
    inference: str = part("mean")
    samples: int = part(100)
    apply_to: str = part("linear")  # hidden layers whose weights are masked: linear, conv or both
    # mask: sample off the C++ kernel (GPU, conv) materialises at most this many bytes of masks at once
    # (capped at 64 MiB). It once refused larger batches; kept, as a part of run ids.
    max_mask_bytes: int = part(1 << 30)

    def __post_init__(self) -> None:
        check(0 <= self.p < 1, "p", self.p, "a drop probability must lie in [0, 1)")
        check(self.mask in MASKS, "mask", self.mask, f"choose one of {', '.join(MASKS)}")
        check(self.inference in INFERENCES, "inference", self.inference, f"choose one of {', '.join(INFERENCES)}")
        check(self.samples > 0, "samples", self.samples, "must be a positive count of draws")
        check(self.apply_to in LAYER_KINDS, "apply_to", self.apply_to, f"choose one of {', '.join(LAYER_KINDS)}")
        check(self.max_mask_bytes > 0, "max_mask_bytes", self.max_mask_bytes, "must be a positive byte count")


@REGULARIZERS.register("dropconnect")
class DropConnect(Regularizer):
    Config = DropConnectConfig

    def weight_layer(self, layer, index):
        shape = (1, 1, 1) if isinstance(layer, nn.Conv2d) else (1,)
        if self.cfg.p == 0 or not applies_to(self.cfg.apply_to, shape):
            return layer
        kind = DropConnectConv2d if isinstance(layer, nn.Conv2d) else DropConnectLinear
        # What follows the layer in its HiddenBlock acts on each Gaussian draw (``then``), so the layer's
        # own activation is never used; each layer seeds its draws apart from the others.
        return kind.from_module(layer, p=self.cfg.p, mask=self.cfg.mask, inference=self.cfg.inference,
                                samples=self.cfg.samples, max_mask_bytes=self.cfg.max_mask_bytes,
                                activation=None, seed=seeds.gaussian_draws(index))
