"""Regularizers, one module each, registered by name in ``REGULARIZERS``.

To add one: write ``sparsebench/regularizers/<name>.py`` with a ``Regularizer`` subclass, decorated
``@REGULARIZERS.register("<name>")``, whose ``Config`` dataclass has ``name: str = part("<name>")``;
import it below; and add ``conf/regularizer/<name>.yaml``.
"""

from __future__ import annotations

from sparsebench.regularizers import (  # noqa: F401 - registered
    dropconnect,
    dropout,
    kwinners,
    l1,
    l2,
    none,
    sparseout,
)
from sparsebench.regularizers.base import REGULARIZERS, Regularizer, RegularizerConfig


def build_regularizer(cfg: RegularizerConfig) -> Regularizer:
    return REGULARIZERS[cfg.name](cfg)


__all__ = ["REGULARIZERS", "Regularizer", "RegularizerConfig", "build_regularizer"]
