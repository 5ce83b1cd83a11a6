"""Every arm of a comparison tuned alike, on the validation split, before its final runs.

An experiment with a ``tune`` block (``conf/tune/``, ``schemas.TuneConfig``) has arms: the values of its
sweep other than the seed (``regularizer=dropout``, ``regularizer.p=0.2``). Each arm gets a grid of
settings (its learning rate, and where the claim allows its own knob: dropout's p, L1's strength, k),
every arm's grid with the same number of points, so every arm has the same tuning budget. The grid is
searched by successive halving: every point is trained for the first rung's share of the experiment's
epochs on a seed of its own (``tune.seed``, no final run's), the best 1/``eta`` of them (rounded up) by ``tune.metric``
(a validation metric: the test set is never looked at) go on to the next rung, and the last rung trains
at the experiment's own budget. Each arm's best point there is its chosen setting, and its final runs
(every seed of the sweep) use it. Trials measure only what the choice reads (``tune.trial``) and write
their records under ``<the experiment's folder>-tuning/``, apart from the final runs.

The choice is read again from the trials' records each time a plan is made, so a report made later
(``run=false``) chooses what the run did, and a rerun resumes where the trials stopped. The experiment's
shared-setting runs (every arm at the values the experiment file gives) stay planned too: the claims
report compares tuned arms first and the shared setting as a secondary row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Callable, Protocol

from sparsebench.errors import SparsebenchError
from sparsebench.records.paths import flatten
from sparsebench.schemas import RunConfig, TuneArm, TuneConfig
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

TUNED, SHARED = "tuned", "shared"  # the settings a final run is planned under (Job.settings)


@dataclass
class Trial:
    """One point of an arm's grid trained at one rung."""

    point: dict[str, Any]  # setting -> value
    rung: int
    epochs: int
    job: Job
    score: float | None = None  # tune.metric of its record; None: no completed record yet


@dataclass
class ArmTuning:
    """One arm: its grid, its trials rung by rung, and the point chosen (None until the last rung is read)."""

    arm: dict[str, str]  # sweep key -> value as the sweep writes it
    points: list[dict[str, Any]]
    epochs: int  # the arm's own budget (the last rung's): a regime map's cells differ in it
    trials: list[list[Trial]] = field(default_factory=list)  # per rung
    chosen: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.arm.items()) or "every run"

    def best(self) -> Trial | None:
        """The chosen trial of the last rung (None until the choice is made)."""
        return next((t for t in (self.trials[-1] if self.trials else []) if t.point == self.chosen), None)


@dataclass
class Tuning:
    """The tuning of one experiment's arms."""

    experiment: str
    spec: TuneConfig
    arms: list[ArmTuning]
    folder: str  # where the trials' records go: <the experiment's folder>-tuning
    missing: str = ""  # why no choice could be made yet (trials without a record)

    def rung_epochs(self, arm: ArmTuning) -> list[int]:
        return [max(1, round(share * arm.epochs)) for share in self.spec.rungs]

    @property
    def done(self) -> bool:
        return all(arm.chosen is not None for arm in self.arms)


def arm_space(spec: TuneConfig, arm: dict[str, str]) -> TuneArm:
    """The entry of ``spec.arms`` for this arm: the one whose values all match, else the catch-all."""
    def matches(entry: TuneArm) -> bool:
        return all(str(arm.get(key)) == override_text(value) for key, value in entry.arm.items())

    own = [entry for entry in spec.arms if entry.arm and matches(entry)]
    if len(own) > 1:
        raise SparsebenchError(f"tune.arms: the arm {arm} matches {len(own)} entries; give each arm one entry")
    catch_all = [entry for entry in spec.arms if not entry.arm]
    if not own and not catch_all:
        raise SparsebenchError(f"tune.arms has no entry for the arm {arm}: add one, or one without arm (every "
                               f"other arm)")
    return (own or catch_all)[0]


def grid(space: dict[str, list], limit: int | None) -> list[dict[str, Any]]:
    """Every point of a space, in the order its values are written (the first key varies slowest)."""
    points = [dict(zip(space, values)) for values in product(*space.values())]
    return points[:limit] if limit else points


def arms_of(jobs: list[Job]) -> list[tuple[dict[str, str], int]]:
    """The arms of an experiment's jobs (their sweep values other than the seed, in order), each with
    its training budget."""
    arms: list[tuple[dict[str, str], int]] = []
    for job in jobs:
        arm = dict(o.split("=", 1) for o in job.overrides if not o.startswith("seed="))
        if arm not in [a for a, _ in arms]:
            arms.append((arm, job.config.train.epochs))
    return arms


def start(experiment: str, jobs: list[Job]) -> Tuning | None:
    """The tuning of an experiment whose jobs carry a ``tune`` block (None if they do not)."""
    config = jobs[0].config
    if config.tune is None or not config.tune.arms:  # a profile's tune settings on an experiment not tuned
        return None
    for entry in config.tune.arms:
        for key in entry.arm:
            if not any(o.startswith(f"{key}=") for job in jobs for o in job.overrides):
                raise SparsebenchError(f"experiment {experiment}: tune.arms names {key}, which its sweep does not "
                                       f"vary; name the sweep's keys ({', '.join(_keys(jobs))})")
    arms = [ArmTuning(arm, grid(arm_space(config.tune, arm).space, config.tune.points), epochs)
            for arm, epochs in arms_of(jobs)]
    return Tuning(experiment, config.tune, arms, f"{config.name}-tuning")


def _keys(jobs: list[Job]) -> list[str]:
    return list(dict.fromkeys(o.split("=", 1)[0] for job in jobs for o in job.overrides if not o.startswith("seed=")))


def _settings(point: dict[str, Any]) -> list[str]:
    return [f"{key}={override_text(value)}" for key, value in point.items()]


Compose = Callable[[str, list[str], bool], list[tuple[list[str], RunConfig]]]


def trials_of(tuning: Tuning, rung: int, compose: Compose, make_job: Callable) -> list[Job]:
    """The jobs of one rung of every arm (rung 0: every point; later: the best 1/``eta`` of the rung before,
    whose records must have been read). An arm whose rung before lacks a record has no trials yet. Each
    arm's rung is composed as one sweep over its grid (one Hydra composition, not one per point)."""
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
            points = [t.point for t in _ranked(before, tuning.spec.direction)[:count]]
        keys = list(points[0])
        sweep = [f"{key}=" + ",".join(dict.fromkeys(override_text(p[key]) for p in points)) for key in keys]
        line = [*_arm_overrides(arm, besides=("train.epochs",)), *sweep, f"seed={tuning.spec.seed}", f"train.epochs={epochs}",
                f"name={tuning.folder}", *tuning.spec.trial]
        composed = {tuple(_value_of(overrides, key) for key in keys): (overrides, config)
                    for overrides, config in compose(tuning.experiment, line, True)}
        while len(arm.trials) <= rung:
            arm.trials.append([])
        arm.trials[rung] = []
        for point in points:
            overrides, config = composed[tuple(override_text(point[key]) for key in keys)]
            job = make_job(tuning.experiment, overrides, config)
            job.overrides = [o for o in job.overrides if o not in tuning.spec.trial]  # shown per trial: what varies
            arm.trials[rung].append(Trial(point, rung, epochs, job))
            out.append(job)
    return out


def _value_of(overrides: list[str], key: str) -> str:
    return next(o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == key)


def _arm_overrides(arm: ArmTuning, besides: tuple[str, ...] = ()) -> list[str]:
    return [f"{key}={value}" for key, value in arm.arm.items() if key not in besides]


def _ranked(trials: list[Trial], direction: str) -> list[Trial]:
    """Best first; ties keep the grid's order (sorted is stable)."""
    sign = -1 if direction == "maximize" else 1
    return sorted(trials, key=lambda t: sign * t.score)


def read_scores(tuning: Tuning, rung: int) -> None:
    """Each trial of the rung gets its score from its record; after the last rung, each arm its choice."""
    for arm in tuning.arms:
        if len(arm.trials) <= rung:
            continue
        for trial in arm.trials[rung]:
            trial.score = score_of(trial.job, tuning.spec.metric)
        if rung == len(tuning.spec.rungs) - 1 and arm.trials[rung] and all(t.score is not None for t in arm.trials[rung]):
            arm.chosen = _ranked(arm.trials[rung], tuning.spec.direction)[0].point
    waiting = [f"{arm.label} (rung {len(arm.trials)})" for arm in tuning.arms if arm.chosen is None]
    tuning.missing = "" if not waiting else (
        f"its arms' tuning is not finished: {', '.join(waiting[:4])}{', ...' if len(waiting) > 4 else ''} "
        "lack trial records; run the same command with run=true")


def score_of(job: Job, metric: str) -> float | None:
    """The metric of a trial's completed record (None: no completed record, or the metric is missing; a
    failed trial scores the worst: it is not chosen, and the tuning still ends)."""
    record, _ = job.run_dir.checked_result()
    if record is None:
        return None
    if record.status == "failed":
        return -math.inf
    value = flatten(record.metrics or {}, "/").get(metric)
    if value is None:
        raise SparsebenchError(f"tune.metric={metric!r} is not in the record of trial {job.run_dir.path}: "
                               f"choose a metric its runs record (e.g. validation/accuracy; it needs dataset.val_size > 0)")
    return float(value)


def finals(tuning: Tuning, shared: list[Job], compose: Compose, make_job: Callable) -> list[Job]:
    """The final runs of every tuned arm: the arm's sweep (every seed) at its chosen point. A final run
    that is also a shared-setting run (the arm chose the experiment's own values) is that run, planned
    under both settings, not a second copy."""
    by_id = {job.run_id: job for job in shared}
    out = []
    for arm in tuning.arms:
        if arm.chosen is None:
            continue
        line = [*_arm_overrides(arm), *_settings(arm.chosen)]
        for overrides, config in compose(tuning.experiment, line, True):
            job = make_job(tuning.experiment, overrides, config)
            twin = by_id.get(job.run_id)
            if twin is not None:
                twin.settings = (SHARED, TUNED)
            else:
                job.settings = (TUNED,)
                out.append(job)
    return out


def table(tuning: Tuning) -> list[dict[str, Any]]:
    """One row per arm: its grid's size, the rungs' trials, the chosen point and its score."""
    rows = []
    for arm in tuning.arms:
        best = arm.best()
        rows.append({"arm": arm.label, "points": len(arm.points),
                     "trials": [len(r) for r in arm.trials], "chosen": arm.chosen,
                     "score": best.score if best is not None else None,
                     "curve": [{"rung": t.rung, "epochs": t.epochs, "point": t.point, "score": t.score}
                               for r in arm.trials for t in r]})
    return rows
