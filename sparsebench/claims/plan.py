"""Which runs a set of claims needs under a profile, and running the missing ones: here (one at a time or
in parallel worker processes) or through a Hydra launcher (SLURM, submitit, joblib, Ray). Runs that
another process is running are waited for and their records used; a run that ends without a record
(a lost node, a cancelled job) is counted as missing, and running the same command again runs it."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from sparsebench.claims.catalogue import Claim
from sparsebench.errors import ConfigError, DataError, SparsebenchError
from sparsebench.progress import bar, duration, progress_enabled, showing
from sparsebench.records import RunDir
from sparsebench.records.paths import flatten
from sparsebench.runner import run, run_dir_for
from sparsebench.schemas import RunConfig, config_tree
from sparsebench.sweep import (
    NullParent,
    compose_jobs,
    hydra_configs,
    named_in_config_interpolations,
    override_text,
)
from sparsebench.workers import Lost, die_with_launcher, forked_map, run_each

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("sparsebench")


@dataclass
class Job:
    experiment: str
    overrides: list[str]  # the sweep values that make this job (besides experiment and profile)
    config: RunConfig
    command: list[str] = field(default_factory=list)  # every override that makes this job (for a launcher)
    unavailable: str | None = None  # why its data set cannot be had here (Plan.mark_unavailable)
    # Of a tuned experiment (claims.tuning): the settings a final run is planned under, tuned and/or shared.
    settings: tuple[str, ...] = ()

    @cached_property
    def run_dir(self) -> RunDir:
        return run_dir_for(self.config)

    @property
    def run_id(self) -> str:
        return self.run_dir.path.name

    @property
    def done(self) -> bool:
        return self.unavailable is None and self.run_dir.status() == "completed"


@dataclass
class Plan:
    jobs: dict[str, list[Job]] = field(default_factory=dict)  # experiment -> its jobs
    unavailable: dict[str, str] = field(default_factory=dict)  # experiment -> why it has no results
    tunings: dict = field(default_factory=dict)  # experiment -> its claims.tuning.Tuning
    axes: dict = field(default_factory=dict)  # a regime map's experiment -> (its axes, their centre values)
    stamp: str | None = None  # the plan cache's fingerprint of the code and configs it was made with
    # A tuned experiment -> the (a, b, settings) of the checks that read B at A's chosen values (Check.matched).
    matched: dict = field(default_factory=dict)

    def all_jobs(self) -> list[Job]:
        return [job for jobs in self.jobs.values() for job in jobs]

    def still_tuning(self) -> set[str]:
        """Tuned experiments whose choice is not made for every arm yet: their final runs are not all planned."""
        return {e for e, t in self.tunings.items() if t.missing}

    def tuning_unfinished(self) -> dict[str, str]:
        """Tuned experiments whose choice is not made yet (trials without records), with why. A regime map's
        experiment is not among them: its cells whose arms are tuned are judged, the others reported not run."""
        return {e: self.tunings[e].missing for e in self.still_tuning() if e not in self.axes}

    def mark_unavailable(self) -> None:
        """Mark, with why, every experiment whose data set cannot be had here (missing files, offline):
        its claims are reported as not run rather than stopping the command (the paper profile's CIFAR-10
        claims where only MNIST is at hand). Raises the DataError when no experiment has its data: then
        the command's input is wrong, not one data set missing."""
        errors = []
        for experiment, jobs in self.jobs.items():
            try:
                for job in jobs:
                    job.run_dir  # noqa: B018 - the run's id needs its data's digest
            except DataError as error:
                self.unavailable[experiment] = str(error)
                errors.append(error)
                for job in jobs:
                    job.unavailable = str(error)
        if errors and len(errors) == len(self.jobs):
            raise errors[0]

    def planned_runs(self) -> "pd.DataFrame":
        """One row per planned run and setting it is planned under: its flattened config (the columns records
        have), experiment and seed, so that a check's selectors can count the runs each side should have, the
        setting, and every setting of the run."""
        import pandas as pd

        rows = [{**flatten(config_tree(job.config), "."), "experiment": job.experiment, "seed": job.config.seed,
                 "setting": setting, "settings": job.settings} for job in self.all_jobs()
                for setting in job.settings or ("",)]
        return pd.DataFrame(rows)



def plan(claims: list[Claim], profile: str, overrides: list[str]) -> Plan:
    """Compose and validate every job of every experiment the claims rest on (raises SparsebenchError
    with one line for the first bad one, before anything runs). The experiments are composed side by
    side in forks of this process, one per core (up to 8): Hydra composing each is most of the time;
    each one composed is kept (claims.plancache) and read back by the next plan with the same code,
    configs and settings."""
    from sparsebench.claims import plancache

    result = Plan()
    experiments = list(dict.fromkeys(e for claim in claims for e in claim.experiments_for(profile)))
    with hydra_configs():
        stamp = plancache.stamp(overrides)
        # Where the records go reaches no run's settings but their folder: a plan kept for one results folder
        # serves any other (a first plan in an empty folder is read back, not composed again).
        where = [o for o in overrides if o.startswith("results_dir=") and "${" not in o][-1:]
        keyed = [o for o in overrides if not o.startswith("results_dir=")] + ["results_dir=<given>"] if where else overrides
        keys = {e: plancache.entry(e, profile, keyed) for e in experiments}
        kept = {e: _moved(jobs, where) for e in experiments
                if stamp and (jobs := plancache.read(stamp, keys[e])) is not None}
        missing = [e for e in experiments if e not in kept]
        fresh = dict(zip(missing, forked_map(_compose_experiment, [(e, profile, overrides) for e in missing],
                                             min(len(os.sched_getaffinity(0)), 8), initializer=_one_thread)))
    for experiment, (outcome, value) in fresh.items():
        if outcome == "done" and stamp:
            plancache.write(stamp, keys[experiment], value)
    result.stamp = stamp
    composed = [("done", kept[e]) if e in kept else fresh[e] for e in experiments]
    for experiment, (outcome, value) in zip(experiments, composed):
        if outcome == "error":
            raise SparsebenchError(f"experiment {experiment}: {value}")
        given = {o.partition("=")[0] for o in [f"experiment={experiment}", f"profile={profile}", *overrides]}
        result.jobs[experiment] = [Job(experiment, [o for o in job if o.partition("=")[0] not in given], cfg, job)
                                   for job, cfg in value]
    from sparsebench.claims import tuning

    seeds_given = any(o.lstrip("+~").partition("=")[0] == "seed" for o in overrides)
    for experiment, jobs in result.jobs.items():
        if jobs and jobs[0].config.axes:
            result.axes[experiment] = axes_of(jobs[0].config)
        # The seeds an arm runs (tune.arms[].seeds, tune.shared_seeds) are the profile's; seeds given on the
        # command line are run in full by every arm.
        started = tuning.start(experiment, jobs, capped=not seeds_given) if jobs else None
        if started is None:
            continue
        arm_jobs = {id(job) for arm in started.arms for job in arm.jobs}
        result.jobs[experiment] = [job for job in jobs if id(job) in arm_jobs]
        tuned = {key for entry in started.spec.arms for key in entry.space}
        for override in overrides:
            key = override.lstrip("+~").partition("=")[0]
            if key in tuned:
                raise SparsebenchError(f"{override}: experiment {experiment} tunes {key} for each arm (its tune.arms); "
                                       f"leave {key} out, or give tune.arms=[] to run every arm untuned with it")
        result.tunings[experiment] = started
    # A map's own axis names name settings of its experiment (a typo would name nothing); a name for an axis the
    # grid of this command lacks (conf/map_axes: a grid of the user's without K4's epochs) is left unused.
    for claim in claims:
        named = claim.map.axis_names if claim.map is not None and claim.map.experiment in result.axes else {}
        if not named:
            continue
        axes = result.axes[claim.map.experiment][0]
        settings = flatten(config_tree(result.jobs[claim.map.experiment][0].config), ".")
        if set(named) - set(settings):
            raise ConfigError(f"claims/{claim.id}.map.axis_names", sorted(named),
                              f"must name settings of {claim.map.experiment} (its axes: {', '.join(axes)})",
                              "check the spelling, or drop axis_names")
    # A check read with B at A's chosen values (Check.matched): its A and B must be two arms of one tuned
    # experiment of the claim; nothing is matched where the claim's experiments are not tuned, nor in a
    # regime map's cells (they judge the primary check only).
    for claim in claims:
        for number, item in enumerate(claim.checks, start=1):
            tuned = [e for e in claim.experiments_for(profile) if e in result.tunings and e not in result.axes]
            if not item.matched or not tuned:
                continue
            found = [e for e in tuned if tuning.matched_arms(result.tunings[e], item.a, item.b, item.matched)]
            if len(found) != 1:
                raise SparsebenchError(
                    f"claims/{claim.id}.checks[{number}].matched={item.matched}: A {item.a} and B {item.b} must be two "
                    f"arms of one tuned experiment ({', '.join(tuned)}) whose configs have {', '.join(item.matched)}; "
                    f"found in {len(found)}: name one arm on each side, or drop matched")
            request = (item.a, item.b, item.matched)
            if request not in result.matched.setdefault(found[0], []):
                result.matched[found[0]].append(request)
    return result


def _moved(jobs: list, where: list[str]) -> list:
    """A kept plan's jobs with their records' folder set to ``where`` (the command's ``results_dir=``)."""
    if not where:
        return jobs
    from hydra.core.override_parser.overrides_parser import OverridesParser

    folder = str(OverridesParser.create().parse_override(where[0]).value())
    return [([where[0] if o.startswith("results_dir=") else o for o in job], dataclasses.replace(cfg, results_dir=folder))
            for job, cfg in jobs]


def tune(the_plan: Plan, execute_stage=None) -> dict[str, int]:
    """Run (``execute_stage(stage_plan)``; None: only read the records there are) every rung of every
    tuned experiment of the plan (``claims.tuning``), rung by rung across experiments, then the rounds beyond
    the grids' edges (``tuning.beyond_edges``), then add each tuned arm's final runs to the plan. Returns the
    trials' outcome counts."""
    from sparsebench.claims import tuning

    derive = deriver(the_plan.stamp)
    counts: dict[str, int] = {}
    tunings = [t for e, t in the_plan.tunings.items() if e not in the_plan.unavailable]
    for rung in range(max((len(t.spec.rungs) for t in tunings), default=0)):
        stage = Plan()
        for work in tunings:
            if rung < len(work.spec.rungs):
                jobs = tuning.trials_of(work, rung, derive)
                if jobs:
                    stage.jobs[f"{work.experiment}-tuning"] = jobs
        _run_stage(stage, execute_stage, counts)
        for work in tunings:
            if rung < len(work.spec.rungs):
                tuning.read_scores(work, rung)
    # Rounds beyond the grids' edges (tune.extend_edges), each read before the next is planned.
    for _ in range(max((t.spec.extend_edges for t in tunings), default=0)):
        stage = Plan()
        for work in tunings:
            jobs = tuning.beyond_edges(work, derive)
            if jobs:
                stage.jobs[f"{work.experiment}-tuning"] = jobs
        if not stage.jobs:
            break
        _run_stage(stage, execute_stage, counts)
        for work in tunings:
            tuning.read_scores(work, len(work.spec.rungs) - 1)
    for work in tunings:
        shared = tuning.shared_runs(work, the_plan.jobs[work.experiment])
        for job in shared:
            job.settings = job.settings or (tuning.SHARED,)
        the_plan.jobs[work.experiment] = shared + tuning.finals(work, shared, derive)
        for a, b, keys in the_plan.matched.get(work.experiment, []):
            the_plan.jobs[work.experiment] += tuning.matched_runs(work, a, b, keys, the_plan.jobs[work.experiment],
                                                                  derive)
    near_tie_runs(the_plan, derive)
    return counts


def _run_stage(stage: Plan, execute_stage, counts: dict[str, int]) -> None:
    """Run a stage of trials (``execute_stage``; None: only read records) and add its outcomes to ``counts``."""
    if execute_stage is not None and stage.jobs:
        for outcome, number in execute_stage(stage).items():
            counts[outcome] = counts.get(outcome, 0) + number


def near_tie_runs(the_plan: Plan, derive=None) -> int:
    """Add to the plan each tuned experiment's runs at its near-tied arms' runner-ups
    (``tuning.runner_up_runs``: with ``tune.confirm_near_ties``, once its final runs are done); the number
    added. ``tune`` calls it, and the command again after the final runs, which decide what is a near tie."""
    from sparsebench.claims import tuning

    derive = derive or deriver(the_plan.stamp)
    added = 0
    for experiment, work in the_plan.tunings.items():
        if experiment in the_plan.unavailable or experiment not in the_plan.jobs:
            continue
        more = tuning.runner_up_runs(work, the_plan.jobs[experiment], derive)
        the_plan.jobs[experiment] += more
        added += len(more)
    return added


def deriver(stamp: str | None = None):
    """``derive(job, settings, shown=None)``: a planned run with some settings changed (a tuning trial, a
    tuned arm's final run), its config checked again (``configure.with_settings``) rather than composed
    anew, and its command (for a launcher) the job's with those overrides. The arm's other seeds take the
    first one's checked config with their seed, as a sweep's jobs do (``sweep.validate_multirun``). A
    config file or override whose interpolation reads a changed setting would make Hydra's run differ: when
    one may (``sweep.named_in_config_interpolations``), Hydra composes the same command once per experiment
    (kept in the plan cache under ``stamp``) and must give the same run, or the plan stops with one line."""
    from sparsebench.configure import with_settings
    from sparsebench.identity import result_relevant

    checked: dict[tuple, RunConfig] = {}
    seen: dict[str, set[str]] = {}  # experiment -> the settings changed so far
    compared: set[str] = set()  # the experiments whose derived config Hydra has composed too

    def derive(job: Job, settings: dict, shown: tuple[str, ...] | None = None) -> Job:
        command = [o for o in job.command if o.lstrip("+~").partition("=")[0] not in settings]
        command += [f"{key}={override_text(value)}" for key, value in settings.items()]
        arm = (job.experiment, *(o for o in job.command if not o.startswith("seed=")), json.dumps(settings, default=str))
        if "seed" not in settings and arm in checked:
            config = dataclasses.replace(copy.deepcopy(checked[arm]), seed=job.config.seed)
        else:
            config = with_settings(job.config, settings)
            checked[arm] = config
        unseen = set(settings) - seen.setdefault(job.experiment, set())
        seen[job.experiment] |= unseen
        if unseen and job.experiment not in compared and named_in_config_interpolations(sorted(unseen), command):
            compared.add(job.experiment)
            (_, composed), = _composed_once(command, stamp)
            if result_relevant(composed) != result_relevant(config):
                raise SparsebenchError(f"experiment {job.experiment}: changing {', '.join(settings)} gives another run "
                                       f"than Hydra composes for `{' '.join(command)}`: an interpolation in its config "
                                       "files reads one of them; write the value out in the file")
        show = [key for key in settings if shown is None or key in shown]
        overrides = [o for o in job.overrides if o.partition("=")[0] not in settings]
        return Job(job.experiment, overrides + [f"{key}={override_text(settings[key])}" for key in show], config,
                   command)

    return derive


def _composed_once(command: list[str], stamp: str | None) -> list:
    """``compose_jobs(command)``, kept in the plan cache under ``stamp`` (None: composed every time)."""
    from sparsebench.claims import plancache

    key = plancache.entry("derived", "", command)
    kept = plancache.read(stamp, key) if stamp else None
    if kept is None:
        with hydra_configs():
            kept = compose_jobs(command, multirun=False)
        if stamp:
            plancache.write(stamp, key, kept)
    return kept


def _compose_experiment(task: tuple[str, str, list[str]]) -> tuple[str, object]:
    """("done", every job of one experiment with its validated config), or ("error", the one-line why)."""
    from sparsebench.cli import explain

    experiment, profile, overrides = task
    line = [f"experiment={experiment}", f"profile={profile}", *overrides]
    try:
        try:
            jobs = compose_jobs(line, multirun=True)
        except NullParent as error:
            # The command's tune.* settings are for the tuned experiments: one without tuning is run without them.
            if error.parent != "tune":
                raise
            line = [o for o in line if not o.lstrip("+~").startswith("tune.")]
            jobs = compose_jobs(line, multirun=True)
        # A regime map's experiment: each axis swept in turn, the other settings at the experiment's own.
        axes, center = axes_of(jobs[0][1]) if jobs else ({}, {})
        for key, values in axes.items():
            others = [v for v in values if json.dumps(v) != json.dumps(center[key])]
            if others:
                jobs += compose_jobs([*line, f"{key}=" + ",".join(override_text(v) for v in others)], multirun=True)
        return "done", jobs
    except (HydraException, OmegaConfBaseException, SparsebenchError) as error:
        return "error", explain(error)


def axes_of(config: RunConfig) -> tuple[dict[str, list], dict[str, object]]:
    """(a regime map experiment's axes, the experiment's own value of each: the map's centre)."""
    flat = flatten(config_tree(config), ".")
    return dict(config.axes), {key: flat.get(key) for key in config.axes}


def _one_thread() -> None:
    """In a fork: torch on one thread. OpenMP's thread pool does not survive a fork, and a parallel
    operation on it (the masks drawn while checking a model) can hang; the forks' work is small anyway."""
    import torch

    torch.set_num_threads(1)


def _run_job(config: RunConfig, threads: int | None, overrides: list[str] | None = None) -> str:
    """One job in this process or a worker process: its outcome, or ``unavailable: <why>`` when its data
    set is missing. ``overrides`` name the run (its trackers' run name, its row of the experiment's index).
    In a worker process (``threads`` given) the run shows no bars: the command's own bar over the runs
    is the one on the terminal, and bars of processes side by side would be left between its lines."""
    import torch

    die_with_launcher()
    if threads:
        torch.set_num_threads(threads)
        # progress is neutral: the run's identity, and so its folder, stay the same
        config = dataclasses.replace(config, progress="off")
    try:
        return run(config, overrides=overrides or ()).status
    except SparsebenchError as error:
        return f"unavailable: {error}"


def execute(the_plan: Plan, jobs: int = 1, launcher=None, poll_seconds: float = 2.0) -> dict[str, int]:
    """Run every job whose record is not completed, and count the outcomes: ``jobs`` at a time in this
    machine's worker processes (each with its share of the CPU cores), or through ``launcher`` (a
    ``sparsebench.launch.HydraLauncher``). An experiment whose data set is missing is marked
    unavailable (with the reason). Runs held by another process are waited for, then their records
    used (or, if that process let go without one, run here); a launched run that ends without a record
    counts as missing."""
    # A run that two experiments plan (a regime map's centre is its standard experiment's runs) runs once.
    runs = list({job.run_dir.path if job.unavailable is None else id(job): job
                 for job in the_plan.all_jobs()}.values())
    done = {id(job) for job in runs if job.done}  # each record read and checked once
    counts: dict[str, int] = {"reused": len(done)}
    pending = seed_major([job for job in runs if id(job) not in done and job.unavailable is None], the_plan)
    if len(pending) + counts["reused"] < len(runs):
        counts["unavailable"] = len(runs) - len(pending) - counts["reused"]
    how = (f" through hydra/launcher={launcher.name}" if launcher is not None else
           f", {jobs} at a time" if jobs > 1 else "")
    log.info("%d runs needed: %d completed before, %d to run%s", len(runs), counts["reused"],
             len(pending), how if pending else "")
    while pending:
        if launcher is not None:
            outcomes = _through_launcher(launcher, pending, poll_seconds)
        else:
            outcomes = _here(the_plan, pending, jobs)
        held = []
        for job in pending:
            status = outcomes.get(id(job), "not run")
            if status.startswith("unavailable: "):
                the_plan.unavailable[job.experiment] = status.partition(": ")[2]
                status = "unavailable"
            if status == "busy":
                held.append(job)
            elif status != "not run":
                counts[status] = counts.get(status, 0) + 1
        pending = _wait_for(held, counts, poll_seconds) if held else []
    if counts.get("missing"):
        log.error("%d runs ended without a record (a lost node, a cancelled or killed job); run the same command "
                  "again to run them", counts["missing"])
    return counts


def seed_major(pending: list[Job], the_plan: Plan) -> list[Job]:
    """The pending jobs in the order they run: every experiment's first seed, then every experiment's second,
    and so on (each experiment's seeds ranked among all it plans, so one behind catches up first), in plan
    order within a seed. A profile of many hours stopped at any point then holds every arm on about the same
    seeds, and its report compares them on those, each check naming how many of the planned runs it read;
    in plan order it would hold some experiments whole and others not begun.

    The runs only a secondary row reads (a tuned experiment's shared-setting row, the runner-ups) go after
    every run of the primary comparison, seed by seed again: tuned against tuned is each claim's answer, so
    a profile stopped part way answers it first."""
    from sparsebench.claims import tuning

    rank = {}
    for jobs in the_plan.jobs.values():
        place = {seed: i for i, seed in enumerate(sorted({job.config.seed for job in jobs}))}
        rank.update({id(job): place[job.config.seed] for job in jobs})

    def secondary(job: Job) -> bool:  # planned under settings, none of them the tuned one
        return bool(job.settings) and tuning.TUNED not in job.settings

    return sorted(pending, key=lambda job: (secondary(job), rank[id(job)]))


def _here(the_plan: Plan, pending: list[Job], jobs: int) -> dict[int, str]:
    """Outcomes (by id of the job) of the pending jobs run in this process or its worker processes. With
    workers, every experiment's jobs share one pool: a pool per experiment left a core idle at each
    experiment's last run and started its workers again (a new interpreter and torch each), about half a
    minute at each of some twenty experiment boundaries of the standard profile's stages. In this process,
    after a missing data set the rest of that experiment is not tried."""
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    outcomes: dict[int, str] = {}
    experiment_of = {id(job): experiment for experiment, jobs in the_plan.jobs.items() for job in jobs}
    todo = [(experiment_of[id(job)], job) for job in pending]
    totals = {experiment: sum(e == experiment for e, _ in todo) for experiment in the_plan.jobs}
    done: dict[str, int] = {}
    skipped: set[str] = set()  # in this process: experiments whose data set turned out missing
    started = time.perf_counter()
    # One bar over every run to do, with its ETA, on a terminal (plain lines elsewhere); log lines are
    # written above it. Runs in this process show their own bars beneath it; worker processes show none.
    with showing(progress_enabled("auto")), bar(desc="claims runs", total=len(todo), unit="run",
                                               leave=True) as overall:
        if jobs > 1:
            # Each run in a worker process; a worker killed under its run (the OOM killer's SIGKILL) costs
            # that run only: it is named and counted missing, and the others go on.
            statuses = run_each(_run_job, [(job.config, threads, job.command) for _, job in todo], jobs)
        else:
            statuses = ((index, _run_job(job.config, None, job.command)) for index, (experiment, job)
                        in enumerate(todo) if experiment not in skipped)
        for index, status in statuses:
            experiment, job = todo[index]
            done[experiment] = number = done.get(experiment, 0) + 1
            where = f"[{experiment} {number}/{totals[experiment]}] {' '.join(job.overrides)}"
            if isinstance(status, Lost):
                log.error("%s: its worker process was %s; no record (run the same command again to run it)",
                          where, status)
                status = "missing"
            else:
                log.info("%s: %s (%s)", where, status,
                         pace(time.perf_counter() - started, len(outcomes) + 1, len(todo)))
            outcomes[id(job)] = status
            overall.update(1)
            if status.startswith("unavailable: ") and jobs == 1:
                skipped.add(experiment)  # the same data set is missing for the rest
    return outcomes


def pace(elapsed: float, finished: int, total: int) -> str:
    """How far a plan's runs have come, for log lines (a log file has no bar): ``3 of 88 here; about 13h40m
    left at this pace``, the time left being the time so far per finished run times the runs left (the runs
    of a profile differ in length, and a stage's order mixes them: an estimate, said as one)."""
    if finished >= total:
        return f"{finished} of {total} here"
    return f"{finished} of {total} here; about {duration(elapsed / finished * (total - finished))} left at this pace"


def _through_launcher(launcher, pending: list[Job], poll_seconds: float) -> dict[int, str]:
    """Outcomes (by id of the job) of the pending jobs sent through a Hydra launcher, from what each
    job reported and, for a job that reported nothing (its process was lost), from its run folder."""
    progress = _Progress(pending, poll_seconds)
    progress.start()
    try:
        launcher.launch([job.command for job in pending])
    except Exception as error:  # noqa: BLE001 - whatever the launcher raises for a lost or cancelled job
        log.error("hydra/launcher=%s: %s: %s", launcher.name, type(error).__name__,
                  str(error).strip().splitlines()[0] if str(error).strip() else "")
    finally:
        progress.stop()
    reported = launcher.outcomes()
    outcomes = {}
    for job in pending:
        status, message = reported.get(tuple(job.command), (None, ""))
        if status == "error":
            status = f"unavailable: {message}"
        elif status is None:  # the job's process ended without a word
            status = ("busy" if job.run_dir.held() else job.run_dir.status() or "missing")
        outcomes[id(job)] = status
    return outcomes


def _wait_for(held: list[Job], counts: dict[str, int], poll_seconds: float) -> list[Job]:
    """Wait until no other process holds these runs, saying how many are awaited; count the records
    they leave, and return the runs left without one (to run here)."""
    waiting, again = list(held), []
    said, last = None, 0.0
    started = time.perf_counter()
    while waiting:
        # Said before each look, so the first is always said: the other process may finish the runs
        # before that look, and the user should still learn why they were not run here.
        now = time.perf_counter()
        if len(waiting) != said or now - last > 30:
            log.info("waiting for %d run%s that another process is running (%s); %.0f s so far", len(waiting),
                     "s" if len(waiting) > 1 else "", ", ".join(job.run_id for job in waiting[:5])
                     + (", ..." if len(waiting) > 5 else ""), now - started)
            said, last = len(waiting), now
        for job in [job for job in waiting if not job.run_dir.held()]:
            waiting.remove(job)
            status = job.run_dir.status()
            if status == "completed":
                counts["reused"] += 1
            elif status == "failed":
                counts["failed"] = counts.get("failed", 0) + 1
            else:
                again.append(job)
        if waiting:
            time.sleep(poll_seconds)
    if again:
        log.info("%d run%s left without a record by the other process: running %s here", len(again),
                 "s" if len(again) > 1 else "", "them" if len(again) > 1 else "it")
    return again


class _Progress(threading.Thread):
    """While a launcher runs jobs elsewhere, one line when their records change (and at least every
    minute): how many are done, running, and not running (yet to start, or lost)."""

    def __init__(self, jobs: list[Job], poll_seconds: float):
        super().__init__(daemon=True, name="claims-progress")
        self.jobs, self.poll_seconds = jobs, poll_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        started, said, last = time.perf_counter(), None, 0.0
        while not self.stopped.wait(self.poll_seconds):
            statuses = [job.run_dir.status() for job in self.jobs]
            running = sum(status is None and job.run_dir.held() for job, status in zip(self.jobs, statuses))
            done = {s: statuses.count(s) for s in ("completed", "failed")}
            state = (done["completed"], done["failed"], running)
            now = time.perf_counter()
            if state != said or now - last > 60:
                log.info("%d of %d runs done (%d completed, %d failed), %d running, %d not running; %.1f min",
                         sum(done.values()), len(self.jobs), *state,
                         len(self.jobs) - sum(done.values()) - running, (now - started) / 60)
                said, last = state, now

    def stop(self) -> None:
        self.stopped.set()
        self.join()
