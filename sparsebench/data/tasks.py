"""The tasks of a sequence: their schemas (``conf/continual/``) and each task's data, made on the device
from the data set's splits.

- ``permuted``: every task is the whole data set with its pixel positions shuffled by a fixed
  permutation of its own (the same for every channel); task 1 is the data as it is. The permutations
  are drawn from ``continual.seed`` alone when it is set, so every model of a sweep, whatever its seed,
  learns the same tasks (Goodfellow et al. 2013; Kirkpatrick et al. 2017; numenta's dendrites work,
  seed 42); ``continual.seed: null`` derives them from the run's seed (``seeds.permutations``), so that
  an interval over model seeds holds the variance of the tasks drawn too.
- ``split``: task t holds the images of the classes ``classes[t]`` only (split MNIST: digits 0/1,
  2/3, ..., 8/9; Zenke et al. 2017). ``head: shared`` is the domain-incremental form: one output per
  position in a task's class list, shared by all tasks (is it the first or the second digit of the
  pair?); ``head: all`` is the class-incremental form: one output per class of the data set, with
  the original labels (van de Ven & Tolias 2019, "Three scenarios for continual learning").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from sparsebench import seeds
from sparsebench.data import DataSplits, ImageSet
from sparsebench.errors import DataError, check
from sparsebench.registry import Registry
from sparsebench.schemas import MAX_SEED, DatasetConfig, part, part_unless

HEADS = ("shared", "all")
SEQUENCES: Registry[type] = Registry("task sequence", "continual.name")


@dataclass
class SequenceConfig:
    """What every task sequence has: its kind, its length and how weight changes are counted."""

    name: str = part("permuted")  # permuted | split
    tasks: int = part(10)  # tasks trained in order, each for train.epochs epochs, with no replay
    # Each task trains for at least this many optimizer steps: train.epochs, raised to the fewest whole
    # epochs that make that many steps on a small data set (the smoke profile's 2,000 images), so that
    # a shrunk sequence still learns its tasks. 0: train.epochs as it is.
    min_steps: int = part(0)
    # A weight counts as changed by a task when it moved by more than this times its layer's initial
    # weight std (the scale of eval.near_zero_rel) between the task's start and its end
    # (continual/weights_changed). 0.01 x σ_init is about 2e-4 for the MLPs here: below one Adam step at
    # lr 5e-4, so it counts a weight that a single step touched.
    changed_threshold: float = part(0.01)
    # Also count a weight as changed when it moved by more than this many times train.lr
    # (continual/weights_changed_lr_steps), a threshold above what one optimizer step can do: Adam's
    # update of a weight in one step is about lr at most (Kingma & Ba 2015, sec. 2.1: |step| <= lr in
    # the common case, <= lr (1 - b1)/sqrt(1 - b2) = 3.2 lr at the default betas in the worst), so more
    # than 10 x lr takes steps that agree. For SGD no such bound holds (a step is lr x the gradient,
    # more with momentum). null: not counted.
    changed_threshold_lr_steps: Optional[float] = part_unless(
        None, why="the threshold in optimizer steps came after the first records")

    def __post_init__(self) -> None:
        check(isinstance(self.tasks, int) and self.tasks >= 2, "tasks", self.tasks,
              "a sequence needs at least 2 tasks (forgetting is measured on the earlier ones)")
        check(isinstance(self.min_steps, int) and self.min_steps >= 0, "min_steps", self.min_steps,
              "must be a whole number of optimizer steps >= 0 (0: train.epochs as it is)")
        check(self.changed_threshold > 0, "changed_threshold", self.changed_threshold,
              "must be > 0 (a multiple of each layer's initial weight std)")
        check(self.changed_threshold_lr_steps is None or self.changed_threshold_lr_steps > 0,
              "changed_threshold_lr_steps", self.changed_threshold_lr_steps,
              "must be > 0 (a multiple of train.lr) or null (not counted)")

    def head_size(self, dataset: DatasetConfig) -> int:
        """Outputs of the model's head."""
        return dataset.num_classes

    def check_fits(self, dataset: DatasetConfig) -> None:
        """A ConfigError (key under ``continual``) when the tasks cannot be made from ``dataset``."""


@SEQUENCES.register("permuted")
@dataclass
class PermutedConfig(SequenceConfig):
    name: str = part("permuted")
    # Seeds the permutations, apart from the model's seed: every run of a sweep gets the same tasks.
    # null: derived from the run's seed, so that each model seed learns tasks of its own.
    seed: Optional[int] = part(42)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.seed is None or 0 <= self.seed <= MAX_SEED, "seed", self.seed,
              f"must be a whole number in 0..{MAX_SEED}, or null (derived from the run's seed)")


@SEQUENCES.register("split")
@dataclass
class SplitConfig(SequenceConfig):
    name: str = part("split")
    tasks: int = part(5)  # the first `tasks` entries of classes
    classes: list[list[int]] = part(factory=lambda: [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]])
    head: str = part("shared")  # shared (domain-incremental) | all (class-incremental)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.head in HEADS, "head", self.head, f"choose one of {', '.join(HEADS)}")
        check(self.tasks <= len(self.classes), "tasks", self.tasks,
              f"classes lists {len(self.classes)} tasks", "add entries to continual.classes or lower continual.tasks")
        used = [list(group) for group in self.classes[:self.tasks]]
        check(all(len(group) > 0 for group in used), "classes", used, "every task needs at least one class")
        flat = [label for group in used for label in group]
        check(len(flat) == len(set(flat)), "classes", used, "a class may belong to one task only")
        check(self.head == "all" or len({len(group) for group in used}) == 1, "classes", used,
              "a shared head needs the same number of classes in every task", "use continual.head=all")

    def used(self) -> list[list[int]]:
        return [list(group) for group in self.classes[:self.tasks]]

    def head_size(self, dataset: DatasetConfig) -> int:
        return len(self.used()[0]) if self.head == "shared" else dataset.num_classes

    def check_fits(self, dataset: DatasetConfig) -> None:
        flat = [label for group in self.used() for label in group]
        check(all(0 <= label < dataset.num_classes for label in flat), "classes", self.used(),
              f"{dataset.name} has classes 0..{dataset.num_classes - 1}")


# ----------------------------------------------------------------------------------------------------
# Each task's data


def permutations(tasks: int, pixels: int, seed: int) -> torch.Tensor:
    """(tasks, pixels) indices: row 0 the identity, row t a permutation drawn from a generator seeded
    with ``seed``, in task order (so a longer sequence begins with the tasks of a shorter one)."""
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.arange(pixels)] + [torch.randperm(pixels, generator=generator) for _ in range(tasks - 1)]
    return torch.stack(rows)


def permute(images: ImageSet, permutation: torch.Tensor) -> ImageSet:
    """``images`` with pixel ``permutation[i]`` moved to position i, in every channel."""
    index = permutation.to(images.labels.device)

    def moved(tensor: torch.Tensor) -> torch.Tensor:
        rows = tensor.reshape(-1, index.numel())
        if rows.device.type == "cpu":
            # NumPy's take along rows: 1.3-1.6x torch.gather's speed on the CPU (itself 2x indexing the last
            # dimension), and a task sequence permutes every test split after every task (BENCHMARKS.md, "Task
            # sequences"). The same values, copied.
            return torch.from_numpy(np.take(rows.numpy(), index.numpy(), axis=1)).reshape(tensor.shape)
        return torch.gather(rows, 1, index.expand(len(rows), -1)).reshape(tensor.shape)

    return ImageSet(moved(images.images), moved(images.inputs), images.labels)


def split(images: ImageSet, classes: list[int], relabel: bool) -> ImageSet:
    """The images of ``classes`` only; with ``relabel`` each label becomes its position in ``classes``."""
    wanted = torch.tensor(classes, device=images.labels.device)
    index = torch.isin(images.labels, wanted).nonzero().squeeze(1)
    labels = images.labels[index]
    if relabel:
        labels = (labels.unsqueeze(1) == wanted).to(torch.int64).argmax(1).to(labels.dtype)
    return ImageSet(images.images[index], images.inputs[index], labels)


class TaskData:
    """The tasks of a sequence, made from a data set's splits on demand (a task's data lives only
    while it is used: a hundred permuted copies of MNIST need not fit in memory at once)."""

    def __init__(self, data: DataSplits, cfg: SequenceConfig, run_seed: int):
        self.data, self.cfg = data, cfg
        if isinstance(cfg, PermutedConfig):
            pixels = data.train.inputs.shape[-2] * data.train.inputs.shape[-1]
            self.permutations = permutations(cfg.tasks, pixels, seeds.permutations(cfg.seed, run_seed))
        self.head = cfg.head_size(data.cfg)
        if isinstance(cfg, SplitConfig):  # an empty task is a problem of the data, found before any training
            for task, classes in enumerate(cfg.used()):
                for name in ("train", "test"):
                    labels = getattr(data, name).labels
                    if not torch.isin(labels, torch.tensor(classes, device=labels.device)).any():
                        raise DataError(f"task {task + 1} of continual={cfg.name} (classes {classes}) has no "
                                        f"{name} images in {data.cfg.name}; use a larger dataset.{name}_subset "
                                        f"or other classes")

    def __len__(self) -> int:
        return self.cfg.tasks

    def split_of(self, images: ImageSet, task: int) -> ImageSet:
        """Task ``task``'s (0-based) part of one split."""
        if isinstance(self.cfg, PermutedConfig):
            return images if task == 0 else permute(images, self.permutations[task])
        return split(images, self.cfg.used()[task], relabel=self.cfg.head == "shared")

    def splits(self, task: int) -> DataSplits:
        """Task ``task``'s train, validation and test splits, as the training loop takes them."""
        data = self.data
        return dataclasses.replace(data, train=self.split_of(data.train, task), test=self.split_of(data.test, task),
                                   val=self.split_of(data.val, task) if data.val is not None else None,
                                   num_classes=self.head)

    def test(self, task: int) -> ImageSet:
        return self.split_of(self.data.test, task)


__all__ = ["HEADS", "SEQUENCES", "PermutedConfig", "SequenceConfig", "SplitConfig", "TaskData", "permutations",
           "permute", "split"]
