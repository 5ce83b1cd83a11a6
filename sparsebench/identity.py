"""A run's identity: the hash of the part of its config that can change its numbers, and of its data.

Which part that is, each schema field declares itself (``sparsebench.schemas``: ``part``,
``neutral``, ``part_unless``); this module only follows those declarations, through nested schemas
and into the schema of the model, regularizer and task sequence a config names. The same config on
the same data always maps to the same run id, which names the run's record folder; a record counts
only where its id says it belongs (``sparsebench.records``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import typing
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sparsebench.data.tasks import SEQUENCES
from sparsebench.models import MODELS
from sparsebench.regularizers import REGULARIZERS
from sparsebench.schemas import IDENTITY, UNLESS, RunConfig, config_tree


def config_hash(tree: Mapping) -> str:
    """A short, stable hash of a config tree (key order does not matter): run ids and group ids."""
    canonical = json.dumps(tree, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _plugin_schemas() -> dict[str, Any]:
    """The registries whose entries own a plug-in group's schema, by the ``plugin`` a field names. A name
    no registry knows (a record of a plug-in since removed) has no schema: its tree is kept whole."""
    return {"model": lambda name: getattr(MODELS.get(name), "Config", None),
            "regularizer": lambda name: getattr(REGULARIZERS.get(name), "Config", None),
            "continual": lambda name: SEQUENCES.get(name)}


PLUGIN_SCHEMAS = _plugin_schemas()


@functools.cache
def _fields(schema: type) -> tuple[tuple[str, dict, Any], ...]:
    """(name, identity metadata, nested schema or None) of each field of ``schema``."""
    hints = typing.get_type_hints(schema)
    out = []
    for f in dataclasses.fields(schema):
        nested = f.metadata.get("schema") or (hints.get(f.name) if dataclasses.is_dataclass(hints.get(f.name)) else None)
        out.append((f.name, dict(f.metadata), nested))
    return tuple(out)


def _keep_relevant(tree: dict, schema: type) -> None:
    """Drop from ``tree`` (in place) what ``schema``'s fields declare neutral, recursively."""
    for name, meta, nested in _fields(schema):
        if name not in tree:
            continue
        decision = meta.get(IDENTITY)
        if decision == "neutral" or (decision == "part_unless" and tree[name] == _defaults(schema)[name]):
            tree.pop(name)
            continue
        value = tree[name]
        if not isinstance(value, dict):
            continue
        if meta.get("plugin"):
            nested = PLUGIN_SCHEMAS[meta["plugin"]](value.get("name"))
        if nested is not None:
            _keep_relevant(value, nested)


@functools.cache
def _defaults(schema: type) -> dict:
    """The "as before" value of each ``part_unless`` field of ``schema``."""
    return {f.name: f.metadata[UNLESS] for f in dataclasses.fields(schema) if f.metadata.get(IDENTITY) == "part_unless"}


def neutral_setting(key: str) -> bool:
    """Whether a dotted setting (``dataset.root``, ``device``) lies under a field the schemas declare neutral:
    one that cannot change a run's numbers. A key under a group chosen by plugin (``regularizer.p``) or unknown
    counts as not neutral."""
    schema: Any = RunConfig
    for part in key.split("."):
        found = next(((meta, nested) for name, meta, nested in _fields(schema) if name == part), None) \
            if schema is not None and dataclasses.is_dataclass(schema) else None
        if found is None:
            return False
        meta, schema = found
        if meta.get(IDENTITY) == "neutral":
            return True
    return False


def result_relevant(cfg: RunConfig | DictConfig | Mapping, data_digest: str | None = None) -> dict:
    """The part of a config that can change a run's numbers, as declared by its schemas' fields, with
    ``data_digest`` (the content digest of the data it runs on) under the key ``data``: what a run's
    identity is hashed from. ``cfg`` is a validated RunConfig, a composed DictConfig, or the ``config``
    of a record (a plain tree, as config.yaml and result.json hold it)."""
    if dataclasses.is_dataclass(cfg):
        tree = config_tree(cfg)
    elif isinstance(cfg, DictConfig):
        tree = OmegaConf.to_container(cfg, resolve=True)
    else:
        tree = json.loads(json.dumps(cfg))
    _keep_relevant(tree, RunConfig)
    if data_digest is not None:
        tree["data"] = data_digest
    return tree


def run_id(cfg: RunConfig | DictConfig | Mapping, data_digest: str | None = None) -> str:
    """The run's id: a short hash of its result-relevant config and its data's digest."""
    return config_hash(result_relevant(cfg, data_digest))


__all__ = ["config_hash", "neutral_setting", "result_relevant", "run_id"]
