"""sparsebench: put published claims about dropout and sparsity to the test."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_run"]


def __getattr__(name: str) -> Any:
    # load_run imports torch: loaded on first use, so that `import sparsebench` (every command's first
    # step) stays light.
    if name == "load_run":
        from sparsebench.loading import load_run

        return load_run
    raise AttributeError(f"module 'sparsebench' has no attribute {name!r}")
