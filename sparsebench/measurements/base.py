"""What a measurement is, and the registry of them.

A ``Measurement`` is the one home of a group of metrics a run records: its name, when it is enabled
for a config, what it computes from a trained run, and how its metric paths are named for people
(name and unit). The runner runs the enabled ones in order, a search objective may name any path they
write, and the reporter's names come from them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sparsebench.registry import Registry

# A metric's human name: (regular expression over the whole metric path, name template filled from its
# named groups, unit). ``sparsebench.report.names`` explains the template's fields.
Name = tuple[str, str, str]


@dataclass
class Trained:
    """A trained run as every measurement sees it; ``metrics`` holds what earlier measurements wrote."""

    model: Any  # sparsebench.network.Network
    regularizer: Any  # sparsebench.regularizers.Regularizer
    data: Any  # sparsebench.data.DataSplits (a task sequence's: its last task's)
    cfg: Any  # sparsebench.schemas.RunConfig
    fitted: Any  # sparsebench.train.FitResult
    initial: dict  # the weights at initialisation: std, near_zero, profile
    sequence: Any = None  # sparsebench.continual.sequence.SequenceResult of a task sequence
    metrics: dict = field(default_factory=dict)


@contextmanager
def other_weights(model: Any, state: dict) -> Iterator[None]:
    """The model holding ``state`` (a kept epoch's weights) inside the block, its own weights again after,
    however the block ends."""
    own = copy.deepcopy(model.state_dict())
    model.load_state_dict(state)
    try:
        yield
    finally:
        model.load_state_dict(own)


def always(cfg: Any) -> bool:
    return True


@dataclass(frozen=True)
class Measurement:
    name: str  # its part in speed/measure_seconds_by_part
    groups: tuple[str, ...]  # the first parts of the metric paths it writes, in record order
    compute: Callable[[Trained], dict]  # group -> value (a group it cannot measure for this model: absent)
    enabled: Callable[[Any], bool] = always  # for a RunConfig
    names: tuple[Name, ...] = ()
    # Report columns derived from the record's metrics (e.g. a change from initialisation): path -> value.
    derived: Callable[[Mapping], dict] | None = None
    # Groups written only for some configs: group -> when (e.g. validation only with a validation split).
    optional: Mapping[str, Callable[[Any], bool]] = field(default_factory=dict)
    label: str = ""  # what it does, in words, for the log line that says it runs ("noise robustness")

    def groups_for(self, cfg: Any) -> list[str]:
        """The groups a run of ``cfg`` records from this measurement (none when it is disabled)."""
        if not self.enabled(cfg):
            return []
        return [g for g in self.groups if g not in self.optional or self.optional[g](cfg)]


MEASUREMENTS: Registry[Measurement] = Registry("measurement", "measurement")


def measurement(name: str, groups: tuple[str, ...], *, enabled: Callable[[Any], bool] = always,
                names: tuple[Name, ...] = (), derived: Callable[[Mapping], dict] | None = None,
                optional: Mapping[str, Callable[[Any], bool]] | None = None, label: str = ""):
    """Decorator: register the function below as the ``compute`` of a measurement (``label``: what it
    does, in words; its name when not given)."""

    def register(compute: Callable[[Trained], dict]) -> Callable[[Trained], dict]:
        MEASUREMENTS.add(name, Measurement(name, groups, compute, enabled, names, derived, dict(optional or {}),
                                           label or name))
        return compute

    return register


__all__ = ["MEASUREMENTS", "Measurement", "Name", "Trained", "always", "measurement", "other_weights"]
