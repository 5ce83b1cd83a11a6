"""Regularizers, one module each, found by name.

To add one: write ``sparsebench/regularizers/<name>.py`` with a ``Regularizer`` subclass whose
``Config`` dataclass has ``name: str = "<name>"``, and ``conf/regularizer/<name>.yaml``.
"""

from __future__ import annotations

import importlib
import pkgutil

from sparsebench.regularizers.base import Regularizer, RegularizerConfig

REGULARIZERS: dict[str, type[Regularizer]] = {}


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
    for cls in _subclasses(Regularizer):
        REGULARIZERS[cls.Config.name] = cls


def _subclasses(cls: type) -> list[type]:
    return [s for c in cls.__subclasses__() for s in (c, *_subclasses(c))]


def build_regularizer(cfg: RegularizerConfig) -> Regularizer:
    return REGULARIZERS[cfg.name](cfg)


_discover()

__all__ = ["REGULARIZERS", "Regularizer", "RegularizerConfig", "build_regularizer"]
