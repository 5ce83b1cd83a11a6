"""The schemas of the run configuration: one dataclass per config group, and each field's place in
the run's identity.

This module is the house's ground floor: it imports nothing of sparsebench but its error type, so
every other module may import it. The YAML files in ``conf/`` extend these schemas through
``defaults: [/schema/<group>/<name>@_here_]`` (``sparsebench.configure`` registers them with Hydra),
so Hydra rejects unknown keys and wrongly typed values while composing; ``__post_init__`` checks each
field's range when the composed config is turned into these dataclasses.

Every field says whether it belongs to the run's identity (the hash that names the run's record
folder, ``sparsebench.identity``), with one of three field makers:

- ``part(default)``: it can change the run's numbers, so it is part of the identity;
- ``neutral(default, why=...)``: it cannot (where files are, how fast or how visibly a run goes);
- ``part_unless(default, why=...)``: added after records existed; left out of the identity while it
  holds ``default``, so that those records keep their run ids.

A field declared with a plain default has made no decision, and a test refuses it
(``tests/test_identity.py``): a new setting must say whether it changes a run's id.
Models, regularizers and task sequences declare their own schemas the same way, next to their code.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from omegaconf import MISSING

from sparsebench.errors import check

IDENTITY = "identity"  # the metadata key of a field's decision: "part", "neutral" or "part_unless"
UNLESS = "unless"  # the metadata key of a part_unless field's "as before" value, which the identity compares with


def _field(decision: str, default: Any, factory: Callable[[], Any] | None, **metadata: Any) -> Any:
    meta = {IDENTITY: decision, **metadata}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def part(default: Any = MISSING, *, factory: Callable[[], Any] | None = None, schema: type | None = None,
         plugin: str | None = None) -> Any:
    """A setting that can change a run's numbers: part of its identity. For a field typed ``Any`` (a
    config group Hydra fills), ``schema`` names its dataclass, or ``plugin`` the registry whose entry,
    chosen by the group's ``name``, owns it, so that the identity can look inside."""
    return _field("part", default, factory, schema=schema, plugin=plugin)


def neutral(default: Any = MISSING, *, why: str, factory: Callable[[], Any] | None = None) -> Any:
    """A setting that cannot change a run's numbers (``why`` says why): not part of its identity."""
    return _field("neutral", default, factory, why=why)


def part_unless(default: Any, *, why: str, plugin: str | None = None) -> Any:
    """A setting added after records existed: part of the identity except while it holds ``default``
    (the value that means "as before"), so records made before it existed keep their run ids. A list
    or dict ``default`` is given to each instance as a copy (dataclasses refuse a shared mutable default)."""
    if isinstance(default, (list, dict)):
        return _field("part_unless", MISSING, lambda: copy.deepcopy(default), why=why, plugin=plugin,
                      **{UNLESS: copy.deepcopy(default)})
    return _field("part_unless", default, None, why=why, plugin=plugin, **{UNLESS: default})


DEVICES = ("auto", "cpu", "cuda", "mps")
PROGRESS = ("auto", "on", "off")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine")
SELECTIONS = ("last", "best_val")
PRECISIONS = ("float32", "bf16")
PRUNE_SCOPES = ("global", "layerwise")
PRUNE_METHODS = (*PRUNE_SCOPES, "random")  # what prune.compare may name beside the scope
LAYER_KINDS = ("linear", "conv", "both")  # which hidden layers a regularizer acts on
DIRECTIONS = ("maximize", "minimize")  # of a search objective
# Seeds feed torch.Generator.manual_seed (which takes 64 bits) after small offsets: keep well inside.
MAX_SEED = 2**32 - 1

# Reasons of neutral fields shared by several.
SPEED_ONLY = "it changes how fast a run goes, not its numbers"
WHERE_ONLY = "where the files are, not what they hold (the digest of the data itself is part of the identity)"
CHECKS_ONLY = "it only checks the files (the digest of the data itself is part of the identity)"
JUDGEMENT = "the convergence criterion judges the history after training; it changes no number"


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    check(value in allowed, key, value, f"choose one of {', '.join(allowed)}")


def _positive(key: str, value: Any, kind: str = "a positive number") -> None:
    check(value is not None and value > 0, key, value, f"must be {kind}")


def _fractions(key: str, values: list[float], low_closed: bool = True, high_closed: bool = True) -> None:
    for value in values:
        above = value >= 0 if low_closed else value > 0
        below = value <= 1 if high_closed else value < 1
        interval = f"{'[' if low_closed else '('}0, 1{']' if high_closed else ')'}"
        check(above and below, key, list(values), f"every entry must lie in {interval}")


@dataclass
class AugmentConfig:
    """Batched on-device augmentation of training images (CIFAR-10 style)."""

    crop_padding: int = part(0)  # random crop after zero-padding each side by this many pixels; 0: off
    flip: bool = part(False)  # random horizontal flip

    def __post_init__(self) -> None:
        check(self.crop_padding >= 0, "augment.crop_padding", self.crop_padding, "must be >= 0")


@dataclass
class DatasetConfig:
    """Where a data set's files are, what they must contain, and how to split and augment it."""

    name: str = part(MISSING)  # mnist, fashion_mnist, cifar10, embedded, ...
    format: str = part(MISSING)  # idx (MNIST-style files) or cifar10 (python pickle batches)
    # Folder holding the files as distributed; null: $SPARSEBENCH_DATA, else the user cache folder.
    root: Optional[str] = neutral(None, why=WHERE_ONLY)
    # Subfolder of root for this data set's files (so one root can hold several data sets).
    folder: str = neutral("", why=WHERE_ONLY)
    # Fetch missing files from the mirrors.
    download: bool = neutral(True, why="how missing files are had, not what they hold")
    mirrors: list[str] = neutral(why=WHERE_ONLY, factory=list)  # base URLs, tried in order
    # file name as distributed -> md5 of that file (checked after downloading it).
    files: dict[str, str] = part(factory=dict)
    # IDX files: md5 of the decompressed bytes, which also identifies re-compressed copies. null (read as
    # {}: nothing checked) clears a data set's from the command line, for files of your own.
    content_md5: Optional[dict[str, str]] = part(factory=dict)
    archive: Optional[str] = part(None)  # for archive formats: the file to download and unpack
    # What the files must hold (checked on every load; null: not checked, for data of your own): the
    # content digest of the arrays (sparsebench.data.identity) and the number of training and test images.
    digest: Optional[str] = neutral(None, why=CHECKS_ONLY)
    train_count: Optional[int] = neutral(None, why=CHECKS_ONLY)
    test_count: Optional[int] = neutral(None, why=CHECKS_ONLY)
    shape: list[int] = part(factory=lambda: [1, 28, 28])  # C, H, W
    num_classes: int = part(10)
    mean: list[float] = part(factory=lambda: [0.1307])  # per channel, on the [0, 1] scale
    std: list[float] = part(factory=lambda: [0.3081])
    val_size: int = part(0)  # training images held out for validation (model selection, early stopping)
    split_seed: int = part(0)  # seeds the validation split and subsets, apart from the model seed
    train_subset: Optional[int] = part(None)  # use only this many training images (fast profiles)
    test_subset: Optional[int] = part(None)
    augment: AugmentConfig = part(factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.content_md5 is None:  # one spelling of "nothing checked", so that both give one run id
            self.content_md5 = {}
        check(len(self.shape) == 3 and all(s > 0 for s in self.shape), "shape", list(self.shape),
              "must be [channels, height, width] with positive sizes")
        check(len(self.mean) == self.shape[0] and len(self.std) == self.shape[0], "mean", list(self.mean),
              f"mean and std need one entry per channel ({self.shape[0]})")
        check(all(s > 0 for s in self.std), "std", list(self.std), "every entry must be > 0")
        check(self.num_classes >= 2, "num_classes", self.num_classes, "must be at least 2")
        check(self.val_size >= 0, "val_size", self.val_size, "must be >= 0 (0: no validation split)")
        for key in ("train_subset", "test_subset"):
            value = getattr(self, key)
            check(value is None or value > 0, key, value, "must be a positive count or null (all)")
        if self.train_count is not None:
            check(self.val_size < self.train_count, "val_size", self.val_size,
                  f"must be smaller than the {self.train_count} training images of {self.name}")
            left = self.train_count - self.val_size
            check(self.train_subset is None or self.train_subset <= left, "train_subset", self.train_subset,
                  f"{self.name} has {left} training images" + (f" after val_size={self.val_size}" if self.val_size else ""),
                  f"use at most {left}, or null for all")
        if self.test_count is not None:
            check(self.test_subset is None or self.test_subset <= self.test_count, "test_subset", self.test_subset,
                  f"{self.name} has {self.test_count} test images", f"use at most {self.test_count}, or null for all")


@dataclass
class ConvergenceConfig:
    """When a run counts as trained to convergence: its training loss has stopped falling.

    Over the last ``window`` epochs the training loss fell by at most ``rel_tol`` of its final value
    per epoch, or by at most ``abs_tol`` (nats) per epoch. Judged from the history after training; it
    changes no number of the run, so it is not part of the run's identity.
    """

    window: int = neutral(3, why=JUDGEMENT)
    rel_tol: float = neutral(0.01, why=JUDGEMENT)
    abs_tol: float = neutral(0.001, why=JUDGEMENT)

    def __post_init__(self) -> None:
        _positive("window", self.window, "a positive whole number of epochs")
        check(self.rel_tol >= 0, "rel_tol", self.rel_tol, "must be >= 0")
        check(self.abs_tol >= 0, "abs_tol", self.abs_tol, "must be >= 0")


@dataclass
class TrainConfig:
    """Optimisation: optimizer, schedule, budget and model selection."""

    epochs: int = part(3)
    batch_size: int = part(128)
    first_epoch_batch_size: Optional[int] = part(None)  # e.g. 4 for the k-winners paper's sparse nets
    optimizer: str = part("sgd")  # sgd | adam
    lr: float = part(0.01)
    momentum: float = part(0.9)  # SGD only
    nesterov: bool = part(False)  # SGD only
    schedule: str = part("none")  # none | step (lr *= gamma every step_size epochs) | cosine
    step_size: int = part(1)
    gamma: float = part(0.1)
    # The epoch whose weights every measurement uses: last | best_val (needs dataset.val_size > 0).
    # The k-winners paper's best-test epoch is measured beside it with eval.best_test, never instead.
    select: str = part("last")
    # float32 | bf16 (autocast, on GPUs and CPUs alike; on this project's 2-core AMD EPYC machine
    # it trained the MLP 1.5x and the MNIST CNN 1.27x faster; it changes the numbers).
    precision: str = part("float32")
    # torch.compile the model: for GPUs; on the CPU it works but measured 5-25% slower. Not part of the run identity.
    compile: bool = neutral(False, why=SPEED_ONLY)
    # channels_last memory format; null: on for models with convolutions (measured 11-25% faster
    # training and ~40% faster evaluation of the MNIST CNNs on 2 CPU cores). Not part of the run identity.
    channels_last: Optional[bool] = neutral(None, why=SPEED_ONLY)
    convergence: ConvergenceConfig = neutral(why=JUDGEMENT, factory=ConvergenceConfig)

    def __post_init__(self) -> None:
        _positive("epochs", self.epochs, "a positive whole number")
        _positive("batch_size", self.batch_size, "a positive whole number")
        check(self.first_epoch_batch_size is None or self.first_epoch_batch_size > 0,
              "first_epoch_batch_size", self.first_epoch_batch_size, "must be a positive whole number or null")
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        check(self.lr is not None and math.isfinite(self.lr) and self.lr > 0, "lr", self.lr,
              "must be a finite positive number")
        check(0 <= self.momentum < 1, "momentum", self.momentum, "must lie in [0, 1)")
        check(not self.nesterov or self.momentum > 0, "nesterov", self.nesterov,
              "Nesterov momentum needs train.momentum > 0")
        _one_of("schedule", self.schedule, SCHEDULES)
        _positive("step_size", self.step_size, "a positive whole number of epochs")
        check(0 < self.gamma <= 1, "gamma", self.gamma, "must lie in (0, 1]")
        check(self.select in SELECTIONS, "select", self.select, f"choose one of {', '.join(SELECTIONS)}",
              "the k-winners paper's best-test epoch is measured beside the selected one with eval.best_test=true"
              if self.select == "best_test" else None)
        _one_of("precision", self.precision, PRECISIONS)


@dataclass
class EvalConfig:
    """What is measured after training (and, for model selection, after every epoch)."""

    # 256 suits CPU caches.
    batch_size: int = neutral(256, why="the evaluation batch changes no number")
    near_zero_abs: list[float] = part(factory=lambda: [1e-3, 1e-2])
    near_zero_rel: list[float] = part(factory=lambda: [0.01, 0.1])  # x the layer's initial std
    # x the layer's own RMS at the time measured (final weights: their final RMS): scale-free, where a
    # threshold fixed at init counts fewer weights of a layer whose weights simply grew.
    near_zero_rms: list[float] = part_unless([0.01, 0.1], why="the scale-free shares came after the first records; "
                                             "they add metrics to a record and change none of its numbers")
    # Noise robustness: which kinds to run ([] turns it off), their levels and the seed of the draws.
    noise: list[str] = part(factory=lambda: ["pixels", "gaussian", "salt_pepper"])
    pixel_levels: list[float] = part(factory=lambda: [round(0.05 * i, 2) for i in range(11)])
    gaussian_levels: list[float] = part(factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    salt_pepper_levels: list[float] = part(factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5])
    noise_seed: int = part(1234)
    # Evaluations with dropout-style layers left in training mode (claim G2); 0 turns it off.
    train_mode_passes: int = part(10)
    # Also measure test accuracy and noise at the epoch of best test accuracy, as the k-winners paper
    # reported: for reproduction tables only; no claim decides on it.
    best_test: bool = part(False)
    # Also measure the epoch of best validation accuracy (early stopping) beside the last one, for runs
    # with a validation split that select the last epoch (sparsebench.measurements.early_stop).
    early_stop: bool = part_unless(False, why="added after records existed; off measures nothing more")
    # Score the test split along training: after every epoch (the learning curves the reports draw) and, in
    # a task sequence, every task after each task (the accuracy matrix). Tuning trials turn it off
    # (conf/tune/halving.yaml): their choice reads validation only, and the test passes cost a tenth of an
    # MLP's epoch and most of a task sequence's time beyond training.
    test_curve: bool = neutral(True, why="it leaves the test scores along training out of the record and "
                                         "changes no number that it keeps")

    def __post_init__(self) -> None:
        _positive("batch_size", self.batch_size, "a positive whole number")
        for key in ("near_zero_abs", "near_zero_rel", "near_zero_rms"):
            values = getattr(self, key)
            check(all(v > 0 for v in values), key, list(values), "every threshold must be > 0")
        _fractions("pixel_levels", self.pixel_levels)
        _fractions("salt_pepper_levels", self.salt_pepper_levels)
        check(all(v >= 0 for v in self.gaussian_levels), "gaussian_levels", list(self.gaussian_levels),
              "every sigma must be >= 0")
        check(self.train_mode_passes >= 0, "train_mode_passes", self.train_mode_passes, "must be >= 0")
        check(0 <= self.noise_seed <= MAX_SEED, "noise_seed", self.noise_seed, f"must be a whole number in 0..{MAX_SEED}")
        check(self.test_curve or not self.best_test, "test_curve", self.test_curve,
              "must be true with eval.best_test: the best-test epoch is found from the test scores along training",
              "set eval.test_curve=true, or eval.best_test=false")


@dataclass
class PruneConfig:
    """Magnitude pruning after training; ``fractions: []`` (``prune=none``) turns it off."""

    fractions: list[float] = part(factory=lambda: [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99])
    scope: str = part("global")  # global (one threshold over all weight matrices) | layerwise
    # Masked fine-tune after pruning, in epochs: 0 skips it; a fraction in (0, 1) is one pass over
    # that share of the training set (drawn at random); a whole number is that many full epochs.
    finetune_epochs: float = part(0.25)
    finetune_lr: float = part(0.001)
    margin: float = part(1.0)  # accuracy points: the largest fraction within this of the unpruned model
    # Pruning methods measured beside the scope's, each with the same curve under prune/by_method/<method>/:
    # global (one magnitude threshold over all weight matrices), layerwise (each layer by its own
    # magnitudes, so a layer's scale does not decide how much of it goes) or random (the baseline any
    # magnitude method must beat).
    compare: list[str] = part_unless([], why="comparison methods came after the first records")

    def __post_init__(self) -> None:
        _fractions("fractions", self.fractions, low_closed=False, high_closed=False)
        _one_of("scope", self.scope, PRUNE_SCOPES)
        check(self.finetune_epochs == 0 or 0 < self.finetune_epochs < 1 or float(self.finetune_epochs).is_integer(),
              "finetune_epochs", self.finetune_epochs,
              "must be 0 (skip), a fraction of an epoch in (0, 1), or a whole number of epochs")
        _positive("finetune_lr", self.finetune_lr)
        check(self.margin >= 0, "margin", self.margin, "must be >= 0 accuracy points")
        for method in self.compare:
            check(method in PRUNE_METHODS, "compare", list(self.compare),
                  f"every entry must be one of {', '.join(PRUNE_METHODS)}")
        check(len(set(self.compare)) == len(self.compare), "compare", list(self.compare), "must name each method once")


@dataclass
class TuneArm:
    """One arm of an experiment and the settings it is tuned over."""

    # The sweep values that make the arm, as the experiment's sweep names them ({regularizer: dropout},
    # {regularizer.p: 0.2}); empty: every arm without an entry of its own.
    arm: dict = dataclasses.field(default_factory=dict)
    space: dict = dataclasses.field(default_factory=dict)  # setting (train.lr, regularizer.p) -> values tried
    # The arm's final runs (tuned, shared-setting and matched alike): the sweep's lowest N seeds, where the
    # checks that read this arm plan fewer than others read (None: every seed of the sweep). Seeds given on
    # the command line are run in full.
    seeds: Optional[int] = None

    def __post_init__(self) -> None:
        if self.seeds is not None:
            check(isinstance(self.seeds, int) and not isinstance(self.seeds, bool) and self.seeds >= 1,
                  "arms[].seeds", self.seeds, "must be a whole number of seeds, at least 1",
                  "or leave it out to run every seed of the sweep")


@dataclass
class TuneConfig:
    """Every arm of an experiment tuned alike on the validation split before its final runs
    (``sparsebench.claims.tuning``): each arm's grid has the same number of points, every point is tried
    on one seed of its own for the first rung's epochs, and the best 1/``eta`` of them go on to the next
    rung (successive halving), the last rung at the experiment's own budget. The chosen point of each arm
    is the one best by ``metric`` at the last rung; the final runs use it."""

    arms: list[TuneArm] = dataclasses.field(default_factory=list)
    metric: str = "validation/accuracy"  # a record path; never a test metric
    direction: str = "maximize"
    seed: int = 1000  # the trials' seed, none of the final runs'
    rungs: list[float] = dataclasses.field(default_factory=lambda: [0.25, 1.0])  # fractions of train.epochs
    eta: int = 3  # successive halving: the best 1/eta of a rung's points (rounded up) go on to the next
    points: Optional[int] = None  # try only the first N points of each arm (the smoke profile's machinery test)
    trial: dict = dataclasses.field(default_factory=dict)  # settings of a trial run: measure only the metric
    # Also run every arm at the experiment's own (shared) setting, for the secondary untuned comparison;
    # a regime map's cells do without it.
    shared: bool = True
    # The shared-setting runs on each arm's lowest N seeds (None: every seed the arm runs): the untuned
    # comparison is a secondary row; where a claim's primary check reads the shared setting (S2, S3), null.
    shared_seeds: Optional[int] = None
    # Once every arm's final runs are done, run each near-tied arm's final seeds again at its runner-up (the
    # last rung's second best, which seed noise alone could have chosen) and read each primary check there too
    # (``claims.tuning.runner_up_runs``): whether a verdict holds for the choice made only, or for both.
    confirm_near_ties: bool = False
    # Rounds of trials beyond a grid's edge: where an arm's choice is the smallest or largest value tried for a
    # setting, that setting one step further (``claims.tuning.beyond_edges``), at the last rung's budget, and the
    # choice made again; until the choice is inside what was tried, the next step is outside the setting's
    # range, or this many rounds ran. 0: a choice at an edge is only marked.
    extend_edges: int = 0

    def __post_init__(self) -> None:
        _one_of("direction", self.direction, DIRECTIONS)
        check(isinstance(self.extend_edges, int) and not isinstance(self.extend_edges, bool) and self.extend_edges >= 0,
              "extend_edges", self.extend_edges, "must be a whole number of rounds, 0 or more", "0 only marks an edge")
        if self.shared_seeds is not None:
            check(isinstance(self.shared_seeds, int) and not isinstance(self.shared_seeds, bool)
                  and self.shared_seeds >= 1, "shared_seeds", self.shared_seeds,
                  "must be a whole number of seeds, at least 1", "or null for every seed the arm runs")
        check(not self.metric.startswith("test/") and "best_test" not in self.metric, "metric", self.metric,
              "a setting is chosen on the validation split, never the test set", "e.g. tune.metric=validation/accuracy")
        check(len(self.rungs) >= 1 and all(0 < r <= 1 for r in self.rungs) and self.rungs[-1] == 1
              and list(self.rungs) == sorted(self.rungs), "rungs", list(self.rungs),
              "must be increasing fractions of train.epochs in (0, 1], the last 1 (the final runs' budget)")
        check(self.eta >= 2, "eta", self.eta, "must be at least 2 (the best 1/eta of a rung go on)")
        check(self.points is None or self.points >= 1, "points", self.points, "must be a positive count or null")
        check(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"must be a whole number in 0..{MAX_SEED}")
        sizes = {}
        for number, arm in enumerate(self.arms, start=1):
            check(len(arm.space) > 0 and all(isinstance(v, list) and len(v) > 0 for v in arm.space.values()),
                  f"arms[{number}].space", arm.space, "must map each setting to a non-empty list of values")
            sizes[str(arm.arm or "every other arm")] = math.prod(len(v) for v in arm.space.values())
        check(len(set(sizes.values())) <= 1, "arms", sizes,
              "every arm gets the same tuning budget: give each arm's space the same number of points")
        check(sum(not arm.arm for arm in self.arms) <= 1, "arms", [a.arm for a in self.arms],
              "at most one entry without arm (the one for every other arm)")


@dataclass
class RunConfig:
    """One run: the composition of every group plus the top-level settings."""

    # Experiment name: records go to <results_dir>/<name>/<run-id>/.
    name: str = neutral("default", why="the experiment folder the record goes to")
    seed: int = part(0)
    device: str = neutral("auto", why=SPEED_ONLY)  # auto | cpu | cuda | mps
    results_dir: str = neutral("results", why="where records are written")
    progress: str = neutral("auto", why="how a run is shown")  # auto (bar on a terminal only) | on | off
    threads: Optional[int] = neutral(None, why=SPEED_ONLY)  # torch CPU threads; null: torch's default
    # Run again configs whose record says failed.
    retry_failed: bool = neutral(False, why="how reruns are treated")
    dataset: Any = part(MISSING, schema=DatasetConfig)
    model: Any = part(MISSING, plugin="model")
    regularizer: Any = part(MISSING, plugin="regularizer")
    train: TrainConfig = part(factory=TrainConfig)
    eval: EvalConfig = part(factory=EvalConfig)
    prune: PruneConfig = part(factory=PruneConfig)
    # Trackers that also receive the run's config, per-epoch metrics and final measurements (conf/logger/):
    # tracker name -> its settings. They change no number, so they are not part of the run's identity.
    logger: Any = neutral(why="trackers mirror the record; they change no number", factory=dict)
    # Hyperparameter search: the metric of the record (a path such as test/accuracy or noise/pixels/score)
    # whose value each job returns to the sweeper, and whether larger is better. Not part of the identity.
    objective: Optional[str] = neutral("test/accuracy", why="what a search reads from the record")
    objective_direction: str = neutral("maximize", why="what a search reads from the record")
    # A task sequence trained as one run (conf/continual/, sparsebench.continual); null: one task.
    continual: Any = part_unless(None, plugin="continual", why="task sequences came after the first records")
    # How an experiment's arms are tuned before their final runs (conf/tune/); null: not tuned.
    tune: Optional[TuneConfig] = neutral(None, why="how the plan chooses settings; a run's numbers follow from them")
    # A regime map's axes (the map profile's experiments): setting -> the values it takes, one setting at a
    # time with the others at this config's own; each value a cell of the sweep (claims.plan, claims.regime).
    axes: dict = neutral(why="which runs a plan makes; each run's numbers follow from its own settings", factory=dict)
    # The grids a map experiment's axes read (conf/map_axes/): kind of experiment (mlp, continual) -> its axes.
    map_axes: dict = neutral(why="which runs a plan makes; each run's numbers follow from its own settings",
                             factory=dict)

    def __post_init__(self) -> None:
        _one_of("device", self.device, DEVICES)
        _one_of("objective_direction", self.objective_direction, DIRECTIONS)
        check(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"must be a whole number in 0..{MAX_SEED}")
        _one_of("progress", self.progress, PROGRESS)
        check(self.threads is None or self.threads > 0, "threads", self.threads, "must be a positive count or null")
        check(self.name not in ("", ".", "..") and "/" not in self.name and not self.name.startswith("_")
              and len(self.name.encode()) <= 255, "name", self.name,
              "must be a folder name: not empty, . or .., without '/', not starting with '_', at most 255 bytes")
        check(self.results_dir.strip() != "", "results_dir", self.results_dir, "must name a folder",
              "e.g. results_dir=results (the default)")
        _check_axes("axes", self.axes)
        for kind, axes in self.map_axes.items():
            check(isinstance(axes, dict), f"map_axes.{kind}", axes, "must map each setting to the values it takes "
                  "across the map", "e.g. {model.hidden: [[128, 128]]}")
            _check_axes(f"map_axes.{kind}", axes)


def _check_axes(prefix: str, axes: dict) -> None:
    """A map's axes (RunConfig.axes, each grid of map_axes): every setting with the values it takes."""
    for key, values in axes.items():
        check(isinstance(values, list) and len(values) > 0, f"{prefix}.{key}", values,
              "must list the values the setting takes across the map")


GROUP_SCHEMAS = {"dataset": DatasetConfig, "train": TrainConfig, "eval": EvalConfig, "prune": PruneConfig}


def config_tree(value: Any) -> Any:
    """``dataclasses.asdict`` of a config (dataclasses, lists, tuples, dicts and scalars inside), with
    every container new. By hand because asdict deep-copies each leaf, which a config's leaves (numbers,
    strings, None: immutable) do not need. A claims plan takes a run config's tree about 800 times (its
    identity, its row of the planned runs): 240 us a config with asdict, 44 us with this."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: config_tree(getattr(value, name)) for name in names}
    if kind is list or kind is tuple:
        return kind(config_tree(item) for item in value) if kind is tuple else [config_tree(item) for item in value]
    if kind is dict:
        return {key: config_tree(item) for key, item in value.items()}
    return copy.deepcopy(value)  # (what asdict does with any other leaf)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
