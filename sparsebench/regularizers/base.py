"""The regularizer interface: how a regularization method enters a model and its training.

A model is a stack of weight layers (Linear / Conv2d) with hidden activations between them. For each
hidden layer a regularizer chooses the weight layer and what follows it; it may add a penalty to the
loss and act after every optimizer step and after every epoch. Models call ``input_layer``,
``weight_layer`` and ``activation`` while they are built; the training loop calls ``penalty``,
``after_step`` and ``after_epoch`` and knows nothing else of the method in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from omegaconf import MISSING
from torch import nn

from sparsebench.network import Network
from sparsebench.registry import Registry
from sparsebench.schemas import part


@dataclass
class RegularizerConfig:
    name: str = part(MISSING)


REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer", "regularizer.name")


class Regularizer:
    """The default of every part: plain weight layers, ReLU, no penalty, no hooks.

    Each regularizer subclasses it, sets ``Config`` to its own schema and overrides what differs.

    ``index`` arguments count hidden layers from 0 in the order data flows through them;
    ``shape`` is the per-example shape of a hidden activation: ``(C, H, W)`` after a convolution,
    ``(n,)`` after a linear layer.
    """

    Config: ClassVar[type] = RegularizerConfig
    # Errors this method's layers raise that mean the run cannot go on, as a RunError does: the runner
    # records the run as failed with the error's message (no traceback). Layers of sparsebench.nn know
    # nothing of the app's RunError, so the regularizer that uses them names their errors here.
    run_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, cfg: RegularizerConfig):
        self.cfg = cfg

    def check_model(self, model: Network, batch_size: int) -> None:
        """Reject, with a ConfigError, a built model (or training batch size) this regularizer's
        settings do not fit; called by validation on a model built on the meta device."""

    def input_layer(self, shape: tuple[int, ...]) -> nn.Module:
        """What the input passes through before the first weight layer."""
        return nn.Identity()

    def weight_layer(self, layer: nn.Linear | nn.Conv2d, index: int) -> nn.Module:
        """The weight layer of hidden layer ``index``, given the freshly initialised plain layer.

        Returning a module that reuses ``layer``'s parameters keeps the initial weights identical
        across regularizers for the same seed.
        """
        return layer

    def activation(self, shape: tuple[int, ...], index: int) -> nn.Module:
        """What follows the weight layer (after pooling or normalisation, where the model has them)."""
        return nn.ReLU()

    def penalty(self, model: Network) -> torch.Tensor | None:
        """A term added to the training loss, or None."""
        return None

    def after_step(self, model: Network, lr: float) -> None:
        """Called after every optimizer step, with the learning rate of that step."""

    def after_epoch(self, model: Network) -> None:
        """Called after every training epoch."""


def applies_to(kinds: str, shape: tuple[int, ...]) -> bool:
    """Whether a layer of activation ``shape`` is among ``kinds`` (linear, conv or both)."""
    return kinds == "both" or (kinds == "conv") == (len(shape) == 3)


def weight_matrices(model: Network, include_bias: bool = False) -> list[torch.Tensor]:
    """The weights a penalty acts on, as the layers compute with them (a pruned layer's pruned entries
    are zero and take no gradient): every weight layer's weight, and its bias if asked."""
    return _weights(model, include_bias, lambda layer: layer.effective())


def trained_weights(model: Network, include_bias: bool = False) -> list[nn.Parameter]:
    """The parameters behind :func:`weight_matrices`, the ones the optimizer updates: what after-step
    hooks change in place (a pruned layer's ``weight_orig``; see ``WeightLayer.trained``)."""
    return _weights(model, include_bias, lambda layer: layer.trained)


def _weights(model: Network, include_bias: bool, weight) -> list[torch.Tensor]:
    tensors = []
    for layer in model.weight_layers():
        tensors.append(weight(layer))
        if include_bias and layer.module.bias is not None:
            tensors.append(layer.module.bias)
    return tensors
