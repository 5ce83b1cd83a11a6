"""The jobs a command line stands for, composed and validated before any of them runs.

A sweep's values come from the command line (``seed=0,1,2``) and from ``hydra.sweeper.params`` in the
composed config (how experiment and profile files declare their sweeps); the command line wins for
a key given in both, as in Hydra's own basic sweeper, whose expansion is used here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import hydra
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from sparsebench.config import RunConfig, register, validate

CONFIG_MODULE = "sparsebench.conf"
CONFIG_NAME = "config"


@contextmanager
def hydra_configs() -> Iterator[None]:
    """Hydra initialised on sparsebench's configs, for the Compose API (restores Hydra's state after)."""
    register()
    GlobalHydra.instance().clear()
    try:
        with hydra.initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            yield
    finally:
        GlobalHydra.instance().clear()


def _own(overrides: list[str]) -> list[str]:
    """The overrides of the run config itself (Hydra's own settings left out)."""
    return [o for o in overrides if not o.lstrip("+~").startswith("hydra")]


def job_overrides(overrides: list[str], multirun: bool, config_name: str = CONFIG_NAME) -> list[list[str]]:
    """The override list of every job (one without ``multirun``). Hydra must be initialised."""
    own = _own(overrides)
    if not multirun:
        return [own]
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(own) if not o.is_sweep_override()]
    base = hydra.compose(config_name=config_name, overrides=fixed, return_hydra_config=True)
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    declared = [f"{key}={value}" for key, value in params.items()]
    return BasicSweeper.split_arguments(parser.parse_overrides(declared + own), max_batch_size=None)[0]


def compose(overrides: list[str], config_name: str = CONFIG_NAME) -> DictConfig:
    """One job's config, composed with Hydra's Compose API. Hydra must be initialised."""
    return hydra.compose(config_name=config_name, overrides=overrides)


def compose_jobs(overrides: list[str], multirun: bool, config_name: str = CONFIG_NAME
                 ) -> list[tuple[list[str], RunConfig]]:
    """Every job of a command line with its validated config. Hydra must be initialised.

    Raises whatever composing or validating raises first (Hydra, OmegaConf or ConfigError).
    """
    return [(job, validate(compose(job, config_name))) for job in job_overrides(overrides, multirun, config_name)]
