"""Composed configs, from Hydra to typed dataclasses: the schemas and resolvers registered with Hydra,
and validation of a composed config, field by field and across groups, before any work starts.

The schemas themselves live in ``sparsebench.schemas`` (the ground floor); this module sits above the
plug-ins (models, regularizers, task sequences, trackers) because it registers their schemas and
checks that they fit together, e.g. by building the model on the meta device.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sparsebench.data.files import FORMATS
from sparsebench.data.tasks import SEQUENCES
from sparsebench.errors import ConfigError, SparsebenchError, check
from sparsebench.metrics.noise import NOISE_KINDS
from sparsebench.models import MODELS, build_model, check_model_fits
from sparsebench.objective import check_objective
from sparsebench.regularizers import REGULARIZERS, build_regularizer
from sparsebench.schemas import (
    GROUP_SCHEMAS,
    AugmentConfig,
    ConvergenceConfig,
    DatasetConfig,
    RunConfig,
    TuneConfig,
    config_tree,
)
from sparsebench.trackers import TRACKERS, check_trackers


def package_dir(relative: str) -> str:
    """The absolute path of a folder inside the installed sparsebench package (the ``package_dir`` resolver)."""
    return str(Path(__file__).resolve().parent / relative)


def register() -> None:
    """Make the schemas and resolvers known to Hydra and OmegaConf (idempotent); call before composing."""
    if not OmegaConf.has_resolver("package_dir"):
        OmegaConf.register_new_resolver("package_dir", package_dir)

    _store(None, "run_schema", RunConfig)
    for group, schema in GROUP_SCHEMAS.items():
        _store(f"schema/{group}", group, schema)
    for name, model in MODELS.items():
        _store("schema/model", name, model.Config)
    for name, regularizer in REGULARIZERS.items():
        _store("schema/regularizer", name, regularizer.Config)
    for name, sequence in SEQUENCES.items():
        _store("schema/continual", name, sequence)
    _store("schema/tune", "tune", TuneConfig)
    for name, tracker in TRACKERS.items():
        _store("schema/logger", name, tracker.Config)


_STORED: dict[tuple[str | None, str], type] = {}  # what register() has put in Hydra's ConfigStore


def _store(group: str | None, name: str, schema: type) -> None:
    """Put ``schema`` in Hydra's ConfigStore unless it is there already: storing converts the dataclass to
    an OmegaConf node (about 50 ms for all of them), and a plan initialises Hydra several times."""
    if _STORED.get((group, name)) is not schema:
        ConfigStore.instance().store(group=group, name=name, node=schema)
        _STORED[(group, name)] = schema


def _unknown_keys(node: Any, schema: type, prefix: str, what: str) -> None:
    """Refuse keys that ``schema`` does not have (added with ``+key=...``, which Hydra allows, and
    which would otherwise be ignored without a word)."""
    if not isinstance(node, DictConfig):
        return
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in node.keys():
        if key not in fields:
            raise ConfigError(f"{prefix}.{key}", OmegaConf.select(node, str(key)),
                              f"{what} has no such setting; its settings are {', '.join(fields)}",
                              "check the spelling (a setting cannot be added)")
        # Field types are strings here (postponed annotations): the nested schemas by name.
        nested = {"AugmentConfig": AugmentConfig, "ConvergenceConfig": ConvergenceConfig}.get(str(fields[key].type))
        if nested is not None:
            _unknown_keys(node[key], nested, f"{prefix}.{key}", f"{prefix}.{key}")


def _to_object(node: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.to_object(node)
    except ConfigError as error:
        raise error.under(key) from None


# Top-level settings that validation checks only through the run config's own checks (RunConfig.__post_init__,
# which dataclasses.replace runs again) and that no other check reads: a sweep's jobs that differ only in
# these are validated once (sweep.validate_multirun). A check that reads one of them elsewhere must take it
# out of here.
SELF_CHECKED = ("seed",)


def validate(cfg: DictConfig) -> RunConfig:
    """Check every value of a composed config and return it as typed dataclasses.

    Raises ConfigError naming the full key, the value and what is allowed.
    """

    for key, registry, kind in (("model", MODELS, "model"), ("regularizer", REGULARIZERS, "regularizer")):
        name = OmegaConf.select(cfg, f"{key}.name")
        check(name in registry, f"{key}.name", name, f"choose a {kind} among {', '.join(sorted(registry))}")
    schemas = {"dataset": DatasetConfig, **GROUP_SCHEMAS, "model": MODELS[cfg.model.name].Config,
               "regularizer": REGULARIZERS[cfg.regularizer.name].Config}
    for key, schema in schemas.items():
        what = f"{key} {cfg[key].name}" if key in ("model", "regularizer") else key
        _unknown_keys(cfg[key], schema, key, what)
    parts = {key: _to_object(cfg[key], key) for key in ("dataset", "model", "regularizer", *GROUP_SCHEMAS)}
    parts["logger"] = _to_object(cfg.logger, "logger") if cfg.get("logger") else {}
    parts["continual"] = _continual(cfg.get("continual"))
    parts["tune"] = _to_object(cfg.tune, "tune") if cfg.get("tune") else None
    parts["axes"] = OmegaConf.to_container(cfg.axes, resolve=True) if cfg.get("axes") else {}
    parts["map_axes"] = OmegaConf.to_container(cfg.map_axes, resolve=True) if cfg.get("map_axes") else {}
    top = {f.name: cfg[f.name] for f in dataclasses.fields(RunConfig) if f.name not in parts}
    return _checked(RunConfig(**top, **parts))


def _checked(run: RunConfig) -> RunConfig:
    """``run`` after the checks that read more than one field or group (and the model built on the meta
    device); raises ConfigError naming the setting."""
    check(all(kind in NOISE_KINDS for kind in run.eval.noise), "eval.noise", list(run.eval.noise),
          f"entries must be among {', '.join(NOISE_KINDS)} ([] turns noise off)")
    check(run.dataset.format in FORMATS, "dataset.format", run.dataset.format, f"choose one of {', '.join(FORMATS)}")
    _finite(run, "")

    check_trackers(run.logger)
    check_objective(run)

    check(run.train.select != "best_val" or run.dataset.val_size > 0, "train.select", run.train.select,
          "best_val needs a validation split", "set dataset.val_size (e.g. dataset.val_size=5000)")
    check(not run.eval.early_stop or run.dataset.val_size > 0, "eval.early_stop", run.eval.early_stop,
          "early stopping needs a validation split", "set dataset.val_size (e.g. dataset.val_size=5000), "
          "or eval.early_stop=false")
    check_model_fits(run.model, run.dataset)
    if run.continual is not None:
        try:
            run.continual.check_fits(run.dataset)
        except ConfigError as error:
            raise error.under("continual") from None
    _check_model_builds(run.model, run.regularizer, tuple(run.dataset.shape), run.dataset.num_classes,
                        max(run.train.batch_size, run.train.first_epoch_batch_size or 0))
    return run


def with_settings(config: RunConfig, settings: Mapping[str, Any]) -> RunConfig:
    """``config`` with some settings changed (dotted keys: ``train.lr``, ``regularizer.p``), checked again as
    a composed config is: what Hydra gives for the same command with those overrides added, without
    composing it again (a tuning trial is its arm's run with a few settings changed; composing each one
    costs 10x more). A setting that an interpolation of the config files reads would differ:
    ``claims.plan.deriver`` compares one derived config per experiment with Hydra's own."""
    groups: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in settings.items():
        group, dot, rest = key.partition(".")
        if not dot and type(value) in (str, int, float, bool) and type(getattr(config, key, None)) is type(value):
            top[key] = value  # a top-level scalar of its field's type: nothing for OmegaConf to convert
        else:
            groups.setdefault(group if dot and rest != "name" else "", {})[rest if dot else key] = value
    if "" in groups or not all(dataclasses.is_dataclass(getattr(config, group, None)) for group in groups):
        # Another top-level setting or a changed model or regularizer kind: the whole config again.
        return validate(_updated(OmegaConf.structured(config), settings))
    # Only the changed groups go through OmegaConf (its type checks and the group's own __post_init__):
    # rebuilding the whole config costs ~90 ms, and the paper profile's tuning plan derives ~100 of them.
    changed = {group: _group_with(getattr(config, group), group, values) for group, values in groups.items()}
    return _checked(dataclasses.replace(config, **changed, **top))


# (a group's settings, the changes) -> the group after them, checked; the oldest dropped past _KEPT (a
# long-lived process, a notebook or a search, makes ever new ones).
_GROUPS_CHANGED: dict[str, Any] = {}
_KEPT = 4096
_SCALARS = (str, int, float, bool)


@functools.cache
def _init_fields(schema: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(schema) if f.init)


def _group_with(part: Any, group: str, values: dict[str, Any]) -> Any:
    """The group's settings ``part`` with ``values`` changed, as OmegaConf converts and checks them. The
    trials of a plan change the same few settings of the same groups (no pruning, no noise) over and over."""
    if all(name in _init_fields(type(part)) and type(value) in _SCALARS and type(getattr(part, name)) is type(value)
           and not (isinstance(value, str) and ("${" in value or value == "???")) for name, value in values.items()):
        # Each a field's own scalar type, which OmegaConf passes as it is (text it would read as an interpolation
        # or as missing aside): only the group's checks to run again (dataclasses.replace runs __post_init__),
        # 20 us in place of 2 ms.
        try:
            return dataclasses.replace(part, **values)
        except ConfigError as error:
            raise error.under(group) from None
    key = json.dumps([_type_name(part), config_tree(part), group, values], sort_keys=True, default=str)
    if key not in _GROUPS_CHANGED:
        if len(_GROUPS_CHANGED) >= _KEPT:
            del _GROUPS_CHANGED[next(iter(_GROUPS_CHANGED))]
        _GROUPS_CHANGED[key] = _to_object(_updated(OmegaConf.structured(part), values, group), group)
    return copy.deepcopy(_GROUPS_CHANGED[key])


def _updated(node: DictConfig, settings: Mapping[str, Any], prefix: str = "") -> DictConfig:
    for key, value in settings.items():
        try:
            OmegaConf.update(node, key, value, merge=False)
        except OmegaConfBaseException as error:
            name = f"{prefix}.{key}" if prefix else key
            raise ConfigError(name, value,
                              f"is not a setting that can be changed here ({type(error).__name__})") from None
    return node


# The model settings that built without complaint: a sweep's jobs (seeds, rates) mostly share one model,
# and building it, even on the meta device, is the slow part of validating a job.
_BUILDS_CHECKED: set[str] = set()


def _check_model_builds(model_cfg: Any, regularizer_cfg: Any, shape: tuple[int, ...], num_classes: int,
                        batch_size: int) -> None:
    """Build the model on the meta device (no memory, no arithmetic) to catch any mismatch between the
    model and the regularizer, e.g. a per-layer list of the wrong length, before any work."""
    key = json.dumps([_type_name(model_cfg), config_tree(model_cfg), _type_name(regularizer_cfg),
                      config_tree(regularizer_cfg), shape, num_classes, batch_size], sort_keys=True, default=str)
    if key in _BUILDS_CHECKED:
        return
    regularizer = build_regularizer(regularizer_cfg)
    try:
        with torch.device("meta"):
            model = build_model(model_cfg, regularizer, shape, num_classes)
    except ValueError as error:  # a layer refusing its arguments (sparsebench.nn): name the setting
        text = str(error)
        field = text.partition("=")[0]
        known = {f.name for f in dataclasses.fields(type(regularizer_cfg))}
        raise SparsebenchError(f"regularizer.{text}" if field in known else
                               f"the model cannot be built with these settings: {text}") from None
    regularizer.check_model(model, batch_size)
    _BUILDS_CHECKED.add(key)


def _type_name(instance: Any) -> str:
    return f"{type(instance).__module__}.{type(instance).__qualname__}"


def _finite(node: Any, key: str) -> None:
    """Refuse NaN and infinities anywhere in a run's settings (dataset.mean=[nan] and regularizer.lam=inf
    compose and check out, then only make a failed record), but where a field says
    ``metadata={"nonfinite": True}``."""
    if dataclasses.is_dataclass(node):
        for item in dataclasses.fields(node):
            if not item.metadata.get("nonfinite"):
                _finite(getattr(node, item.name), f"{key}.{item.name}" if key else item.name)
    elif isinstance(node, dict):
        for name, value in node.items():
            _finite(value, f"{key}.{name}")
    elif isinstance(node, (list, tuple)):
        check(all(math.isfinite(v) for v in node if isinstance(v, float)), key, list(node),
              "every entry must be a finite number")
        for value in node:
            if not isinstance(value, float):
                _finite(value, key)
    elif isinstance(node, float):
        check(math.isfinite(node), key, node, "must be a finite number")


def _continual(node: DictConfig | None) -> Any:
    """The task sequence's schema object, or None for a run of one task."""
    if node is None:
        return None

    name = OmegaConf.select(node, "name")
    check(name in SEQUENCES, "continual.name", name, f"choose a task sequence among {', '.join(SEQUENCES)}")
    return _to_object(node, "continual")
