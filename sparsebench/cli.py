"""The ``sparsebench`` command: one run, or a Hydra multirun sweep (``-m``), of the configs in ``conf/``.

Before Hydra starts any job, every configuration of the sweep is composed and validated here, so that
a bad value stops the whole command with one line naming the key, the value and what is allowed,
before any work is done.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import textwrap

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from sparsebench.configure import register, validate
from sparsebench.errors import SparsebenchError, interrupted
from sparsebench.sweep import (
    CONFIG_NAME,
    SweepSummary,
    compose,
    hydra_configs,
    job_overrides,
    parallel_share,
    record_outcome,
    search_overrides,
)

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
log = logging.getLogger("sparsebench")
_statuses: list[str] = []  # outcomes of the jobs run in this process


def _options(group: str) -> list[str]:
    try:
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))
    except Exception:  # noqa: BLE001 - only used to enrich a message
        return []


def _omegaconf_cause(error: BaseException) -> OmegaConfBaseException | None:
    """The OmegaConf error behind a Hydra error, if any: it names the full key."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def explain(error: BaseException) -> str:
    """One line saying what is wrong with a command line and how to fix it."""
    if isinstance(error, SparsebenchError):
        return str(error)
    cause = _omegaconf_cause(error)
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        key = cause.full_key
        schema = getattr(cause, "object_type", None)
        known = ", ".join(f.name for f in dataclasses.fields(schema)) if dataclasses.is_dataclass(schema) else ""
        parent = key.rpartition(".")[0]
        where = f" of {parent}" if parent else ""
        return (f"{key} is not a setting{where}: " + (f"the settings are {known}; " if known else "")
                + "check the spelling")
    if isinstance(cause, ValidationError):
        detail = str(cause).splitlines()[0]
        converted = re.match(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", detail)
        if converted:
            return f"{cause.full_key}={converted[1]!r} is not allowed: expected a {converted[2].lower()} value"
        return f"{cause.full_key} is not allowed: {detail}"
    text = str(error)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        options = ", ".join(_options(group)) or "none found"
        return f"{group}={option} is not an option of {group}: choose one of {options} (files in conf/{group}/)"
    if isinstance(error, OverrideParseException):
        return f"could not parse the command line: {text.splitlines()[0]} (see {GRAMMAR})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(error).__name__


def preflight(overrides: list[str], multirun: bool, config_name: str = CONFIG_NAME) -> int:
    """Compose and validate every job of the command line, and check what each needs of this machine
    (a results folder it can write; its device, when the jobs run here); return how many there are.

    Raises SparsebenchError with a one-line message for the first bad one.
    """
    from sparsebench.atomic import writable_folder
    from sparsebench.runner import resolve_device

    here = runs_here(overrides)
    checked: set[str] = set()
    with hydra_configs():
        try:
            jobs = job_overrides(overrides, multirun, config_name)
        except (HydraException, OmegaConfBaseException) as error:
            raise SparsebenchError(explain(error)) from None
        for job in jobs:
            prefix = f"in job {' '.join(job)}: " if len(jobs) > 1 else ""
            try:
                run = validate(compose(job, config_name))
                if run.results_dir not in checked:
                    writable_folder(run.results_dir, "results_dir")
                    checked.add(run.results_dir)
                if here:
                    resolve_device(run.device)
            except (HydraException, OmegaConfBaseException, SparsebenchError) as error:
                raise SparsebenchError(prefix + explain(error)) from None
    return len(jobs)


def runs_here(overrides: list[str]) -> bool:
    """Whether the jobs run on this machine (not on a cluster's nodes, whose devices cannot be checked here)."""
    launcher = next((o.partition("=")[2] for o in reversed(overrides) if o.lstrip("+").startswith("hydra/launcher=")), "")
    return "slurm" not in launcher


def help_text() -> str:
    """``sparsebench --help``: what the command does, its config groups and their options (those a user
    can choose: not the schemas or the claims catalogue), and where to read more."""
    with hydra_configs():
        loader = GlobalHydra.instance().config_loader()
        groups = [g for g in sorted(loader.list_groups("")) if g not in ("claims", "schema", "hydra")]
        groups.append("hydra/launcher")
        lines = [textwrap.fill(", ".join(sorted(loader.get_group_options(group))), width=100,
                               initial_indent=f"  {group:<15}", subsequent_indent=" " * 17) for group in groups]
    return "\n".join([
        "sparsebench: train, measure and record one run, or a sweep of runs (-m), of the configs in conf/.",
        "",
        "usage: sparsebench [-m] [GROUP=OPTION ...] [KEY=VALUE ...]",
        "       sparsebench --cfg job [...]   print the composed config (after checking it) without running",
        "",
        "Config groups (GROUP=OPTION):",
        *lines,
        "",
        "Top-level keys: seed, device (auto/cpu/cuda/mps), results_dir, name, progress (auto/on/off), threads,",
        "retry_failed. Every value of a group can be set too: regularizer.p=0.3, train.epochs=10, ...",
        "Examples:",
        "  sparsebench dataset=mnist dataset.root=/path/to/mnist regularizer=dropout seed=0",
        "  sparsebench -m experiment=mlp_regularizers profile=smoke",
        "The claims and their report: sparsebench-claims --help. README.md says more.",
    ])


def task(cfg: DictConfig) -> str | float:
    """One job of the command (Hydra's task function, in whatever process a launcher runs it): the run's
    outcome, or, when ``objective`` names a metric, its value for a sweeper that searches."""
    import os

    import torch

    from sparsebench.objective import objective_value
    from sparsebench.runner import run
    from sparsebench.workers import die_with_launcher

    die_with_launcher()
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    threads, device = (parallel_share(hydra_cfg.launcher, hydra_cfg.job.num, os.cpu_count() or 1,
                                      torch.cuda.device_count()) if multirun else (None, None))
    message, folder = "", None
    try:
        run_cfg = validate(cfg)
        if threads and not run_cfg.threads:
            torch.set_num_threads(threads)
        outcome = run(run_cfg, device=device if run_cfg.device in ("auto", "cuda") else None)
        status, message, folder = outcome.status, outcome.message, outcome.path
    except SparsebenchError as error:
        log.error("%s", error)
        status, message = "error", str(error)
    if multirun:
        record_outcome(hydra_cfg.sweep.dir, list(hydra_cfg.overrides.task), status, message)
    else:
        _statuses.append(status)
    if not cfg.get("objective"):
        return status
    return objective_value(cfg.objective, cfg.get("objective_direction", "maximize"), status, folder)


_job = hydra.main(version_base="1.3", config_path="pkg://sparsebench.conf", config_name=CONFIG_NAME)(task)


def main() -> None:
    from hydra._internal.utils import get_args_parser

    from sparsebench.workers import mark_launcher

    args, _ = get_args_parser().parse_known_args(sys.argv[1:])
    if args.help:
        print(help_text())
        return
    informational = args.hydra_help or args.info or args.shell_completion
    try:
        if not informational:  # --cfg too: a config that would be refused is not printed as if it were fine
            preflight(args.overrides, args.multirun, args.config_name or CONFIG_NAME)
            if args.multirun:
                with hydra_configs():
                    sys.argv += search_overrides(args.overrides, args.config_name or CONFIG_NAME)
        register()
        mark_launcher()
        _job()
    except (SparsebenchError, HydraException, OmegaConfBaseException) as error:
        print(f"sparsebench: error: {explain(error)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(interrupted("sparsebench", "run the same command to resume"))
    failed = SweepSummary.failures + sum(status in ("failed", "error") for status in _statuses)
    if failed:
        sys.exit(1)
