"""``sparsebench-claims``: run what the claims need, then write the claims report.

    sparsebench-claims [profile=smoke|standard|cnn|map|paper] [claims=D1,K1,...] [jobs=N|auto] [launcher=NAME]
                       [out=DIR] [OVERRIDE ...]

profile   smoke (default; seconds per run on the embedded data, CI: verdicts mean nothing), standard (every
          MNIST claim on converged MLPs, each arm tuned alike on validation, 5-9 seeds: 75 to 110 minutes on 2
          cores, by their vector units), cnn (the MNIST claim on a CNN, G1, tuned and seeded as standard: 35
          to 50 minutes), map (each scale-dependent claim across width, training images and epochs, tuned in
          every cell: its regime map, 3.3 to 5.5 hours on 2 cores by their vector units, resumable;
          map_axes=wide a grid for a GPU or a cluster), paper (the papers' own networks and budgets, and their
          tables beside ours: a GPU or a cluster).
claims    the claims to run, comma-separated (default: every claim of the profile; the paper protocols
          P-KW, P-DO, P-DC under profile=paper).
jobs      runs at a time, each with its share of the cores; auto (default): one when a GPU is used, else one
          per core up to 8.
out       where the report goes (default <results_dir>/claims-<profile>): CLAIMS.md, claims.html,
          claims.json and figures/.
run       true (default): run what is missing first; false: report from the records there are, every
          planned run without one counted as missing.

launcher  send the missing runs through a Hydra launcher instead, as `sparsebench -m hydra/launcher=NAME`
          does (slurm, submitit_local, joblib, local, ray where its plugin is installed), wait for them, then
          report; hydra.launcher.*=... settings go to the launcher (hydra.launcher.partition=gpu). Run the same
          command again after a lost node or a cancelled job: it runs what is missing.

Every other key=value is an override given to every run, read as `sparsebench` reads it (Hydra's override
grammar: quote a value with spaces, commas or brackets, results_dir='runs (copy)'): dataset.root=...,
device=cpu, results_dir=..., retry_failed=true; tune.* settings (tune.confirm_near_ties=true: read each near
tie at its runner-up too; tune.extend_edges=0: mark a choice at a grid's edge without trying beyond it) go to
the tuned experiments only; not name= or experiment= (each claim's experiment names its own folder). Completed
records are reused, so running the same command again resumes; runs go seed by seed across the experiments
(every arm's first seed, then every arm's second), so a run stopped part way holds every arm on about the same
seeds, and its report (run=false) names how many planned runs each check read. Runs that another process is
running are waited for, never left out.

--help prints this, --version the version of sparsebench (and of Python, torch and Hydra).

Exit status: 0 the report is written; 1 a run failed or ended without a record, or some experiments' data
could not be had (their claims say why); 2 bad input (one line says what; missing data for every claim
included), nothing run; 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.override_parser.types import ChoiceSweep

from sparsebench import __version__
from sparsebench.atomic import writable_folder
from sparsebench.claims.catalogue import PROFILES, load_catalogue
from sparsebench.claims.evaluate import (
    NOT_RUN,
    ClaimResult,
    correct_for_multiplicity,
    decisive_check,
    evaluate,
    held,
    with_map_figures,
)
from sparsebench.claims.overview import plot_claims_overview
from sparsebench.claims.page import (
    effect_text,
    outside_text,
    start_report,
    verdict_text,
    write_report,
)
from sparsebench.claims.plan import execute, near_tie_runs, plan, tune
from sparsebench.commands import (
    parse_overrides,
    printed_help_or_version,
    refuse_null_groups,
    run_command,
    split_settings,
    text_setting,
)
from sparsebench.errors import SparsebenchError
from sparsebench.identity import neutral_setting
from sparsebench.locking import exclusive
from sparsebench.report.aggregate import load_records
from sparsebench.schemas import RunConfig
from sparsebench.workers import mark_launcher

log = logging.getLogger("sparsebench")
PROG = "sparsebench-claims"
OWN_KEYS = ("profile", "claims", "jobs", "launcher", "out", "run")
# Settings of a run that the claims set themselves: given here, they would send every run elsewhere.
NOT_HERE = {"name": "each claim's experiment names its own folder (<results_dir>/<experiment>/)",
            "experiment": "each claim names the experiments it rests on; choose claims with claims=..."}


def parse(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """(the command's own settings, the overrides for every run), read as Hydra reads a command line."""
    given, rest = split_settings(parse_overrides(argv), OWN_KEYS, PROG)
    refuse_null_groups(rest)
    own = {"profile": text_setting("profile", given.get("profile"), "smoke"), "claims": "", "jobs": "auto",
           "launcher": text_setting("launcher", given.get("launcher")), "out": text_setting("out", given.get("out")),
           "run": given.get("run", True)}
    claims = given.get("claims", "")
    values = claims.list if isinstance(claims, ChoiceSweep) else claims if isinstance(claims, list) else [claims]
    own["claims"] = ",".join(str(value) for value in values)
    if own["profile"] not in PROFILES:
        raise SparsebenchError(f"profile={own['profile']!r} is not allowed: choose one of {', '.join(PROFILES)}")
    if not isinstance(own["run"], bool):
        raise SparsebenchError(f"run={own['run']!r} is not allowed: true (run what is missing, the default) or false "
                               f"(report from the records there are)")
    jobs = given.get("jobs", "auto")
    if jobs != "auto" and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise SparsebenchError(f"jobs={jobs!r} is not allowed: give a positive number of parallel runs or auto")
    own["jobs"] = str(jobs)
    run_keys = {f.name for f in dataclasses.fields(RunConfig)} | {"hydra"}
    for override in rest:
        root = override.key_or_group.split(".")[0].split("/")[0]
        if root in NOT_HERE:
            raise SparsebenchError(f"{override.input_line}: {PROG} does not take {root}: {NOT_HERE[root]}")
        if root not in run_keys:
            raise SparsebenchError(f"{override.input_line!r}: {root!r} is neither a setting of {PROG} "
                                   f"({', '.join(OWN_KEYS)}) nor of a run ({', '.join(sorted(run_keys - {'hydra'}))}); "
                                   "check the spelling")
    return own, [override.input_line for override in rest]


def results_dir(argv: list[str]) -> Path:
    """Where the runs of these overrides write their records: the last results_dir given, as Hydra reads it."""
    given = [o for o in parse_overrides(argv) if o.key_or_group == "results_dir"]
    folder = text_setting("results_dir", given[-1].value()) if given else RunConfig.results_dir
    return Path(folder).expanduser().resolve()


def parallel_jobs(setting: str, overrides: list[str]) -> int:
    """How many runs at a time: ``setting`` as given, or for ``auto`` one on a GPU, else one per core (at most 8)."""
    if setting != "auto":
        return int(setting)
    import os

    import torch

    on_cpu = any(o in ("device=cpu", "device=mps") for o in overrides) or not torch.cuda.is_available()
    return min(os.cpu_count() or 1, 8) if on_cpu else 1


def choose(catalogue: dict, wanted: str, profile: str) -> tuple[list, list]:
    """(claims to run under the profile, claims named or listed that the profile leaves out)."""
    if wanted:
        ids = [i.strip() for i in wanted.split(",") if i.strip()]
        unknown = [i for i in ids if i not in catalogue]
        if unknown:
            raise SparsebenchError(f"claims={','.join(unknown)} is not in the catalogue: choose among "
                                   f"{', '.join(catalogue)} (files in conf/claims/)")
        chosen = [catalogue[i] for i in ids]
    else:
        chosen = [c for c in catalogue.values() if c.kind == "claim" or profile == "paper"]
    def runs(claim) -> bool:  # the map profile answers the claims that have a regime map
        return profile in claim.profiles and (profile != "map" or claim.map is not None)

    return [c for c in chosen if runs(c)], [c for c in chosen if not runs(c)]


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, lambda: _claims(sys.argv[1:] if argv is None else argv),
                       "run the same command to resume (completed runs are kept)")


def _claims(argv: list[str]) -> int:
    if printed_help_or_version(argv, __doc__, PROG):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    started = time.perf_counter()
    own, overrides = parse(argv)
    profile = own["profile"]
    # Hydra's own settings (hydra.launcher.*) are the launcher's; the rest go to every run.
    hydra_settings = [o for o in overrides if o.lstrip("+~").startswith("hydra")]
    overrides = [o for o in overrides if o not in hydra_settings]
    if hydra_settings and not own["launcher"]:
        raise SparsebenchError(f"{hydra_settings[0]} is a launcher setting: give launcher=NAME with it")
    selected, left_out = choose(load_catalogue(), own["claims"], profile)
    folder = results_dir(overrides)
    out = Path(own["out"]).expanduser().resolve() if own["out"] else folder / f"claims-{profile}"
    the_plan = plan(selected, profile, overrides)
    writable_folder(out, "out")
    launcher = None
    if own["launcher"]:
        from sparsebench.launch import HydraLauncher

        # The launcher's own config reads results_dir alone (its sweep folder); the other overrides are each
        # job's, and some (tune.arms=[]) name groups that only an experiment's config holds.
        launcher = HydraLauncher(own["launcher"], hydra_settings,
                                 [o for o in overrides if o.partition("=")[0] == "results_dir"])

    the_plan.mark_unavailable()
    if own["run"]:
        mark_launcher()
    parallel = parallel_jobs(own["jobs"], overrides)
    # Tuned experiments first choose each arm's setting on validation (claims.tuning): their final runs
    # are known only then.
    trials = tune(the_plan, (lambda stage: execute(stage, jobs=parallel, launcher=launcher)) if own["run"] else None)
    if own["run"]:
        counts = execute(the_plan, jobs=parallel, launcher=launcher)
        # The final runs' seeds tell which choices were near ties (tune.confirm_near_ties): their runner-ups next.
        if near_tie_runs(the_plan):
            for outcome, number in execute(the_plan, jobs=parallel, launcher=launcher).items():
                if outcome != "reused":
                    counts[outcome] = counts.get(outcome, 0) + number
    else:  # a report of what is there: every planned run without a record is named as missing in its verdict
        done = sum(job.done for job in the_plan.all_jobs())
        counts = {"reused": done, "not run": len(the_plan.all_jobs()) - done}
        log.info("%d runs planned: %d completed, %d not run (run=false)", len(the_plan.all_jobs()), done,
                 counts["not run"])
    # A trial lost without a record counts as any lost run does; a failed trial (a learning rate that
    # diverged) is an outcome of the search, shown in the tuning table, not a failure of the command.
    for outcome, number in trials.items():
        if outcome in ("missing", "error"):
            counts[outcome] = counts.get(outcome, 0) + number
    counts.update({f"tuning trial{'' if number == 1 else 's'} {outcome}": number
                   for outcome, number in trials.items() if number})
    df, skipped = planned_records(folder, the_plan)
    planned_runs = the_plan.planned_runs()
    with report_lock(out):
        start_report(out)  # the figures change first: the report is unfinished from here until its manifest
        not_ready = {**the_plan.unavailable, **the_plan.tuning_unfinished()}
        results = [evaluate(claim, df, out / "figures", not_ready, profile, planned_runs, the_plan.axes,
                            the_plan.still_tuning())
                   if df is not None else ClaimResult(claim, NOT_RUN, reason="no completed record") for claim in selected]
        results = correct_for_multiplicity(results)  # Holm across the report's primary checks
        results = with_map_figures(results, out / "figures")
        results += [ClaimResult(claim, NOT_RUN, reason=f"not part of the {profile} profile"
                                + (", which answers the claims that have a regime map" if profile == "map" else ""),
                                outside_profile=True)
                    for claim in left_out]
        given = shown_settings(overrides)
        written = _write_report(results, out, profile, given, the_plan, counts, folder, started, skipped)

    rows = held(results)
    width = max(len(r.claim.id) for r in rows) if rows else 4
    for result in rows:
        decisive = decisive_check(result)
        if decisive is not None:
            detail = f"{decisive.metric}: {effect_text(decisive)}"
        elif result.reason or not result.planned:
            detail = result.reason
        else:  # a paper's table: what it rests on
            detail = f"{result.runs} of {result.planned} planned runs, table in the report"
        print(f"{result.claim.id:<{width}}  {verdict_text(result):<23}  {detail}")
    if outside := outside_text(results):
        print(outside)
    runs = len(the_plan.all_jobs())
    if profile == "smoke":  # the page opens with the same warning; a terminal reader sees only these lines
        print("smoke profile: these verdicts show that the pipeline runs end to end, not what the papers claim "
              "(one epoch on 2,000 images, two seeds); run profile=standard or profile=paper for verdicts",
              file=sys.stderr)
    print(f"report: {written[0]} (and {written[1].name}, {written[2].name}); {runs} runs, "
          f"wall time {(time.perf_counter() - started) / 60:.1f} min", file=sys.stderr)
    return 1 if counts.get("failed") or counts.get("error") or counts.get("missing") or the_plan.unavailable else 0


def report_lock(out: Path):
    """Hold the report folder alone: a second claims command writing the same report waits, so that
    two processes never write one report folder at once."""
    out.mkdir(parents=True, exist_ok=True)
    return exclusive(out / ".lock", wait=True,
                     on_wait=lambda: log.info("another sparsebench-claims is writing %s; waiting for it", out))


# Settings that change no run's numbers but which runs the plan makes and reads: named in a report's header.
PLAN_SETTINGS = ("tune", "map_axes", "axes")


def shown_settings(overrides: list[str]) -> list[str]:
    """The settings a report's header names: those that change a run's numbers, and those of PLAN_SETTINGS
    (map_axes=wide); not where or how runs go (results_dir, dataset.root, device, threads: fields the
    schemas declare neutral), so a committed page shows no folder of the machine that made it."""
    def key(override: str) -> str:
        return override.lstrip("+~").partition("=")[0]
    return [o for o in overrides if key(o).split(".")[0].split("/")[0] in PLAN_SETTINGS or not neutral_setting(key(o))]


def _write_report(results, out: Path, profile: str, given: list[str], the_plan, counts: dict, folder: Path,
                  started: float, skipped: list) -> list[Path]:
    """The report's files; ``given``: the settings the command gave every run (tune.confirm_near_ties=true),
    which the header names, so that two reports of one profile's records tell what made them differ."""
    minutes = (time.perf_counter() - started) / 60
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    runs = len(the_plan.all_jobs())
    outcomes = ", ".join(f"{number} {outcome}" for outcome, number in counts.items() if number)
    # The page travels (committed, copied): the folder by its name, not the absolute path it was made in.
    with_settings = f" with `{' '.join(given)}`" if given else ""
    header = (f"Profile `{profile}`{with_settings}, {runs} runs planned ({outcomes or 'none run'}) in `{folder.resolve().name}`; "
              f"sparsebench {__version__}, {stamp}, wall time {minutes:.1f} min.")
    unused = [_within(f"{s.path}: {s.reason}", folder) for s in skipped]
    overview = plot_claims_overview(results, out / "figures")
    read = {e for r in results for e in r.experiments}
    tunings = [t for e, t in the_plan.tunings.items() if e in read]
    return write_report(results, out, header, unused, overview,
                        {"profile": profile, "settings": given, "runs": runs, "wall_minutes": minutes, "sparsebench": __version__,
                         "date": stamp, "counts": counts, "records_not_used": unused,
                         "overview": [str(p.relative_to(out)) for p in overview]}, tunings)


def _within(text: str, folder: Path) -> str:
    """``text`` with the paths in the results folder written relative to it, as the report names them (a
    committed report shows no folder of the machine that made it)."""
    for prefix in dict.fromkeys([str(folder.resolve()), str(folder.absolute()), str(folder)]):
        text = text.replace(prefix.rstrip("/") + "/", "")
    return text


def planned_records(folder: Path, the_plan) -> tuple[pd.DataFrame | None, list]:
    """The completed records of the planned runs, and the record files that could not be used for them
    (damaged, invalid, failed, or a copy of one of their records elsewhere), with why.

    A record is read once for each way the plan uses it: under each experiment that plans it (a regime
    map's centre is its standard experiment's runs, in the same folder) and each setting it is planned
    under (a tuned arm that chose the shared setting), so that every check reads exactly its own runs."""
    if not folder.exists():
        return None, []
    df, skipped = load_records(folder, deduplicate=False)
    uses: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for job in the_plan.all_jobs():
        if job.unavailable is None:
            for setting in job.settings or ("",):
                uses.setdefault((job.config.name, job.run_id), []).append((job.experiment, setting))
    if not df.empty:
        df = df.assign(use=[uses.get((e, r), []) for e, r in zip(df["experiment"], df["run_id"])])
        df = df[df["use"].map(bool)].explode("use", ignore_index=True).copy()
        df = df.assign(experiment=[use[0] for use in df["use"]], setting=[use[1] for use in df["use"]]).drop(
            columns="use").copy()  # one block again: the records' many columns leave the frame fragmented
    ours = [s for s in skipped if (Path(s.path).parent.parent.name, Path(s.path).parent.name) in uses
            or s.identity in uses]
    return df, ours

if __name__ == "__main__":
    sys.exit(main())
