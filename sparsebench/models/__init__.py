"""Models, one module each, found by name.

A model module defines ``Config`` (its schema, with ``name: str = "<name>"``), ``check_fits(cfg, shape)``
(a ConfigError when the model cannot take images of ``shape``) and
``build(cfg, regularizer, shape, num_classes) -> Network``. Add ``conf/model/<name>.yaml`` beside it.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import torch
from torch import nn

from sparsebench.models.network import HiddenBlock, Network, WeightLayer
from sparsebench.regularizers import Regularizer

MODELS: dict[str, ModuleType] = {}
for _info in pkgutil.iter_modules(__path__):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    if hasattr(_module, "Config") and hasattr(_module, "build"):
        MODELS[_module.Config.name] = _module


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


__all__ = ["MODELS", "HiddenBlock", "Network", "WeightLayer", "build_model", "check_model_fits", "place", "wants_channels_last"]
