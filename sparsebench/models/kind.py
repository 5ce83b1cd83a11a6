"""What a model plug-in provides, and the registry of models.

A model is a module that defines its schema (``Config``), ``check_fits(cfg, shape)`` (a ConfigError when
it cannot take images of ``shape``) and ``build(cfg, regularizer, shape, num_classes) -> Network``, and
registers the three: ``MODELS.add("mlp", ModelKind(Config, check_fits, build))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sparsebench.registry import Registry


@dataclass(frozen=True)
class ModelKind:
    Config: type
    check_fits: Callable
    build: Callable


MODELS: Registry[ModelKind] = Registry("model", "model.name")

__all__ = ["MODELS", "ModelKind"]
