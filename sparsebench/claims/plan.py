"""Which runs a set of claims needs under a profile, and running the missing ones."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from sparsebench.claims.catalogue import Claim
from sparsebench.config import RunConfig
from sparsebench.errors import SparsebenchError
from sparsebench.runner import run, run_dir_for
from sparsebench.sweep import compose_jobs, hydra_configs

log = logging.getLogger("sparsebench")


@dataclass
class Job:
    experiment: str
    overrides: list[str]  # the sweep values that make this job (besides experiment and profile)
    config: RunConfig

    @property
    def run_id(self) -> str:
        return run_dir_for(self.config).path.name

    @property
    def done(self) -> bool:
        return run_dir_for(self.config).status() == "completed"


@dataclass
class Plan:
    jobs: dict[str, list[Job]] = field(default_factory=dict)  # experiment -> its jobs
    unavailable: dict[str, str] = field(default_factory=dict)  # experiment -> why it has no results

    def all_jobs(self) -> list[Job]:
        return [job for jobs in self.jobs.values() for job in jobs]


def plan(claims: list[Claim], profile: str, overrides: list[str]) -> Plan:
    """Compose and validate every job of every experiment the claims rest on (raises SparsebenchError
    with one line for the first bad one, before anything runs)."""
    from sparsebench.cli import explain

    result = Plan()
    experiments = list(dict.fromkeys(e for claim in claims for e in claim.experiments))
    with hydra_configs():
        for experiment in experiments:
            head = [f"experiment={experiment}", f"profile={profile}"]
            try:
                composed = compose_jobs([*head, *overrides], multirun=True)
            except (HydraException, OmegaConfBaseException, SparsebenchError) as error:
                raise SparsebenchError(f"experiment {experiment}: {explain(error)}") from None
            given = {o.partition("=")[0] for o in [*head, *overrides]}
            result.jobs[experiment] = [Job(experiment, [o for o in job if o.partition("=")[0] not in given], cfg)
                                       for job, cfg in composed]
    return result


def _run_job(config: RunConfig, threads: int | None) -> str:
    """One job in a worker process: its outcome, or ``unavailable: <why>`` when its data set is missing."""
    import torch

    from sparsebench.workers import die_with_launcher

    die_with_launcher()
    if threads:
        torch.set_num_threads(threads)
    try:
        return run(config).status
    except SparsebenchError as error:
        return f"unavailable: {error}"


def execute(the_plan: Plan, jobs: int = 1) -> dict[str, int]:
    """Run every job whose record is not completed, ``jobs`` at a time (each with its share of the CPU
    cores); count the outcomes. An experiment whose data set is missing is marked unavailable (with
    the reason) and its other jobs are not tried."""
    counts: dict[str, int] = {"reused": sum(job.done for job in the_plan.all_jobs())}
    pending = [job for job in the_plan.all_jobs() if not job.done]
    log.info("%d runs needed: %d completed before, %d to run%s", len(the_plan.all_jobs()), counts["reused"],
             len(pending), f", {jobs} at a time" if jobs > 1 and pending else "")
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    for experiment, experiment_jobs in the_plan.jobs.items():
        todo = [job for job in experiment_jobs if not job.done]
        if not todo:
            continue
        if jobs > 1:
            from joblib import Parallel, delayed

            outcomes = Parallel(n_jobs=jobs, return_as="generator")(
                delayed(_run_job)(job.config, threads) for job in todo)
        else:
            outcomes = (_run_job(job.config, None) for job in todo)
        for number, (job, status) in enumerate(zip(todo, outcomes), start=1):
            log.info("[%s %d/%d] %s: %s", experiment, number, len(todo), " ".join(job.overrides), status)
            if status.startswith("unavailable: "):
                the_plan.unavailable[experiment] = status.partition(": ")[2]
                counts["unavailable"] = counts.get("unavailable", 0) + 1
                if jobs == 1:
                    break  # the same data set is missing for the rest
                continue
            counts[status] = counts.get(status, 0) + 1
    return counts
