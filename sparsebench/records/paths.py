"""Metric paths of a record: nested dicts flattened to one level with joined keys (``test/accuracy``,
``noise/pixels/score``; config keys with dots, ``regularizer.p``). Shared by the reporter, the trackers and
search objectives; kept apart from ``sparsebench.report`` so that a run does not import pandas and scipy
(3 s here) to name its own numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_number(value: Any) -> bool:
    """A metric's value proper: an int or float, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flatten(tree: Mapping, sep: str, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> one level with joined keys; lists and empty dicts stay values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, sep, name))
        else:
            out[name] = value
    return out
