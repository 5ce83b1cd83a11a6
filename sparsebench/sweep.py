"""The jobs a command line stands for, composed and validated before any of them runs.

A sweep's values come from the command line (``seed=0,1,2``) and from ``hydra.sweeper.params`` in the
composed config (how experiment and profile files declare their sweeps); the command line wins for
a key given in both, and the jobs are expanded as Hydra's own basic sweeper expands them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.resources
import itertools
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra

# Hydra's own steps of composing a config (hydra-core is pinned to 1.3; Hydra has no public call that applies
# settings to a config already composed): how it tells group choices from
# settings (Overrides) and how it applies settings (ConfigLoaderImpl), so that a job's config derived
# here is what Hydra's compose gives, errors included.
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.defaults_list import Overrides
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from sparsebench.commands import quote
from sparsebench.configure import SELF_CHECKED, register, validate
from sparsebench.errors import ConfigError, SparsebenchError
from sparsebench.hydra_reads import files_read_once
from sparsebench.schemas import RunConfig

log = logging.getLogger("sparsebench")

CONFIG_MODULE = "sparsebench.conf"
CONFIG_NAME = "config"


@contextmanager
def hydra_configs() -> Iterator[None]:
    """Hydra initialised on sparsebench's configs, for the Compose API (restores Hydra's state after)."""
    register()
    GlobalHydra.instance().clear()
    try:
        with hydra.initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"), files_read_once():
            yield
    finally:
        GlobalHydra.instance().clear()


def _own(overrides: list[str]) -> list[str]:
    """The overrides of the run config itself and where its files are searched (``hydra.searchpath``,
    which ``--config-dir`` joins); Hydra's other settings left out."""
    return [o for o in overrides if not o.lstrip("+~").startswith("hydra") or o.startswith("hydra.searchpath=")]


def _corners(parser: OverridesParser, overrides: list[str]) -> list[str]:
    """The overrides with each interval (a search space that a sweeper such as Optuna samples from,
    ``interval(0.1,0.7)``, ``tag(log,interval(...))``) replaced by its two ends: checking the jobs of a
    search means checking the corners of its space."""
    out = []
    for override in parser.parse_overrides(overrides):
        if override.is_interval_sweep():
            interval = override.value()
            out.append(f"{override.get_key_element()}={interval.start},{interval.end}")
        else:
            out.append(override.input_line)
    return out


class NullParent(ConfigError):
    """A setting under a node that is null in the config composed (``tune.shared=false`` where the experiment
    is not tuned: its ``tune`` is null); ``parent``: that node's key."""

    def __init__(self, override: str, parent: str):
        self.parent = parent
        key, _, value = override.partition("=")
        super().__init__(key, value, f"{parent} is null in this config, so nothing can be set under it",
                         f"leave {override} out, or give {parent} itself a value")


@contextmanager
def _settings_under_null(overrides: list[str], config_name: str) -> Iterator[None]:
    """Turn OmegaConf's bare assertion, raised when an override sets a key under a null node, into a
    ``NullParent`` that names the override and the node."""
    try:
        yield
    except AssertionError as error:
        if "Unexpected type for root" not in str(error):
            raise
        raise _null_parent(overrides, config_name) from None


def _null_parent(overrides: list[str], config_name: str) -> SparsebenchError:
    """The first override whose key lies under a node that is null once the group choices are composed."""
    parser = OverridesParser.create()
    parsed = [o for o in parser.parse_overrides(overrides)]
    choices = [o.input_line for o in parsed if "." not in o.key_or_group and not o.is_sweep_override()]
    config = hydra.compose(config_name=config_name, overrides=choices)
    for override in parsed:
        parts = override.key_or_group.lstrip("+~").split(".")
        for end in range(1, len(parts)):
            parent = ".".join(parts[:end])
            if OmegaConf.select(config, parent, default="<absent>") is None:
                return NullParent(override.input_line, parent)
    return SparsebenchError("an override sets a key under a setting that is null in this config: "
                            + " ".join(overrides))


def _apply(settings: list[Override], cfg: DictConfig, job: list[str], config_name: str) -> None:
    """Hydra's own step that applies a job's settings to its composed config (``job``: its overrides)."""
    with _settings_under_null(job, config_name):
        ConfigLoaderImpl._apply_overrides_to_config(settings, cfg)


def base_config(overrides: list[str], config_name: str = CONFIG_NAME) -> DictConfig:
    """The command's config without its sweep values, Hydra's settings included (the launcher and
    sweeper chosen, and the sweep declared by experiment and profile files). Hydra must be initialised."""
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    with _settings_under_null(fixed, config_name):
        return hydra.compose(config_name=config_name, overrides=fixed, return_hydra_config=True)


def job_overrides(overrides: list[str], multirun: bool, config_name: str = CONFIG_NAME,
                  base: DictConfig | None = None) -> list[list[str]]:
    """The override list of every job (one without ``multirun``); for a search, the jobs at the corners
    of its space. ``base``: the command's ``base_config``, when already composed. Hydra must be initialised."""
    own = _own(overrides)
    if not multirun:
        return [own]
    parser = OverridesParser.create()
    base = base_config(overrides, config_name) if base is None else base
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    declared = [f"{key}={value}" for key, value in params.items()]
    return _combinations(parser.parse_overrides(_corners(parser, declared + own)))


def _combinations(overrides: list[Override]) -> list[list[str]]:
    """Every job of a sweep, as Hydra's basic sweeper makes them: each combination of the sweep values,
    in the order of the keys; a key given twice takes its last values, in the place of its first."""
    values: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        values[key] = ([f"{key}={value}" for value in override.sweep_string_iterator()]
                       if override.is_sweep_override() else [f"{key}={override.get_value_element_as_str()}"])
    return [list(job) for job in itertools.product(*values.values())]


def override_text(value: Any) -> str:
    """A config value as a command-line override writes it (0.5 -> 0.5, True -> true, [1, 2] -> [1,2],
    None -> null): the inverse of Hydra's parsing for the plain values configs hold."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_text(v) for v in value) + "]"
    return "null" if value is None else str(value)


def compose(overrides: list[str], config_name: str = CONFIG_NAME) -> DictConfig:
    """One job's config, composed with Hydra's Compose API. Hydra must be initialised."""
    with _settings_under_null(overrides, config_name):
        return hydra.compose(config_name=config_name, overrides=overrides)


def compose_jobs(overrides: list[str], multirun: bool, config_name: str = CONFIG_NAME
                 ) -> list[tuple[list[str], RunConfig]]:
    """Every job of a command line with its validated config. Hydra must be initialised.

    Raises whatever composing or validating raises first (Hydra, OmegaConf or ConfigError).
    """
    if not multirun:
        return [(job, validate(compose(job, config_name))) for job in job_overrides(overrides, False, config_name)]
    return list(validate_multirun(overrides, config_name))


def compose_multirun(overrides: list[str], config_name: str = CONFIG_NAME) -> Iterator[tuple[list[str], DictConfig]]:
    """Every job of a multirun with its config, the same as composing each job alone with ``compose``,
    at the cost of one composition per distinct choice of config groups rather than one per job. Hydra
    must be initialised (while the jobs are read: they are composed one by one as they are asked for).

    Hydra composes a job in two steps: the config files its group choices (``regularizer=l1``) name, then
    its settings (``seed=3``, ``train.lr=0.1``) applied one by one. Jobs with the same group choices
    share the first step. A multirun gives each key one value per job, so a job's settings touch
    distinct places of the config and the order they are applied in does not matter: the settings every
    job has are applied once, to the shared part, and each job's own on a copy, by Hydra's own code.
    A job with two settings where one lies inside the other (``model={...}`` and ``model.hidden=...``)
    is composed alone."""
    for job, _, shared, settings in _multirun_parts(overrides, config_name):
        if shared is None:
            yield job, compose(job, config_name)
            continue
        cfg = copy.deepcopy(shared)
        _apply(settings, cfg, job, config_name)
        yield job, cfg


def validate_multirun(overrides: list[str], config_name: str = CONFIG_NAME) -> Iterator[tuple[list[str], RunConfig]]:
    """Every job of a multirun with its validated config: what ``validate`` gives for each config of
    ``compose_multirun``, at the cost of one validation per group of jobs that differ only in settings
    that validation checks on their own (``configure.SELF_CHECKED``: the seed). Hydra must be
    initialised; a job that fails comes out when it is asked for.

    The first job of a group is composed and validated in full; each other one takes the group's checked
    config with its own values of those settings, converted by OmegaConf as Hydra converts them (on the
    group's config: the same keys, overwritten) and checked again by the run config's own checks
    (``dataclasses.replace`` runs them). A setting that some interpolation of the config might read
    (its name appears in one) is checked in full with the rest."""
    checked: dict[tuple, tuple[DictConfig, RunConfig]] = {}
    alone_checked: dict[tuple, set[str]] = {}  # a shared part -> the SELF_CHECKED keys no interpolation names
    for job, part, shared, settings in _multirun_parts(overrides, config_name):
        if shared is None:
            yield job, validate(compose(job, config_name))
            continue
        if part not in alone_checked:
            alone_checked[part] = set(SELF_CHECKED) - _named_in_interpolations(shared, SELF_CHECKED)
        own = [o for o in settings if o.type == OverrideType.CHANGE and o.key_or_group in alone_checked[part]]
        key = (part, _lines([o for o in settings if not any(o is s for s in own)]))
        if key not in checked:
            cfg = copy.deepcopy(shared)
            _apply(settings, cfg, job, config_name)
            checked[key] = (cfg, validate(cfg))
            yield job, copy.deepcopy(checked[key][1])
            continue
        cfg, first = checked[key]
        _apply(own, cfg, job, config_name)
        yield job, dataclasses.replace(copy.deepcopy(first), **{o.key_or_group: cfg[o.key_or_group] for o in own})


def _named_in_interpolations(cfg: DictConfig, keys: tuple[str, ...]) -> set[str]:
    """The keys that some interpolation of ``cfg`` may read (``${seed}``, ``${oc.select:seed}``; see
    ``_reads``): a value that may follow them."""
    texts: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and "${" in node:
            texts.extend(_INTERPOLATION.findall(node))

    walk(OmegaConf.to_container(cfg, resolve=False))
    return _read_by(keys, texts)


def config_folders() -> list[Path]:
    """The folders of every config file on Hydra's search path (sparsebench's own, its plugins', any added
    with ``hydra.searchpath`` or ``--config-dir``). Hydra must be initialised."""
    entries = GlobalHydra.instance().config_loader().get_search_path().get_path()
    return [folder for entry in entries if (folder := _folder_of(entry.path or "")) is not None]


def _folder_of(search_path_entry: str) -> Path | None:
    """The folder a search path entry (``file://dir``, ``pkg://module``, a bare path) names; None for the
    code's structured configs or a package that cannot be found."""
    provider, _, name = search_path_entry.rpartition("://")
    if not name or provider == "structured":  # (structured configs are the code's)
        return None
    if provider in ("", "file"):  # a folder (Hydra reads a path without a scheme as one)
        return Path(name).resolve()
    try:
        return Path(str(importlib.resources.files(name.replace("/", ".")))).resolve()
    except (ImportError, TypeError, ValueError):
        return None


def config_folders_here() -> tuple[Path, ...]:
    """``config_folders()`` of Hydra's search path when Hydra is initialised, else of sparsebench's own (no
    ``hydra.searchpath`` given)."""
    return tuple(config_folders()) if GlobalHydra.instance().is_initialized() else _default_config_folders()


@functools.cache
def _default_config_folders() -> tuple[Path, ...]:
    # Initialising Hydra to ask costs about 0.1 s, and a claims command asks several times.
    with hydra_configs():
        return tuple(config_folders())


def named_in_config_interpolations(keys: list[str], overrides: list[str]) -> set[str]:
    """The ``keys`` whose name appears in an interpolation (``${...}``) of some config file on Hydra's search
    path or of ``overrides``: a value that may follow them (the key, a group above it or a setting inside
    it named; a relative interpolation by its last name), so it errs on the side of "may". The search path
    is Hydra's current one when Hydra is initialised, else sparsebench's own with the folders a
    ``hydra.searchpath=`` of ``overrides`` adds. The files are read once per process (a plan reads them for
    each tuned experiment)."""
    folders = config_folders_here()
    if not GlobalHydra.instance().is_initialized():
        folders += tuple(_searchpath_folders(overrides))
    # (A multirun's job lines escape an interpolation's braces: ``$\{train.lr\}``.)
    texts = [found for o in overrides for found in _INTERPOLATION.findall(o.replace("\\", ""))]
    texts += _interpolations_in(folders)
    return _read_by(keys, texts)


def _searchpath_folders(overrides: list[str]) -> list[Path]:
    """The folders the last ``hydra.searchpath=[...]`` of ``overrides`` adds to Hydra's search path."""
    given = [o for o in OverridesParser.create().parse_overrides([o for o in overrides if o.startswith("hydra.searchpath=")])]
    entries = given[-1].value() if given else []
    return [folder for entry in entries if (folder := _folder_of(str(entry))) is not None]


def _read_by(keys, interpolations: list[str]) -> set[str]:
    """The ``keys`` that one of ``interpolations`` may read."""
    paths = {path for text in interpolations for path in _paths_in(text)}
    return {key for key in keys if any(_reads(path, key) for path in paths)}


def _paths_in(interpolation: str) -> list[str]:
    """The config paths an interpolation may read: ``${train.lr}`` -> train.lr, ``${oc.select:seed,0}`` ->
    oc.select, seed; a relative one (``${..lr}``) by its names alone."""
    inner = interpolation[2:-1]
    return re.findall(r"[A-Za-z_]\w*(?:\.\w+)*", inner) if not inner.startswith(".") else [f"..{inner.lstrip('.')}"]


def _reads(path: str, key: str) -> bool:
    if path.startswith(".."):  # relative: it may be any key with that name
        return key.rpartition(".")[2] == path[2:].partition(".")[0]
    return path == key or path.startswith(key + ".") or key.startswith(path + ".")


@functools.lru_cache(maxsize=8)
def _interpolations_in(folders: tuple[Path, ...]) -> list[str]:
    return [found for folder in folders for path in sorted(folder.rglob("*.yaml"))
            for found in _INTERPOLATION.findall(path.read_text())]


_INTERPOLATION = re.compile(r"\$\{[^}]*\}")


def _multirun_parts(overrides: list[str], config_name: str
                    ) -> Iterator[tuple[list[str], tuple, DictConfig | None, list[Override]]]:
    """(job, the key of its shared part, the shared part, the job's settings to apply to a copy of it) for
    every job of a multirun (see ``compose_multirun``); the shared part is None for a job to compose alone.
    The shared parts are Hydra's compositions: to be copied, never changed."""
    parser = OverridesParser.create()
    base = base_config(overrides, config_name)
    jobs = job_overrides(overrides, True, config_name, base)
    repository = GlobalHydra.instance().config_loader().repository
    fixed_groups, fixed_settings = _split(repository, [o for o in parser.parse_overrides(overrides)
                                                       if not o.is_sweep_override()])
    # Sweep group choices that the base made too (regularizer=none where none is the default) add nothing.
    chosen = {f"{group}={choice}" for group, choice in (OmegaConf.select(base, "hydra.runtime.choices") or {}).items()}
    shared_parts: dict[tuple, DictConfig] = {}
    # The base was composed from the command line as given, the jobs from the sweeper's rewriting of it:
    # it stands for their shared part when that says the same (and it holds no Hydra settings).
    if _own(overrides) == overrides and all(_same_when_rewritten(parser, o) for o in (*fixed_groups, *fixed_settings)):
        with open_dict(base):  # its Hydra settings are read above; the base is this function's own
            del base["hydra"]
        shared_parts[(_lines(fixed_groups), _lines(fixed_settings))] = base
    fixed = set(_lines(fixed_settings))
    fixed_choices = set(_lines(fixed_groups))
    parsed: dict[str, Override] = {}  # the jobs share most of their overrides, and parsing them is not free
    for job in jobs:
        groups, settings = _split(repository, [parsed.get(o) or parsed.setdefault(o, parser.parse_override(o))
                                               for o in job])
        if all(o.type == OverrideType.CHANGE and o.package is None and _line(o) in chosen
               for o in groups if _line(o) not in fixed_choices):  # (one group's default may hang on another's)
            groups = [o for o in groups if _line(o) in fixed_choices]
        if _overlapping(settings):
            yield job, (), None, []
            continue
        shared = [o for o in settings if _line(o) in fixed]
        key = (_lines(groups), _lines(shared))
        if key not in shared_parts:
            shared_parts[key] = compose([o.input_line for o in (*groups, *shared)], config_name)
        yield job, key, shared_parts[key], [o for o in settings if _line(o) not in fixed]


def _split(repository, parsed: list[Override]) -> tuple[list[Override], list[Override]]:
    """(group choices, settings) of a job's overrides, as Hydra tells them apart when composing."""
    settings = Overrides(repository, parsed).config_overrides
    return [o for o in parsed if not any(o is s for s in settings)], settings


def _line(override: Override) -> str:
    """An override as the sweeper writes it in each job (the command line may space or quote it otherwise)."""
    return f"{override.get_key_element()}={override.get_value_element_as_str()}"


def _lines(overrides: list[Override]) -> tuple[str, ...]:
    return tuple(_line(o) for o in overrides)


def _same_when_rewritten(parser: OverridesParser, override: Override) -> bool:
    """Whether the sweeper's rewriting of an override (``_line``) says what the override says."""
    again = parser.parse_override(_line(override))
    return (again.type, again.key_or_group, again.package, repr(again.value())) == \
        (override.type, override.key_or_group, override.package, repr(override.value()))


def _overlapping(settings: list[Override]) -> bool:
    """Whether two settings touch the same place of the config (one key equal to or inside the other)."""
    keys = [o.key_or_group for o in settings]
    return any(a == b or b.startswith((f"{a}.", f"{a}[")) for i, a in enumerate(keys) for j, b in enumerate(keys)
               if i != j)


# --- running sweeps --------------------------------------------------------------------------------

OUTCOMES = "outcomes.jsonl"  # one line per job of a multirun, in the sweep folder


def parallel_share(launcher: DictConfig | None, job_number: int, cpu_count: int, gpu_count: int
                   ) -> tuple[int | None, str | None]:
    """(torch threads, device) for one job of a sweep run by ``launcher`` (Hydra's launcher config):
    jobs that run side by side on one machine share its cores instead of each taking them all, and on
    a machine with several GPUs take one GPU each. (None, None) for jobs that run one at a time."""
    n_jobs = OmegaConf.select(launcher, "n_jobs") if launcher is not None else None
    if not n_jobs:
        return None, None
    parallel = cpu_count if n_jobs < 0 else min(int(n_jobs), cpu_count)
    device = f"cuda:{job_number % gpu_count}" if gpu_count > 1 else None
    return max(1, cpu_count // max(parallel, 1)), device


def record_outcome(sweep_dir: str | Path, overrides: list[str], status: str, message: str,
                   folder: str | Path | None = None) -> None:
    """Append one job's outcome to the sweep's outcomes file (one short line: an atomic append), with its
    run id and run folder (``folder``; null for a job that never reached one: bad input, no data)."""
    line = json.dumps({"overrides": overrides, "status": status, "message": message,
                       "run_id": Path(folder).name if folder else None, "folder": str(folder) if folder else None})
    with open(Path(sweep_dir) / OUTCOMES, "a") as stream:
        stream.write(line + "\n")


def summarize_outcomes(sweep_dir: str | Path) -> tuple[dict[str, int], list[dict]]:
    """(count per status, the failed jobs) of a finished sweep."""
    counts: dict[str, int] = {}
    failed = []
    path = Path(sweep_dir) / OUTCOMES
    for line in path.read_text().splitlines() if path.exists() else []:
        outcome = json.loads(line)
        counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        if outcome["status"] in ("failed", "error"):
            failed.append(outcome)
    return counts, failed


class SweepSummary(Callback):
    """Says, when a multirun ends, how many runs completed, were skipped, failed or were busy; and
    gives the command the outcome of every job (for its exit status). Works with every launcher: the jobs
    append their outcome to a file in the sweep folder, which this reads in the launching process."""

    statuses: list[str] = []  # the outcome of each job of the last multirun in this process

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        counts, failed = summarize_outcomes(config.hydra.sweep.dir)
        total = sum(counts.values())
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        log.info("sweep: %d runs: %s", total, parts or "none")
        for outcome in failed:
            log.error("failed: %s: %s", " ".join(outcome["overrides"]), outcome["message"])
        SweepSummary.statuses = [status for status, n in counts.items() for _ in range(n)]


def search_overrides(overrides: list[str], config_name: str = CONFIG_NAME) -> list[str]:
    """What Hydra must be told besides the command line for a sweeper that searches (one with a
    ``direction``, as Optuna's): it follows ``objective_direction`` unless the command line sets its
    direction, which must then agree; and, for Optuna, what makes a search reproducible and a stored
    study resumable (``study_settings``). Hydra must be initialised.

    Raises SparsebenchError for a search without an objective or with contradicting directions."""
    base = base_config(overrides, config_name)
    direction = OmegaConf.select(base, "hydra.sweeper.direction")
    if direction is None:
        return []
    direction = getattr(direction, "name", direction)
    sweeper = base.hydra.sweeper._target_.rpartition(".")[2]
    if not base.objective:
        raise SparsebenchError(f"{sweeper} searches for the best value of a metric: set objective=test/accuracy "
                               "(or another metric path of the record) and objective_direction")
    if not isinstance(direction, str):
        raise SparsebenchError(f"hydra.sweeper.direction={list(direction)} is not allowed: sparsebench returns "
                               f"one objective ({base.objective}); give one direction")
    extra = study_settings(base, overrides)
    if direction == base.objective_direction:
        return extra
    if any(o.startswith("hydra.sweeper.direction=") for o in overrides):
        raise SparsebenchError(f"hydra.sweeper.direction={direction} contradicts objective_direction="
                               f"{base.objective_direction} (objective={base.objective}): make them agree, or leave "
                               "hydra.sweeper.direction out (it follows objective_direction)")
    return [f"hydra.sweeper.direction={base.objective_direction}", *extra]


def study_name(base: DictConfig, overrides: list[str]) -> str:
    """The default name of a stored Optuna study: the runs' ``name`` and a hash of what the search is
    (its space, its objective, and the part of the runs' config that can change their numbers), so that
    the same command finds its study again (n_trials, progress, ... may change) and another search
    stored in the same database gets a study of its own."""
    from sparsebench.identity import config_hash, result_relevant

    parser = OverridesParser.create()
    space = sorted(o.input_line for o in parser.parse_overrides(_own(overrides)) if o.is_sweep_override())
    declared = base.hydra.sweeper.get("params")
    params = OmegaConf.to_container(declared, resolve=True) if declared else {}
    runs = OmegaConf.masked_copy(base, [key for key in base if key != "hydra"])
    return f"{base.name}-" + config_hash({"space": space, "params": params, "objective": base.objective,
                                          "direction": base.objective_direction, "runs": result_relevant(runs)})


def stored_study(storage: str, name: str) -> tuple[int, str]:
    """(how many trials of the stored study ``name`` have ended, its best so far in words); (0, "") when
    the storage holds no such study yet."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # optuna's answer for a study the storage does not hold
        return 0, ""
    except Exception as error:  # noqa: BLE001 - the storage's own errors (a URL it cannot open, a version clash)
        raise SparsebenchError(
            f"hydra.sweeper.storage={storage}: Optuna could not open it ({type(error).__name__}: {error}); give "
            "a database URL such as sqlite:///study.db, and install the versions it needs with "
            "pip install 'sparsebench[tune]' (optuna 2.10 needs SQLAlchemy below 2)") from None
    done = sum(trial.state.is_finished() for trial in study.trials)
    scored = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = f"best value {study.best_value:g} at {study.best_params}" if scored else "no trial gave a value"
    return done, best


def study_settings(base: DictConfig, overrides: list[str]) -> list[str]:
    """The Optuna sweeper's settings that make a search reproducible and a stored study resumable by
    running the same command again (none for another sweeper):

    - the sampler's seed, 0 unless given, so that a search run again proposes the same values and finds
      their records;
    - with ``hydra.sweeper.storage``, a study name (``study_name``) unless given, so the command loads its
      study again; n_trials counts the study's trials, those of earlier commands included, so a search
      cut short runs what it lacks and one that is done runs nothing (``hydra.sweeper.n_trials=0``: the
      command then stops before Hydra starts, as Hydra's Optuna sweeper cannot end a search of no trial); and the sampler, which restarts its
      random numbers from its seed in each process, is seeded past the trials done (seed + their
      number), or it would propose the first trials' values again."""
    sweeper = base.hydra.sweeper
    if "storage" not in sweeper or "n_trials" not in sweeper:
        return []
    seeded = "seed" in (sweeper.get("sampler") or {})
    seed = sweeper.sampler.seed if seeded and sweeper.sampler.seed is not None else 0
    if sweeper.storage is None:
        return [f"hydra.sweeper.sampler.seed={seed}"] if seeded else []
    name = sweeper.study_name or study_name(base, overrides)
    done, best = stored_study(str(sweeper.storage), name)
    remaining = max(sweeper.n_trials - done, 0)
    print(f"sparsebench: Optuna study {name} in {sweeper.storage}: {done} trials done, {remaining} to run "
          f"(hydra.sweeper.n_trials={sweeper.n_trials} counts them all)"
          + (f"; {best}" if done else "")
          + ("; the search is done: give a larger n_trials to search further" if not remaining else ""),
          file=sys.stderr)
    settings = [f"hydra.sweeper.study_name={quote(name)}", f"hydra.sweeper.n_trials={remaining}"]
    return settings + ([f"hydra.sweeper.sampler.seed={seed + done}"] if seeded else [])
