"""A run's readable name and its chosen settings, from the overrides that made it.

A run folder is named by its hash (``default/2d242791c53f``): stable, but it says nothing to a person.
What a person chose is the command line: ``regularizer=dropout seed=1``. Of those overrides, the ones
that cannot change the run's numbers (``dataset.root=``, ``results_dir=``, ``progress=``, ``logger=``,
``hydra/...``: the fields ``sparsebench.schemas`` declares ``neutral``) say where and how it ran, not
what it is, and are left out. The rest, sorted and joined as Hydra's ``override_dirname`` joins them
(``regularizer=dropout,seed=1``), is the run's name in trackers and in its experiment's index
(``records.index``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sparsebench.identity import result_relevant
from sparsebench.records.paths import flatten

# Identity fields that name the data set's files rather than describe a choice: the data set's name says
# which data, and its content digest is in the run id already.
DATA_CHECKSUMS = ("dataset.files", "dataset.content_md5", "dataset.archive")


def override_key(override: str) -> str:
    """``+regularizer.p=0.3`` -> ``regularizer.p``; ``hydra/launcher=joblib`` -> ``hydra.launcher``."""
    return override.partition("=")[0].lstrip("+~").split("@")[0].replace("/", ".")


def _touches(key: str, keys: Iterable[str]) -> bool:
    return any(k == key or k.startswith(key + ".") for k in keys)


def chosen_overrides(overrides: Iterable[str], config: Mapping) -> list[str]:
    """The overrides that can change the run's numbers, in their order: those that set a part of
    ``config`` (the resolved config, as config.yaml holds it) that its identity includes, and those that
    pick a config group or experiment (``experiment=``, ``profile=``); not Hydra's own (``hydra.*``,
    ``hydra/launcher=``) nor those that only set neutral fields."""
    every = flatten(dict(config), ".")
    relevant = flatten(result_relevant(config), ".")
    kept = []
    for override in overrides:
        key = override_key(override)
        if key == "hydra" or key.startswith("hydra."):
            continue
        if _touches(key, every) and not _touches(key, relevant):
            continue
        kept.append(override)
    return kept


def run_name(overrides: Iterable[str], config: Mapping, run_id: str) -> str:
    """The chosen overrides sorted by key and joined with commas, as Hydra's override_dirname
    (``regularizer=dropout,seed=1``); the run id when there are none (a run of the defaults)."""
    chosen = sorted(chosen_overrides(overrides, config), key=override_key)
    return ",".join(chosen) or run_id


def hyperparameters(overrides: Iterable[str], config: Mapping) -> dict[str, Any]:
    """What a person chose for the run, as trackers take hyperparameters (each value a number, a bool
    or a string; lists and nulls as text), keyed by Hydra override keys: first the chosen overrides
    (a group or experiment choice as typed, ``regularizer``: ``dropout``; a value as the config holds
    it, ``regularizer.p``: 0.3), then every other field of the run's identity (``regularizer.p``, ``train.lr``, ``seed``, ...) but the data set's file
    checksums. Paths, mirrors, devices, threads and trackers are not among them (neutral fields)."""
    every = flatten(dict(config), ".")
    relevant = {key: value for key, value in flatten(result_relevant(config), ".").items()
                if not _touches_any(key, DATA_CHECKSUMS)}
    out: dict[str, Any] = {}
    # The chosen overrides first (a dashboard's first columns), then the rest of the identity.
    for override in chosen_overrides(overrides, config):
        key = override_key(override)
        if key in relevant:
            out[key] = relevant[key]
        elif key not in every and "=" in override:  # a group or experiment choice: not a config value
            out[key] = override.partition("=")[2]
    out.update({key: value for key, value in relevant.items() if key not in out})
    return {key: value if isinstance(value, (bool, int, float, str)) else str(value) for key, value in out.items()}


def _touches_any(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


__all__ = ["DATA_CHECKSUMS", "chosen_overrides", "hyperparameters", "override_key", "run_name"]
