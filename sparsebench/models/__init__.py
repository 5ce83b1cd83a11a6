"""Models, one module each, registered by name in ``MODELS`` (``sparsebench.models.kind``).

A model module defines ``Config`` (its schema, with ``name: str = part("<name>")``), ``check_fits(cfg,
shape)`` (a ConfigError when the model cannot take images of ``shape``) and ``build(cfg, regularizer,
shape, num_classes) -> Network``, and registers them; add it to the imports below and
``conf/model/<name>.yaml`` beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from sparsebench.models import cifar_cnn, mlp, mnist_cnn  # noqa: F401 - each registers itself
from sparsebench.models.kind import MODELS, ModelKind
from sparsebench.network import HiddenBlock, Network, WeightLayer
from sparsebench.regularizers import Regularizer


def check_model_fits(model_cfg, dataset_cfg) -> None:
    MODELS[model_cfg.name].check_fits(model_cfg, tuple(dataset_cfg.shape))


def build_model(model_cfg, regularizer: Regularizer, shape: tuple[int, int, int], num_classes: int) -> Network:
    return MODELS[model_cfg.name].build(model_cfg, regularizer, tuple(shape), num_classes)


def wants_channels_last(model: nn.Module, channels_last: bool | None) -> bool:
    """The channels_last memory format when asked, or by default (None) when ``model`` has
    convolutions, where that format is faster for training and evaluation."""
    return bool(channels_last) or (channels_last is None and any(isinstance(m, nn.Conv2d) for m in model.modules()))


def place(model: Network, device: torch.device, channels_last: bool | None) -> Network:
    """``model`` on ``device``, in the memory format :func:`wants_channels_last` picks."""
    model = model.to(device)
    if wants_channels_last(model, channels_last):
        model = model.to(memory_format=torch.channels_last)
    return model


__all__ = ["MODELS", "HiddenBlock", "ModelKind", "Network", "WeightLayer", "build_model", "check_model_fits", "place", "wants_channels_last"]
