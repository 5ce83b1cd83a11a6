"""Typed schemas of the run configuration, their registration with Hydra, and validation.

Each config group has a dataclass schema. The YAML files in ``conf/`` extend their schema through
``defaults: [/schema/<group>/<name>@_here_]``, so Hydra rejects unknown keys and wrongly typed values
while composing. Ranges and cross-group rules are checked by ``validate``, which turns the composed
config into dataclass instances (``__post_init__`` checks each field) before any work starts.

Models and regularizers are pluggable: each one defines its own schema next to its code
(``sparsebench/models/<name>.py``, ``sparsebench/regularizers/<name>.py``) and is found by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sparsebench.errors import ConfigError, SparsebenchError, check

DEVICES = ("auto", "cpu", "cuda", "mps")
PROGRESS = ("auto", "on", "off")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine")
SELECTIONS = ("last", "best_val")
PRECISIONS = ("float32", "bf16")
DATA_FORMATS = ("idx", "cifar10")
NOISE_KINDS = ("pixels", "gaussian", "salt_pepper")
PRUNE_SCOPES = ("global", "layerwise")
LAYER_KINDS = ("linear", "conv", "both")  # which hidden layers a regularizer acts on
DIRECTIONS = ("maximize", "minimize")  # of a search objective
# Seeds feed torch.Generator.manual_seed (which takes 64 bits) after small offsets: keep well inside.
MAX_SEED = 2**32 - 1


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

    crop_padding: int = 0  # random crop after zero-padding each side by this many pixels; 0: off
    flip: bool = False  # random horizontal flip

    def __post_init__(self) -> None:
        check(self.crop_padding >= 0, "augment.crop_padding", self.crop_padding, "must be >= 0")


@dataclass
class DatasetConfig:
    """Where a data set's files are, what they must contain, and how to split and augment it."""

    name: str = MISSING  # mnist, fashion_mnist, cifar10, embedded, ...
    format: str = MISSING  # idx (MNIST-style files) or cifar10 (python pickle batches)
    # Folder holding the files as distributed; null: $SPARSEBENCH_DATA, else the user cache folder.
    root: Optional[str] = None
    # Subfolder of root for this data set's files (so one root can hold several data sets).
    folder: str = ""
    download: bool = True  # fetch missing files from the mirrors
    mirrors: list[str] = field(default_factory=list)  # base URLs, tried in order
    # file name as distributed -> md5 of that file (checked after downloading it).
    files: dict[str, str] = field(default_factory=dict)
    # IDX files: md5 of the decompressed bytes, which also identifies re-compressed copies.
    content_md5: dict[str, str] = field(default_factory=dict)
    archive: Optional[str] = None  # for archive formats: the file to download and unpack
    # What the files must hold (checked on every load; null: not checked, for data of your own): the
    # content digest of the arrays (sparsebench.data.identity) and the number of training and test images.
    digest: Optional[str] = None
    train_count: Optional[int] = None
    test_count: Optional[int] = None
    shape: list[int] = field(default_factory=lambda: [1, 28, 28])  # C, H, W
    num_classes: int = 10
    mean: list[float] = field(default_factory=lambda: [0.1307])  # per channel, on the [0, 1] scale
    std: list[float] = field(default_factory=lambda: [0.3081])
    val_size: int = 0  # training images held out for validation (model selection)
    split_seed: int = 0  # seeds the validation split and subsets, apart from the model seed
    train_subset: Optional[int] = None  # use only this many training images (fast profiles)
    test_subset: Optional[int] = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        _one_of("format", self.format, DATA_FORMATS)
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

    window: int = 3
    rel_tol: float = 0.01
    abs_tol: float = 0.001

    def __post_init__(self) -> None:
        _positive("window", self.window, "a positive whole number of epochs")
        check(self.rel_tol >= 0, "rel_tol", self.rel_tol, "must be >= 0")
        check(self.abs_tol >= 0, "abs_tol", self.abs_tol, "must be >= 0")


@dataclass
class TrainConfig:
    """Optimisation: optimizer, schedule, budget and model selection."""

    epochs: int = 3
    batch_size: int = 128
    first_epoch_batch_size: Optional[int] = None  # e.g. 4 for the k-winners paper's sparse nets
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.01
    momentum: float = 0.9  # SGD only
    nesterov: bool = False  # SGD only
    schedule: str = "none"  # none | step (lr *= gamma every step_size epochs) | cosine
    step_size: int = 1
    gamma: float = 0.1
    # The epoch whose weights every measurement uses: last | best_val (needs dataset.val_size > 0).
    # The k-winners paper's best-test epoch is measured beside it with eval.best_test, never instead.
    select: str = "last"
    # float32 | bf16 (autocast, on GPUs and CPUs alike; on this project's 2-core AMD EPYC machine
    # it trained the MLP 1.5x and the MNIST CNN 1.27x faster; it changes the numbers).
    precision: str = "float32"
    # torch.compile the model: for GPUs; on the CPU it works but measured 5-25% slower. Not part of the run identity.
    compile: bool = False
    # channels_last memory format; null: on for models with convolutions (measured 11-25% faster
    # training and ~40% faster evaluation of the MNIST CNNs on 2 CPU cores). Not part of the run identity.
    channels_last: Optional[bool] = None
    convergence: ConvergenceConfig = field(default_factory=ConvergenceConfig)

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

    batch_size: int = 256  # evaluation batch (no effect on the numbers); 256 suits CPU caches
    near_zero_abs: list[float] = field(default_factory=lambda: [1e-3, 1e-2])
    near_zero_rel: list[float] = field(default_factory=lambda: [0.01, 0.1])  # x the layer's initial std
    # Noise robustness: which kinds to run ([] turns it off), their levels and the seed of the draws.
    noise: list[str] = field(default_factory=lambda: list(NOISE_KINDS))
    pixel_levels: list[float] = field(default_factory=lambda: [round(0.05 * i, 2) for i in range(11)])
    gaussian_levels: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    salt_pepper_levels: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5])
    noise_seed: int = 1234
    # Evaluations with dropout-style layers left in training mode (claim G2); 0 turns it off.
    train_mode_passes: int = 10
    # Also measure test accuracy and noise at the epoch of best test accuracy, as the k-winners paper
    # reported: for reproduction tables only; no claim decides on it.
    best_test: bool = False

    def __post_init__(self) -> None:
        _positive("batch_size", self.batch_size, "a positive whole number")
        for key in ("near_zero_abs", "near_zero_rel"):
            values = getattr(self, key)
            check(all(v > 0 for v in values), key, list(values), "every threshold must be > 0")
        for kind in self.noise:
            check(kind in NOISE_KINDS, "noise", list(self.noise),
                  f"entries must be among {', '.join(NOISE_KINDS)} ([] turns noise off)")
        _fractions("pixel_levels", self.pixel_levels)
        _fractions("salt_pepper_levels", self.salt_pepper_levels)
        check(all(v >= 0 for v in self.gaussian_levels), "gaussian_levels", list(self.gaussian_levels),
              "every sigma must be >= 0")
        check(self.train_mode_passes >= 0, "train_mode_passes", self.train_mode_passes, "must be >= 0")
        check(0 <= self.noise_seed <= MAX_SEED, "noise_seed", self.noise_seed, f"must be a whole number in 0..{MAX_SEED}")


@dataclass
class PruneConfig:
    """Magnitude pruning after training; ``fractions: []`` (``prune=none``) turns it off."""

    fractions: list[float] = field(default_factory=lambda: [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99])
    scope: str = "global"  # global (one threshold over all weight matrices) | layerwise
    # Masked fine-tune after pruning, in epochs: 0 skips it; a fraction in (0, 1) is one pass over
    # that share of the training set (drawn at random); a whole number is that many full epochs.
    finetune_epochs: float = 0.25
    finetune_lr: float = 0.001
    margin: float = 1.0  # accuracy points: the largest fraction within this of the unpruned model

    def __post_init__(self) -> None:
        _fractions("fractions", self.fractions, low_closed=False, high_closed=False)
        _one_of("scope", self.scope, PRUNE_SCOPES)
        check(self.finetune_epochs == 0 or 0 < self.finetune_epochs < 1 or float(self.finetune_epochs).is_integer(),
              "finetune_epochs", self.finetune_epochs,
              "must be 0 (skip), a fraction of an epoch in (0, 1), or a whole number of epochs")
        _positive("finetune_lr", self.finetune_lr)
        check(self.margin >= 0, "margin", self.margin, "must be >= 0 accuracy points")


@dataclass
class RunConfig:
    """One run: the composition of every group plus the top-level settings."""

    name: str = "default"  # experiment name: records go to <results_dir>/<name>/<run-id>/
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    results_dir: str = "results"
    progress: str = "auto"  # auto (bar on a terminal only) | on | off
    threads: Optional[int] = None  # torch CPU threads; null: torch's default
    retry_failed: bool = False  # run again configs whose record says failed
    dataset: Any = MISSING
    model: Any = MISSING
    regularizer: Any = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    # Trackers that also receive the run's config, per-epoch metrics and final measurements (conf/logger/):
    # tracker name -> its settings. They change no number, so they are not part of the run's identity.
    logger: Any = field(default_factory=dict)
    # Hyperparameter search: the metric of the record (a path such as test/accuracy or noise/pixels/score)
    # whose value each job returns to the sweeper, and whether larger is better. Not part of the identity.
    objective: Optional[str] = "test/accuracy"
    objective_direction: str = "maximize"
    # A task sequence trained as one run (conf/continual/, sparsebench.continual); null: one task.
    continual: Any = None

    def __post_init__(self) -> None:
        _one_of("device", self.device, DEVICES)
        _one_of("objective_direction", self.objective_direction, DIRECTIONS)
        check(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"must be a whole number in 0..{MAX_SEED}")
        _one_of("progress", self.progress, PROGRESS)
        check(self.threads is None or self.threads > 0, "threads", self.threads, "must be a positive count or null")
        check(self.name != "" and "/" not in self.name and not self.name.startswith("_"), "name", self.name,
              "must be a non-empty folder name without '/' that does not start with '_'")


GROUP_SCHEMAS = {"dataset": DatasetConfig, "train": TrainConfig, "eval": EvalConfig, "prune": PruneConfig}


def package_dir(relative: str) -> str:
    """The absolute path of a folder inside the installed sparsebench package (the ``package_dir`` resolver)."""
    return str(Path(__file__).resolve().parent / relative)


def register() -> None:
    """Make the schemas and resolvers known to Hydra and OmegaConf (idempotent); call before composing."""
    if not OmegaConf.has_resolver("package_dir"):
        OmegaConf.register_new_resolver("package_dir", package_dir)
    from sparsebench.continual import SEQUENCES
    from sparsebench.models import MODELS
    from sparsebench.regularizers import REGULARIZERS

    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for group, schema in GROUP_SCHEMAS.items():
        store.store(group=f"schema/{group}", name=group, node=schema)
    for name, model in MODELS.items():
        store.store(group="schema/model", name=name, node=model.Config)
    for name, regularizer in REGULARIZERS.items():
        store.store(group="schema/regularizer", name=name, node=regularizer.Config)
    for name, sequence in SEQUENCES.items():
        store.store(group="schema/continual", name=name, node=sequence)
    from sparsebench.trackers import TRACKERS

    for name, tracker in TRACKERS.items():
        store.store(group="schema/logger", name=name, node=tracker.Config)


def _unknown_keys(node: Any, schema: type, prefix: str, what: str) -> None:
    """Refuse keys that ``schema`` does not have (added with ``+key=...``, which Hydra allows, and
    which would otherwise be ignored without a word)."""
    if not isinstance(node, DictConfig):
        return
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in node.keys():
        if key not in fields:
            raise ConfigError(f"{prefix}.{key}", OmegaConf.select(node, str(key)),
                              f"{what} has no such setting; its settings are {', '.join(fields)}",
                              "check the spelling (a setting cannot be added)")
        # Field types are strings here (postponed annotations): the nested schemas by name.
        nested = {"AugmentConfig": AugmentConfig, "ConvergenceConfig": ConvergenceConfig}.get(str(fields[key].type))
        if nested is not None:
            _unknown_keys(node[key], nested, f"{prefix}.{key}", f"{prefix}.{key}")


def _to_object(node: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.to_object(node)
    except ConfigError as error:
        raise error.under(key) from None


def validate(cfg: DictConfig) -> RunConfig:
    """Check every value of a composed config and return it as typed dataclasses.

    Raises ConfigError naming the full key, the value and what is allowed.
    """
    from sparsebench.models import MODELS, check_model_fits
    from sparsebench.regularizers import REGULARIZERS

    for key, registry, kind in (("model", MODELS, "model"), ("regularizer", REGULARIZERS, "regularizer")):
        name = OmegaConf.select(cfg, f"{key}.name")
        check(name in registry, f"{key}.name", name, f"choose a {kind} among {', '.join(sorted(registry))}")
    schemas = {"dataset": DatasetConfig, **GROUP_SCHEMAS, "model": MODELS[cfg.model.name].Config,
               "regularizer": REGULARIZERS[cfg.regularizer.name].Config}
    for key, schema in schemas.items():
        what = f"{key} {cfg[key].name}" if key in ("model", "regularizer") else key
        _unknown_keys(cfg[key], schema, key, what)
    parts = {key: _to_object(cfg[key], key) for key in ("dataset", "model", "regularizer", *GROUP_SCHEMAS)}
    parts["logger"] = _to_object(cfg.logger, "logger") if cfg.get("logger") else {}
    parts["continual"] = _continual(cfg.get("continual"))
    top = {f.name: cfg[f.name] for f in dataclasses.fields(RunConfig) if f.name not in parts}
    run = RunConfig(**top, **parts)
    from sparsebench.objective import check_objective
    from sparsebench.trackers import check_trackers

    check_trackers(run.logger)
    check_objective(run)

    check(run.train.select != "best_val" or run.dataset.val_size > 0, "train.select", run.train.select,
          "best_val needs a validation split", "set dataset.val_size (e.g. dataset.val_size=5000)")
    check_model_fits(run.model, run.dataset)
    if run.continual is not None:
        try:
            run.continual.check_fits(run.dataset)
        except ConfigError as error:
            raise error.under("continual") from None
    _check_model_builds(run.model, run.regularizer, tuple(run.dataset.shape), run.dataset.num_classes,
                        max(run.train.batch_size, run.train.first_epoch_batch_size or 0))
    return run


# The model settings that built without complaint: a sweep's jobs (seeds, rates) mostly share one model,
# and building it, even on the meta device, is the slow part of validating a job.
_BUILDS_CHECKED: set[str] = set()


def _check_model_builds(model_cfg: Any, regularizer_cfg: Any, shape: tuple[int, ...], num_classes: int,
                        batch_size: int) -> None:
    """Build the model on the meta device (no memory, no arithmetic) to catch any mismatch between the
    model and the regularizer, e.g. a per-layer list of the wrong length, before any work."""
    key = json.dumps([_type_name(model_cfg), dataclasses.asdict(model_cfg), _type_name(regularizer_cfg),
                      dataclasses.asdict(regularizer_cfg), shape, num_classes, batch_size], sort_keys=True, default=str)
    if key in _BUILDS_CHECKED:
        return
    import torch

    from sparsebench.models import build_model
    from sparsebench.regularizers import build_regularizer

    regularizer = build_regularizer(regularizer_cfg)
    try:
        with torch.device("meta"):
            model = build_model(model_cfg, regularizer, shape, num_classes)
    except ValueError as error:  # a layer refusing its arguments (sparsebench.nn): name the setting
        text = str(error)
        field = text.partition("=")[0]
        known = {f.name for f in dataclasses.fields(type(regularizer_cfg))}
        raise SparsebenchError(f"regularizer.{text}" if field in known else
                               f"the model cannot be built with these settings: {text}") from None
    regularizer.check_model(model, batch_size)
    _BUILDS_CHECKED.add(key)


def _type_name(instance: Any) -> str:
    return f"{type(instance).__module__}.{type(instance).__qualname__}"


def _continual(node: DictConfig | None) -> Any:
    """The task sequence's schema object, or None for a run of one task."""
    if node is None:
        return None
    from sparsebench.continual import SEQUENCES

    name = OmegaConf.select(node, "name")
    check(name in SEQUENCES, "continual.name", name, f"choose a task sequence among {', '.join(SEQUENCES)}")
    return _to_object(node, "continual")


def config_hash(tree: dict) -> str:
    """A short, stable hash of a config tree (key order does not matter): run ids and group ids."""
    canonical = json.dumps(tree, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# Settings added after records existed, with the value that means "as before": left out of the
# identity while they hold it, so that records made before they existed keep their run ids.
IDENTITY_NEUTRAL: dict[tuple[str, ...], Any] = {("continual",): None}


def result_relevant(cfg: RunConfig | DictConfig | dict, data_digest: str | None = None) -> dict:
    """The part of a config that can change a run's numbers: what a run's identity is hashed from,
    with ``data_digest`` (the content digest of the data it runs on) under the key ``data``.

    Left out: the experiment name and where things are written or read (paths), how fast they run (device, threads,
    compilation, memory format), how they are shown (progress) and logged (trackers), what a search reads from
    them (objective), how reruns are treated, what only checks
    the data (its expected digest and counts: the digest of the data itself counts) and the convergence
    criterion (a judgement of the history, not a number of the run).
    """
    if dataclasses.is_dataclass(cfg):
        tree = dataclasses.asdict(cfg)
    elif isinstance(cfg, DictConfig):
        tree = OmegaConf.to_container(cfg, resolve=True)
    else:
        tree = json.loads(json.dumps(cfg))
    for key in ("results_dir", "device", "progress", "threads", "retry_failed", "name", "logger", "objective",
                "objective_direction"):
        tree.pop(key, None)
    for key in ("root", "folder", "download", "mirrors", "digest", "train_count", "test_count"):
        tree["dataset"].pop(key, None)
    for key in ("compile", "channels_last", "convergence"):
        tree["train"].pop(key, None)
    tree["eval"].pop("batch_size", None)
    for path, neutral in IDENTITY_NEUTRAL.items():
        *parents, leaf = path
        node = tree
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node and node[leaf] == neutral:
            node.pop(leaf)
    if data_digest is not None:
        tree["data"] = data_digest
    return tree
