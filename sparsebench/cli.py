"""The ``sparsebench`` command: one run, or a Hydra multirun sweep (``-m``), of the configs in ``conf/``.

Before Hydra starts any job, every configuration of the sweep is composed and validated here, so that
a bad value stops the whole command with one line naming the key, the value and what is allowed,
before any work is done.
"""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from pathlib import Path
from unittest import mock

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sparsebench.commands import (
    BAD_INPUT,
    COMPOSE_ERRORS,
    FAILED,
    explain,
    parse_overrides,
    quote,
    refuse_null_groups,
    run_command,
    version_text,
)
from sparsebench.configure import register, validate
from sparsebench.errors import SparsebenchError
from sparsebench.sweep import (
    CONFIG_NAME,
    SweepSummary,
    base_config,
    compose,
    hydra_configs,
    job_overrides,
    parallel_share,
    record_outcome,
    search_overrides,
    validate_multirun,
)

__all__ = ["explain", "main", "preflight", "task"]  # explain: the one-line errors, for plan and launch
log = logging.getLogger("sparsebench")
_statuses: list[str] = []  # outcomes of the jobs run in this process


def preflight(overrides: list[str], multirun: bool, config_name: str = CONFIG_NAME) -> int:
    """Compose and validate every job of the command line, and check what each needs of this machine
    (a results folder it can write; its device, when the jobs run here); return how many there are.

    Raises SparsebenchError with a one-line message for the first bad one.
    """
    from sparsebench.atomic import writable_folder
    from sparsebench.runner import resolve_device

    here = runs_here(overrides)
    refuse_null_groups(parse_overrides(overrides))
    checked: set[str] = set()
    with hydra_configs():
        try:
            if multirun:
                check_searchable(overrides, config_name)
            jobs = job_overrides(overrides, multirun, config_name)
        except COMPOSE_ERRORS as error:
            raise SparsebenchError(explain(error)) from None
        # A sweep's jobs composed as the claims command composes them (once per choice of config groups);
        # a composition that fails comes out at the job it fails for.
        composed = (validate_multirun(overrides, config_name) if multirun else
                    ((job, validate(compose(job, config_name))) for job in jobs))
        for job in jobs:
            prefix = f"in job {' '.join(job)}: " if len(jobs) > 1 else ""
            try:
                _, run = next(composed)
                if run.results_dir not in checked:
                    writable_folder(run.results_dir, "results_dir")
                    checked.add(run.results_dir)
                if here:
                    resolve_device(run.device)
            except (*COMPOSE_ERRORS, SparsebenchError) as error:
                raise SparsebenchError(prefix + explain(error)) from None
    return len(jobs)


def check_searchable(overrides: list[str], config_name: str = CONFIG_NAME) -> None:
    """Refuse, in one line, a search space (``interval(...)``) given to a sweeper that only runs lists of
    values (Hydra's basic sweeper, the default), which would stop the sweep with a traceback. Hydra must
    be initialised."""
    interval = next((o for o in parse_overrides(overrides) if o.is_interval_sweep()), None)
    if interval is None:
        return
    sweeper = base_config(overrides, config_name).hydra.sweeper._target_
    if sweeper.endswith(".BasicSweeper"):
        key = interval.get_key_element()
        raise SparsebenchError(
            f"{interval.input_line} is a search space, which Hydra's basic sweeper cannot run (it runs lists of "
            f"values: {key}=0.1,0.3,0.5): add hydra/sweeper=optuna to search it (pip install 'sparsebench[tune]')")


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
        "       sparsebench --version",
        "",
        "Config groups (GROUP=OPTION):",
        *lines,
        "",
        "Top-level keys: seed, device (auto/cpu/cuda/mps), results_dir, name, progress (auto/on/off), threads,",
        "retry_failed. Every value of a group can be set too: regularizer.p=0.3, train.epochs=10, ...",
        "Examples:",
        "  sparsebench dataset=mnist dataset.root=/path/to/mnist regularizer=dropout seed=0",
        "  sparsebench -m experiment=mlp_regularizers profile=smoke",
        "  sparsebench --config-dir my_conf experiment=mine   (an experiment of your own: my_conf/experiment/mine.yaml)",
        "The claims and their report: sparsebench-claims --help. README.md says more.",
    ])


def task(cfg: DictConfig) -> str | float:
    """One job of the command (Hydra's task function, in whatever process a launcher runs it): the run's
    outcome, or, when ``objective`` names a metric, its value for a sweeper that searches."""
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
        outcome = run(run_cfg, device=device if run_cfg.device in ("auto", "cuda") else None,
                      overrides=list(hydra_cfg.overrides.task),
                      sweep=Path(hydra_cfg.sweep.dir).name if multirun else None)
        status, message, folder = outcome.status, outcome.message, outcome.path
    except SparsebenchError as error:
        log.error("%s", error)
        status, message = "error", str(error)
    if multirun:
        record_outcome(hydra_cfg.sweep.dir, list(hydra_cfg.overrides.task), status, message, folder)
    else:
        _statuses.append(status)
    if not cfg.get("objective"):
        return status
    return objective_value(cfg.objective, cfg.get("objective_direction", "maximize"), status, folder)


_job = hydra.main(version_base="1.3", config_path="pkg://sparsebench.conf", config_name=CONFIG_NAME)(task)


def with_config_dir(overrides: list[str], config_dir: str | None) -> list[str]:
    """The overrides with ``--config-dir`` made part of them, so that composing them here finds the
    configs Hydra will find: Hydra searches that folder after sparsebench's own configs and before the
    folders of ``hydra.searchpath``, the order of the search path built here."""
    if config_dir is None:
        return overrides
    folder = os.path.abspath(config_dir)  # as Hydra makes it absolute
    if not os.path.isdir(folder):
        raise SparsebenchError(f"--config-dir={config_dir} is not a folder: give the folder that holds your "
                               "config groups (e.g. my_conf, with my_conf/experiment/mine.yaml)")
    parsed = parse_overrides(overrides)
    given = next((o for o in parsed if o.get_key_element() == "hydra.searchpath"), None)
    more = given.value() if given is not None else []
    if not isinstance(more, list):
        return overrides  # not a list: composing refuses it, as Hydra would
    searchpath = ",".join(quote(str(path)) for path in [f"file://{folder}", *more])
    return [f"hydra.searchpath=[{searchpath}]", *(o.input_line for o in parsed if o is not given)]


def exit_status(statuses: list[str]) -> int:
    """2 when a job could not start for its input (its data missing, a folder it cannot write: status
    error, as sparsebench-claims says), else 1 when a run failed, else 0."""
    if "error" in statuses:
        return BAD_INPUT
    return FAILED if "failed" in statuses else 0


def main(argv: list[str] | None = None) -> None:
    """The ``sparsebench`` command; it exits, as every Hydra application does, with the status of
    sparsebench.commands."""
    if argv is not None:
        sys.argv[1:] = argv  # hydra.main reads the command line from sys.argv
    sys.exit(run_command("sparsebench", _sparsebench, "run the same command to resume"))


def _sparsebench() -> int:
    # Hydra's own flags (-m, --cfg, --config-dir, ...) read by Hydra's own parser: Hydra has no public API for them.
    from hydra._internal.utils import get_args_parser

    from sparsebench.workers import mark_launcher

    if "--version" in sys.argv[1:]:  # Hydra's parser would print Hydra's version
        print(version_text("sparsebench"))
        return 0
    args, _ = get_args_parser().parse_known_args(sys.argv[1:])
    if args.help:
        print(help_text())
        return 0
    informational = args.hydra_help or args.info or args.shell_completion
    if not informational:  # --cfg too: a config that would be refused is not printed as if it were fine
        overrides = with_config_dir(args.overrides, args.config_dir)
        preflight(overrides, args.multirun, args.config_name or CONFIG_NAME)
        if args.multirun:
            with hydra_configs():
                searching = search_overrides(overrides, args.config_name or CONFIG_NAME)
            if "hydra.sweeper.n_trials=0" in searching and not args.cfg:
                return 0  # a stored study with all its trials (search_overrides said so)
            sys.argv += searching
    register()
    mark_launcher()
    _statuses.clear()
    SweepSummary.statuses = []
    # Hydra reports any error of what it prints (--cfg, --info) with a traceback, a reader that went
    # away (| head) included; HYDRA_FULL_ERROR, its documented switch, lets the error reach run_command.
    with mock.patch.dict(os.environ, {"HYDRA_FULL_ERROR": "1"} if args.cfg or informational else {}):
        _job()
    return exit_status([*SweepSummary.statuses, *_statuses])
