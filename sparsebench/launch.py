"""Jobs sent through one of Hydra's launchers from outside a Hydra command line: the claims command's
missing runs go to the launchers that ``sparsebench -m hydra/launcher=...`` uses (``slurm``,
``submitit_local``, ``joblib``, ``local``, ``ray``), with the same task function and the same configs.

Hydra has no public call for "launch these jobs": a sweeper does it with the launcher plugin it
instantiates from the composed config. This does what Hydra's own multirun does up to that point (compose
the command's config with the launcher chosen, instantiate the launcher, hand it the jobs' override
lists) through the same internal classes the sweepers use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from sparsebench.configure import register
from sparsebench.errors import SparsebenchError
from sparsebench.sweep import CONFIG_MODULE, CONFIG_NAME, OUTCOMES

log = logging.getLogger("sparsebench")


@contextmanager
def _logging_kept() -> Iterator[None]:
    """Launchers configure Hydra's logging in the calling process; the caller keeps its own."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class HydraLauncher:
    """One launcher plugin, set up once (``name``: an option of ``hydra/launcher``; ``hydra_overrides``:
    its settings, e.g. ``hydra.launcher.partition=gpu``; ``common``: the overrides every job shares,
    which place Hydra's sweep folder under the results folder)."""

    def __init__(self, name: str, hydra_overrides: list[str], common: list[str]):
        from hydra._internal.callbacks import Callbacks
        from hydra._internal.hydra import Hydra
        from hydra._internal.utils import create_config_search_path
        from hydra.core.hydra_config import HydraConfig
        from hydra.core.plugins import Plugins
        from hydra.types import HydraContext, RunMode

        from sparsebench.cli import explain, task

        self.name = name
        register()
        GlobalHydra.instance().clear()
        hydra = Hydra.create_main_hydra2("sparsebench", create_config_search_path(f"pkg://{CONFIG_MODULE}"))
        try:
            with _logging_kept():
                self.config = hydra.compose_config(
                    CONFIG_NAME, [f"hydra/launcher={name}", "hydra.mode=MULTIRUN", *hydra_overrides, *common],
                    run_mode=RunMode.MULTIRUN, with_log_configuration=False)
                HydraConfig.instance().set_config(self.config)
                context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(self.config))
                self.launcher = Plugins.instance().instantiate_launcher(hydra_context=context, task_function=task,
                                                                        config=self.config)
        except (HydraException, OmegaConfBaseException, ImportError) as error:
            hint = "" if name in ("basic", "local", "joblib", "slurm", "submitit_local", "submitit_slurm") else \
                " (a launcher plugin may need installing: see README, Sweeps at scale)"
            raise SparsebenchError(f"launcher={name}: {explain(error)}{hint}") from None
        self.sweep_dir = Path(str(self.config.hydra.sweep.dir))
        self.launched = 0

    def launch(self, jobs: list[list[str]]) -> None:
        """Run ``jobs`` (each a full override list) and return when the launcher says they are done.
        Raises what the launcher raises (a job lost with its node, a cancelled job)."""
        with _logging_kept():
            self.launcher.launch(jobs, initial_job_idx=self.launched)
        self.launched += len(jobs)

    def outcomes(self) -> dict[tuple[str, ...], tuple[str, str]]:
        """job overrides -> (status, message) of the jobs that reported one (the last report of each)."""
        import json

        path = self.sweep_dir / OUTCOMES
        found = {}
        for line in path.read_text().splitlines() if path.exists() else []:
            outcome = json.loads(line)
            found[tuple(outcome["overrides"])] = (outcome["status"], outcome["message"])
        return found
