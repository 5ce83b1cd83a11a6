"""Every arm of a comparison tuned alike, on the validation split, before its final runs.

An experiment with a ``tune`` block (``conf/tune/``, ``schemas.TuneConfig``) has arms: the values of its
sweep other than the seed (``regularizer=dropout``, ``regularizer.p=0.2``). Each arm gets a grid of
settings (its learning rate, and where the claim allows its own knob: dropout's p, L1's strength, k),
every arm's grid with the same number of points, so every arm has the same tuning budget. The grid is
searched by successive halving: every point is trained for the first rung's share of the experiment's
epochs on a seed of its own (``tune.seed``, no final run's), the best 1/``eta`` of them (rounded up) by ``tune.metric``
(a validation metric: the test set is never looked at) go on to the next rung, and the last rung trains
at the experiment's own budget. Each arm's best point there is its chosen setting, and its final runs
(every seed of the sweep, or its lowest ``tune.arms[].seeds``) use it. Trials measure only what the choice
reads (``tune.trial``) and write their records under ``<the experiment's folder>-tuning/``, apart from the
final runs.

The choice is read again from the trials' records each time a plan is made, so a report made later
(``run=false``) chooses what the run did, and a rerun resumes where the trials stopped. The experiment's
shared-setting runs (every arm at the values the experiment file gives) stay planned too (unless
``tune.shared`` is false): the claims report compares tuned arms first and the shared setting as a
secondary row. Trials and final runs are the arm's planned runs with settings changed
(``claims.plan.deriver``), not new Hydra compositions.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any, Callable, Protocol

from sparsebench.errors import ConfigError, SparsebenchError
from sparsebench.records.paths import flatten
from sparsebench.schemas import RunConfig, TuneArm, TuneConfig, config_tree
from sparsebench.sweep import override_text


class Job(Protocol):
    """A planned run as tuning reads it (``claims.plan.Job``: the plan imports this module, not the reverse)."""

    experiment: str
    overrides: list[str]
    config: RunConfig
    settings: tuple[str, ...]

    @property
    def run_dir(self) -> Any: ...

    @property
    def run_id(self) -> str: ...

    @property
    def done(self) -> bool: ...


NEAR_TIE_Z = 1.96  # a near tie: a gap inside the two-sided 95% range of seed noise, as the report's intervals
TUNED, SHARED = "tuned", "shared"  # the settings a final run is planned under (Job.settings)
MATCHED = "matched"  # B's runs at A's chosen values of a check's ``matched`` settings (matched_setting)
RUNNER_UP = "runner-up"  # near-tied arms at their runner-ups, the other arms' final runs (runner_up_runs)
Derive = Callable[..., Job]  # (job, settings, shown keys): a planned run with settings changed (claims.plan.deriver)


@dataclass
class Trial:
    """One point of an arm's grid trained at one rung."""

    point: dict[str, Any]  # setting -> value
    rung: int
    epochs: int
    job: Job
    score: float | None = None  # tune.metric of its record; None: no record yet; NaN: the run failed
    beyond: int = 0  # the round beyond the grid's edge it was tried in (beyond_edges); 0: a point of the grid


EDGE_MARKS = ("edge", "one of two", "edge, beyond the grid")  # ArmTuning.edge's marks of a value at an edge


@dataclass
class ArmTuning:
    """One arm: its grid, its trials rung by rung, and the point chosen (None until the last rung is read)."""

    arm: dict[str, str]  # sweep key -> value as the sweep writes it
    points: list[dict[str, Any]]
    jobs: list[Job]  # the arm's planned runs at the experiment's own setting, one per seed it runs
    trials: list[list[Trial]] = field(default_factory=list)  # per rung
    chosen: dict[str, Any] | None = None
    finals: list[Job] = field(default_factory=list)  # its final runs at the chosen point (tuning.finals)
    blocked: dict[str, str] = field(default_factory=dict)  # setting -> why no step beyond its edge was tried

    def tried(self, key: str) -> list[float]:
        """The numbers tried for ``key``, the grid's and those beyond it, ascending."""
        return sorted(({scalar(t.point[key]) for rung in self.trials for t in rung}
                       | {scalar(p[key]) for p in self.points}) - {None})

    def edge(self, key: str) -> str:
        """How the chosen value of ``key`` sits among the values tried: "edge" (the smallest or largest of
        three or more), "one of two" (each of two is an edge: nothing beyond it can be seen), "beyond the
        grid" (found beyond the grid's edge, inside what was tried), "edge, beyond the grid" (found there and
        still the last value tried), else ""."""
        value = scalar((self.chosen or {}).get(key))
        values = self.tried(key)
        if value is None or len(values) < 2:
            return ""
        beyond = value not in {scalar(p[key]) for p in self.points}
        if value in (values[0], values[-1]):
            return "edge, beyond the grid" if beyond else "edge" if len(values) >= 3 else "one of two"
        return "beyond the grid" if beyond else ""

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.arm.items()) or "every run"

    def best(self) -> Trial | None:
        """The chosen trial of the last rung (None until the choice is made)."""
        return next((t for t in (self.trials[-1] if self.trials else []) if t.point == self.chosen), None)

    def runner_up(self, direction: str) -> Trial | None:
        """The last rung's best trial after the chosen one (None before the choice, or where the rung held
        one point or every other trial failed): how far ahead the choice was."""
        if self.best() is None:
            return None
        others = [t for t in _ranked(self.trials[-1], direction) if t.point != self.chosen]
        return others[0] if others and math.isfinite(others[0].score) else None

    def seed_spread(self, metric: str) -> float | None:
        """The standard deviation over seeds of ``metric`` in the final runs at the chosen point (None with
        fewer than two records, or none of them apart: zero spread gives no noise to judge by)."""
        scores = [s for s in (_final_score(job, metric) for job in self.finals) if s is not None]
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        return spread or None

    def near_tie(self, spec: TuneConfig) -> bool | None:
        """Whether the choice leads its runner-up by less than seed noise alone could: by less than
        ``NEAR_TIE_Z`` x sqrt(2) x the chosen point's ``seed_spread``, the 95% range of the difference of two
        single-seed scores, as each trial is. Another trial seed (or another host's arithmetic) could then
        choose the runner-up. None where the runner-up or the spread is unknown."""
        return _near_tie(self.best(), self.runner_up(spec.direction), self.seed_spread(spec.metric))


def scalar(value: Any) -> float | None:
    """A setting's value as a number, where it is one: a one-element list (k-winners' percent_on [0.2])
    counts as its element; None for anything else."""
    value = value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _near_tie(best: Trial | None, second: Trial | None, spread: float | None) -> bool | None:
    """``ArmTuning.near_tie`` from its parts (a table reads the spread once for both columns)."""
    if best is None or second is None or spread is None:
        return None
    return abs(best.score - second.score) < NEAR_TIE_Z * math.sqrt(2) * spread


@dataclass
class Tuning:
    """The tuning of one experiment's arms."""

    experiment: str
    spec: TuneConfig
    arms: list[ArmTuning]
    folder: str  # where the trials' records go: <the experiment's folder>-tuning
    missing: str = ""  # why no choice could be made yet (trials without a record, or all failed)

    def rung_epochs(self, arm: ArmTuning) -> list[int]:
        """Epochs of each rung: shares of the arm's own budget (a regime map's cells differ in it)."""
        return [max(1, round(share * arm.jobs[0].config.train.epochs)) for share in self.spec.rungs]


def arm_space(spec: TuneConfig, arm: dict[str, str]) -> TuneArm:
    """The entry of ``spec.arms`` for this arm: the one whose values all match, else the catch-all."""
    def matches(entry: TuneArm) -> bool:
        return all(_same_value(arm.get(key), value) for key, value in entry.arm.items())

    own = [entry for entry in spec.arms if entry.arm and matches(entry)]
    if len(own) > 1:
        raise SparsebenchError(f"tune.arms: the arm {arm} matches {len(own)} entries; give each arm one entry")
    catch_all = [entry for entry in spec.arms if not entry.arm]
    if not own and not catch_all:
        raise SparsebenchError(f"tune.arms has no entry for the arm {arm}: add one, or one without arm (every "
                               f"other arm)")
    return (own or catch_all)[0]


def _same_value(text: str | None, value: Any) -> bool:
    """Whether a sweep value as a job's override writes it is the entry's value. Hydra's sweeper writes a
    boolean as Python does (False) and parses it in any case, so booleans compare without case."""
    if isinstance(value, bool):
        return text is not None and text.lower() == override_text(value)
    return text == override_text(value)


def grid(space: dict[str, list], limit: int | None) -> list[dict[str, Any]]:
    """Every point of a space, in the order its values are written (the first key varies slowest)."""
    points = [dict(zip(space, values)) for values in product(*space.values())]
    return points[:limit] if limit else points


def arms_of(jobs: list[Job]) -> dict[tuple[str, ...], list[Job]]:
    """The arms of an experiment's jobs (their sweep values other than the seed), each with its jobs."""
    arms: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        arms.setdefault(tuple(o for o in job.overrides if not o.startswith("seed=")), []).append(job)
    return arms


def start(experiment: str, jobs: list[Job], capped: bool = True) -> Tuning | None:
    """The tuning of an experiment whose jobs carry a ``tune`` block (None if they do not). ``capped``: an
    arm's final runs are its lowest ``tune.arms[].seeds`` seeds and the shared setting's its lowest
    ``tune.shared_seeds`` (the profile's own seeds); False (seeds given on the command line): every seed."""
    config = jobs[0].config
    if config.tune is None or not config.tune.arms:  # a profile's tune settings on an experiment not tuned
        return None
    swept = list(dict.fromkeys(o.split("=", 1)[0] for job in jobs for o in job.overrides if not o.startswith("seed=")))
    for entry in config.tune.arms:
        for key in entry.arm:
            if key not in swept:
                raise SparsebenchError(f"experiment {experiment}: tune.arms names {key}, which its sweep does not "
                                       f"vary; name the sweep's keys ({', '.join(swept) or 'none but the seed'})")
    arms = []
    for key, members in arms_of(jobs).items():
        arm = dict(o.split("=", 1) for o in key)
        entry = arm_space(config.tune, arm)
        if capped and entry.seeds is not None:
            lowest = {id(job) for job in sorted(members, key=lambda job: job.config.seed)[:entry.seeds]}
            members = [job for job in members if id(job) in lowest]
        arms.append(ArmTuning(arm, grid(entry.space, config.tune.points), members))
    spec = config.tune if capped else replace(config.tune, shared_seeds=None)
    return Tuning(experiment, spec, arms, f"{config.name}-tuning")


def trials_of(tuning: Tuning, rung: int, derive: Derive) -> list[Job]:
    """The jobs of one rung of every arm (rung 0: every point; later: the best 1/``eta`` of the rung before,
    whose records must have been read). An arm whose rung before lacks a record has no trials yet."""
    out = []
    for arm in tuning.arms:
        epochs = tuning.rung_epochs(arm)[rung]
        if rung == 0:
            points = arm.points
        else:
            before = arm.trials[rung - 1] if len(arm.trials) >= rung else []
            if not before or any(t.score is None for t in before):
                continue
            count = math.ceil(len(before) / tuning.spec.eta)
            points = [t.point for t in _ranked(before, tuning.spec.direction)[:count] if math.isfinite(t.score)]
            if not points:  # every point failed: nothing goes on, and no choice is made (read_scores says so)
                continue
        while len(arm.trials) <= rung:
            arm.trials.append([])
        arm.trials[rung] = []  # the last rung's trials beyond the edges too: beyond_edges plans them again
        arm.blocked = {}
        for point in points:
            trial = _trial(tuning, arm, point, rung, epochs, derive)
            arm.trials[rung].append(trial)
            out.append(trial.job)
    return out


def _trial(tuning: Tuning, arm: ArmTuning, point: dict[str, Any], rung: int, epochs: int, derive: Derive,
           beyond: int = 0) -> Trial:
    """A trial of ``point``: the arm's first run with the point's settings, on the trials' seed, for the
    rung's epochs, measuring what ``tune.trial`` keeps, its record under the tuning's folder."""
    job = derive(arm.jobs[0], {**point, "seed": tuning.spec.seed, "train.epochs": epochs,
                               "name": tuning.folder, **tuning.spec.trial},
                 (*point, "seed", "train.epochs"))
    return Trial(point, rung, epochs, job, beyond=beyond)


def beyond_edges(tuning: Tuning, derive: Derive) -> list[Job]:
    """One round of trials beyond the grid's edges (``tune.extend_edges`` rounds at most): for each arm whose
    choice has a setting at the smallest or largest number tried for it, the chosen point with that setting one
    step further, at the last rung's budget, added to the last rung, where ``read_scores`` chooses again.

    A step is the ratio of the edge to its nearest neighbour (every grid here is spaced by ratios: learning
    rates, strengths, drop rates): 0.05 beside 0.1 steps to 0.025. None where the numbers tried are not all
    positive, or where the step leaves the setting's range (its config check says so: a drop rate of 1.2);
    the arm's ``blocked`` says why. A trial that fails (a learning rate that diverges) brackets the edge as a
    worse score would. Each arm gets the same rule, not the same count: only an arm whose grid did not bracket
    its best gets more trials, as many as it takes to."""
    if not tuning.spec.extend_edges:
        return []
    last = len(tuning.spec.rungs) - 1
    out = []
    for arm in tuning.arms:
        if arm.chosen is None or len(arm.trials) <= last:
            continue
        done = max((t.beyond for t in arm.trials[last]), default=0)
        if done >= tuning.spec.extend_edges:
            continue
        epochs = tuning.rung_epochs(arm)[last]
        for key, value in arm.chosen.items():
            if arm.edge(key) not in EDGE_MARKS:
                continue
            edge, values = scalar(value), arm.tried(key)
            if values[0] <= 0:
                arm.blocked[key] = f"no ratio step beyond {key}={value}: the values tried are not all positive"
                continue
            step = edge * edge / (values[1] if edge == values[0] else values[-2])
            # A whole-number setting steps to a whole number (a grid of ints); 0.05 * 0.5 is written 0.025, not
            # 0.025000000000000001, in a record's name.
            whole = all(isinstance(scalar(p[key]), int) for p in arm.points)
            number = round(step) if whole else float(f"{step:.6g}")
            if number <= 0 or number in values:
                arm.blocked[key] = (f"the step beyond {key}={value} rounds to {number}, "
                                    f"{'no positive value' if number <= 0 else 'a value already tried'}")
                continue
            point = {**arm.chosen, key: [number] if isinstance(value, (list, tuple)) else number}
            try:
                trial = _trial(tuning, arm, point, last, epochs, derive, beyond=done + 1)
            except ConfigError as error:  # the step leaves the setting's range (a drop rate of 1.2)
                arm.blocked[key] = str(error)
                continue
            arm.trials[last].append(trial)
            out.append(trial.job)
    return out


def _ranked(trials: list[Trial], direction: str) -> list[Trial]:
    """Best first, failed trials (no finite score) last; ties keep the order the trials came in (sorted is
    stable): the grid's at the first rung, the previous rung's ranking at a later one, trials beyond an edge last."""
    sign = -1 if direction == "maximize" else 1
    return sorted(trials, key=lambda t: (not math.isfinite(t.score), sign * t.score if math.isfinite(t.score) else 0))


def read_scores(tuning: Tuning, rung: int) -> None:
    """Each trial of the rung gets its score from its record; after the last rung, each arm its choice
    (the best trial whose run did not fail), and the tuning says which arms have none and why."""
    last = len(tuning.spec.rungs) - 1
    for arm in tuning.arms:
        if len(arm.trials) <= rung:
            continue
        for trial in arm.trials[rung]:
            trial.score = score_of(trial.job, tuning.spec.metric)
        if rung == last and arm.trials[rung]:
            # A trial beyond an edge still without its record leaves the choice open, as a grid point's would.
            best = (_ranked(arm.trials[rung], tuning.spec.direction)[0]
                    if all(t.score is not None for t in arm.trials[rung]) else None)
            arm.chosen = best.point if best is not None and math.isfinite(best.score) else None
    failed = [arm.label for arm in tuning.arms if arm.chosen is None and _all_failed(arm)]
    waiting = [f"{arm.label} (rung {_first_unread(arm)} of {last + 1})" for arm in tuning.arms
               if arm.chosen is None and not _all_failed(arm)]
    reasons = []
    if waiting:
        reasons.append(f"its tuning is not finished: trial records missing for {', '.join(waiting[:4])}"
                       f"{', ...' if len(waiting) > 4 else ''} ({len(waiting)} of {len(tuning.arms)} arms); run the "
                       "same command with run=true")
    if failed:
        reasons.append(f"every trial of {', '.join(failed)} failed (see their records under {tuning.folder}/); "
                       "widen its grid (tune.arms)")
    tuning.missing = "; ".join(reasons)


def _all_failed(arm: ArmTuning) -> bool:
    """Whether a rung of the arm ended with every trial failed (no point could go on)."""
    return any(rung and all(t.score is not None and not math.isfinite(t.score) for t in rung) for rung in arm.trials)


def _first_unread(arm: ArmTuning) -> int:
    """The first rung (from 1) that lacks a record of a trial, or the rung not composed yet."""
    for number, rung in enumerate(arm.trials, start=1):
        if any(t.score is None for t in rung):
            return number
    return len(arm.trials) + 1


def score_of(job: Job, metric: str) -> float | None:
    """The metric of a trial's completed record (None: no record yet). A failed trial (a learning rate that
    diverged) scores NaN: it is ranked last and never chosen, and the tuning still ends."""
    record, _ = job.run_dir.checked_result()
    if record is None:
        return None
    if record.status == "failed":
        return math.nan
    value = flatten(record.metrics or {}, "/").get(metric)
    if value is None:
        raise SparsebenchError(f"tune.metric={metric!r} is not in the record of trial {job.run_dir.path}: "
                               f"choose a metric its runs record (e.g. validation/accuracy; it needs dataset.val_size > 0)")
    return float(value)


def _final_score(job: Job, metric: str) -> float | None:
    """``score_of`` a final run, None for a run not made, failed or without the metric (the spread it feeds
    only marks a choice; unlike a trial's score it decides nothing, so a missing metric is no error)."""
    try:
        value = score_of(job, metric)
    except SparsebenchError:
        return None
    return value if value is not None and math.isfinite(value) else None


def shared_runs(tuning: Tuning, planned: list[Job]) -> list[Job]:
    """Of the experiment's planned runs (every arm at the shared setting), those its shared-setting row
    reads: none without ``tune.shared``, else each arm's lowest ``tune.shared_seeds`` seeds."""
    if not tuning.spec.shared:
        return []
    kept = {id(job) for arm in tuning.arms
            for job in sorted(arm.jobs, key=lambda job: job.config.seed)[:tuning.spec.shared_seeds]}
    return [job for job in planned if id(job) in kept]


def finals(tuning: Tuning, shared: list[Job], derive: Derive) -> list[Job]:
    """The final runs of every tuned arm: the arm's runs (every seed it runs) at its chosen point. A final run that
    is also a shared-setting run (the arm chose the experiment's own values) is that run, planned under
    both settings, not a second copy."""
    by_id = {job.run_id: job for job in shared}
    out = []
    for arm in tuning.arms:
        if arm.chosen is None:
            continue
        arm.finals = []
        for planned in arm.jobs:
            job = derive(planned, dict(arm.chosen))
            twin = by_id.get(job.run_id)
            if twin is not None:
                twin.settings = (SHARED, TUNED)
            else:
                job.settings = (TUNED,)
                out.append(job)
            arm.finals.append(job if twin is None else twin)
    return out


def runner_up_runs(tuning: Tuning, planned: list[Job], derive: Derive) -> list[Job]:
    """With ``tune.confirm_near_ties``, once every arm's final runs have their records: each near-tied arm's
    runs (the seeds of its final runs) at its runner-up point, planned under ``RUNNER_UP``, and every other
    arm's final runs planned under it too, so that a check read there compares each near-tied arm at the
    point seed noise could as well have chosen with the other arms as chosen. A run already planned (the
    runner-up is the shared setting, or a final run) is that run with the setting added: where no arm is a
    near tie, nothing new, only the final runs tagged (another experiment's near-tied arm may be read against
    them). None before every arm's final runs are done."""
    if not tuning.spec.confirm_near_ties or not tuning.arms:
        return []
    if any(arm.chosen is None or not arm.finals or not all(job.done for job in arm.finals) for arm in tuning.arms):
        return []
    # An experiment without a near tie still has its final runs read at the runner-ups: a check may compare
    # its arm with a near-tied arm of another experiment (K1: the k-winners net against dropout).
    tied = [arm for arm in tuning.arms if arm.near_tie(tuning.spec)]
    runs = []
    for arm in tuning.arms:
        point = dict(arm.runner_up(tuning.spec.direction).point) if arm in tied else None
        runs += [final if point is None else derive(own, point) for final, own in zip(arm.finals, arm.jobs)]
    return _planned_under(RUNNER_UP, runs, planned)


def _planned_under(setting: str, runs: list[Job], planned: list[Job]) -> list[Job]:
    """``runs`` planned under ``setting``: those not planned yet, with that setting alone, are returned to be
    added; a run already planned (or met twice) gets the setting added to its own instead."""
    by_id = {job.run_id: job for job in planned}
    out = []
    for run in runs:
        twin = by_id.get(run.run_id)
        if twin is None:
            run.settings = (setting,)
            by_id[run.run_id] = run
            out.append(run)
        elif setting not in twin.settings:
            twin.settings = (*twin.settings, setting)
    return out


def matched_setting(a: dict[str, Any], b: dict[str, Any], keys: list[str]) -> str:
    """The setting B's runs at A's chosen values of ``keys`` (and A's final runs with them) are planned and
    read under: one per (A, B, keys), so that two matched readings never pool each other's runs."""
    def text(where: dict[str, Any]) -> str:
        return ", ".join(f"{key}={override_text(value)}" for key, value in where.items())
    return f"{MATCHED}: {text(b)} at {text(a)}'s {', '.join(keys)}"


def matched_arms(tuning: Tuning, a: dict[str, Any], b: dict[str, Any],
                 keys: list[str]) -> tuple[ArmTuning, ArmTuning] | None:
    """A's arm and B's, where each selector names one arm of this experiment, two different ones, whose
    configs both have every key; else None."""
    arm_a, arm_b = arm_of(tuning, a), arm_of(tuning, b)
    if arm_a is None or arm_b is None or arm_a is arm_b:
        return None
    configs = [flatten(config_tree(arm.jobs[0].config), ".") for arm in (arm_a, arm_b)]
    return (arm_a, arm_b) if all(key in config for key in keys for config in configs) else None


def arm_of(tuning: Tuning, where: dict[str, Any]) -> ArmTuning | None:
    """The one arm whose runs ``where`` selects, as a check's selector selects records; else None. An arm
    that has chosen is read at its choice (dropout's tuned runs are at the p it chose, not its shared p)."""
    import pandas as pd

    from sparsebench.report.aggregate import select

    def selected(arm: ArmTuning) -> bool:
        config = arm.jobs[0].config
        # A record's row names its experiment (a selector may too: K4's dense side is none of continual_mlp).
        row = {**flatten(config_tree(config), "."), **(arm.chosen or {}), "experiment": config.name}
        try:
            return not select(pd.DataFrame([row]), where).empty
        except KeyError:
            return False
    found = [arm for arm in tuning.arms if selected(arm)]
    return found[0] if len(found) == 1 else None


def matched_runs(tuning: Tuning, a: dict[str, Any], b: dict[str, Any], keys: list[str], planned: list[Job],
                 derive: Derive) -> list[Job]:
    """For a check of A against B with ``matched`` settings (catalogue.Check.matched): B's runs, every seed,
    at its chosen point with those settings at A's chosen values, and A's final runs, both planned under
    ``matched_setting(a, b, keys)``. A run already planned (a final run, or B's at A's values when it chose them) is
    that run with the setting added, not a second copy. None until both arms have chosen, or where A or B
    is not one arm of this experiment."""
    arms = matched_arms(tuning, a, b, keys)
    if arms is None or arms[0].chosen is None or arms[1].chosen is None:
        return []
    arm_a, arm_b = arms
    own = flatten(config_tree(arm_a.jobs[0].config), ".")  # a setting A does not tune: its shared value
    values = {key: arm_a.chosen.get(key, own[key]) for key in keys}
    runs = [derive(job, point) for arm, point in ((arm_a, dict(arm_a.chosen)), (arm_b, {**arm_b.chosen, **values}))
            for job in arm.jobs]
    return _planned_under(matched_setting(a, b, keys), runs, planned)


def table(tuning: Tuning) -> list[dict[str, Any]]:
    """One row per arm: its grid's size, the rungs' trials, the chosen point and its score, the last rung's
    runner-up with its score, the chosen point's spread over its final runs' seeds, and whether the choice
    is a near tie (``ArmTuning.near_tie``)."""
    rows = []
    for arm in tuning.arms:
        best, second = arm.best(), arm.runner_up(tuning.spec.direction)
        spread = arm.seed_spread(tuning.spec.metric)
        rows.append({"arm": arm.label, "points": len(arm.points),
                     "trials": [sum(not t.beyond for t in r) for r in arm.trials],
                     "beyond": sum(t.beyond > 0 for r in arm.trials for t in r), "chosen": arm.chosen,
                     "recorded": sum(t.score is not None for r in arm.trials for t in r),
                     "all_failed": _all_failed(arm),
                     "edges": {key: arm.edge(key) for key in arm.chosen or {}}, "blocked": dict(arm.blocked),
                     "score": best.score if best is not None else None,
                     "runner_up": None if second is None else {"point": second.point, "score": second.score},
                     "seed_spread": spread, "near_tie": _near_tie(best, second, spread),
                     "curve": [{"rung": t.rung, "epochs": t.epochs, "point": t.point, "score": t.score,
                                "beyond": t.beyond}
                               for r in arm.trials for t in r]})
    return rows
