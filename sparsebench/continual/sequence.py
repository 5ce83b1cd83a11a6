"""A task sequence as one run: ``train.fit`` once per task, in order, on one network, with no replay;
after each task the test accuracy on every task (a row of the accuracy matrix) and the share of
weights the task's training changed. With ``eval.test_curve`` off (a tuning trial) the test split is
never scored: the record keeps the final validation accuracy over the tasks and the shares of weights
changed, and none of the metrics read from the matrix.

Each task is a call of ``train.fit`` with the run's training config: its own optimizer and schedule
(momentum or Adam's moments do not carry from one task to the next; a schedule restarts), the epochs
of ``train.epochs`` (raised where ``continual.min_steps`` asks for more) and the selection rule of
``train.select``, applied within the task. The next task
starts from the weights the last one ended with.

Resuming: the state saved after every epoch is the training loop's, plus what the sequence has done
so far (the task under way, the accuracy matrix's rows, the weights at the task's start, the history
of the tasks before), so a killed run resumes inside its task and ends with the numbers of an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparsebench import seeds
from sparsebench.continual.metrics import (
    changed_fractions,
    sequence_metrics,
    weight_snapshot,
)
from sparsebench.data import DataSplits
from sparsebench.data.tasks import TaskData
from sparsebench.metrics.evaluation import evaluate
from sparsebench.metrics.weights import weight_stds
from sparsebench.network import Network
from sparsebench.regularizers import Regularizer
from sparsebench.schemas import RunConfig, TrainConfig
from sparsebench.train import FitResult, fit

log = logging.getLogger("sparsebench")

STATE_KEY = "continual"  # where the sequence's progress sits in a saved training state


@dataclass
class SequenceResult:
    last_fit: FitResult  # the last task's training: what a record's selection, convergence and speed describe
    last_task: DataSplits  # the last task's data: what a record's test / train scores and measurements use
    history: list[dict]  # every epoch of every task in order; ``epoch`` counts on over tasks, ``task`` and
    # ``task_epoch`` say where it belongs
    metrics: dict  # metrics.continual of the record
    resumed_epochs: int  # epochs restored from a saved state instead of trained in this process


def accuracies(model: Network, tasks: TaskData, batch_size: int) -> list[float]:
    """Test accuracy (percent) on every task of the sequence."""
    return [evaluate(model, test.inputs, test.labels, batch_size).accuracy
            for test in (tasks.test(task) for task in range(len(tasks)))]


def task_budget(train: TrainConfig, min_steps: int, images: int) -> TrainConfig:
    """``train`` with its epochs raised to the fewest whole epochs of ``images`` that make ``min_steps``
    optimizer steps at its batch size, when train.epochs makes fewer."""
    steps_per_epoch = math.ceil(images / train.batch_size)
    epochs = max(train.epochs, math.ceil(min_steps / steps_per_epoch))
    return train if epochs == train.epochs else dataclasses.replace(train, epochs=epochs)


def fit_sequence(model: Network, regularizer: Regularizer, data: DataSplits, cfg: RunConfig, *,
                 progress: bool = False, resume: dict | None = None,
                 save_state: Callable[[dict], None] | None = None, keep: tuple[str, ...] = (),
                 on_epoch: Callable[[dict], None] | None = None) -> SequenceResult:
    """Train ``model`` on the tasks of ``cfg.continual`` made from ``data``, one after another.

    ``resume``/``save_state`` as for ``train.fit``; the states carry the sequence's progress too.
    ``model`` must hold its initial weights (a resumed run loads its state here)."""
    spec = cfg.continual
    tasks = TaskData(data, spec, cfg.seed)
    network = getattr(model, "_orig_mod", model)
    batch = cfg.eval.batch_size
    test_curve = cfg.eval.test_curve
    stds = weight_stds(network)  # the initial weights' scale, for the change threshold
    fit_resume = dict(resume) if resume and STATE_KEY in resume else None
    if fit_resume is not None:
        done = fit_resume.pop(STATE_KEY)
        resumed = len(done["history"])
        log.info("resuming task %d of %d", done["task"] + 1, len(tasks))
    else:
        done = {"task": 0, "initial": accuracies(model, tasks, batch) if test_curve else None, "matrix": [],
                "changed": [], "history": [], "start": None}
        resumed = 0

    def save(state: dict) -> None:
        save_state({**state, STATE_KEY: done})

    fitted = task_data = None
    for task in range(done["task"], len(tasks)):
        task_data = tasks.splits(task)
        if done["start"] is None:
            done["start"] = weight_snapshot(network)
        # Each task draws its own batch order and augmentation.
        fitted = fit(model, regularizer, task_data, task_budget(cfg.train, spec.min_steps, len(task_data.train)),
                     seed=seeds.task(cfg.seed, task), eval_batch_size=batch,
                     progress=progress, resume=fit_resume, save_state=save if save_state else None, keep=keep,
                     on_epoch=on_epoch, test_curve=test_curve)
        resumed += fitted.resumed_from
        fit_resume = None
        end = weight_snapshot(network)
        done["changed"].append(changed_fractions(done["start"], end, stds, spec.changed_threshold))
        if spec.changed_threshold_lr_steps is not None:
            # The same count against |Δw| > steps x lr: lr is each layer's scale here.
            lr_scale = dict.fromkeys(stds, cfg.train.lr)
            done.setdefault("changed_lr_steps", []).append(
                changed_fractions(done["start"], end, lr_scale, spec.changed_threshold_lr_steps))
        if test_curve:
            done["matrix"].append(accuracies(model, tasks, batch))
        offset = len(done["history"])
        done["history"] += [{**entry, "epoch": offset + entry["epoch"], "task": task + 1, "task_epoch": entry["epoch"]}
                            for entry in fitted.history]
        done["task"], done["start"] = task + 1, None
        if test_curve:
            row = done["matrix"][-1]
            log.info("task %d/%d learned: %.2f%% on it, %.2f%% on task 1, %.2f%% on average over the tasks so far",
                     task + 1, len(tasks), row[task], row[0], sum(row[:task + 1]) / (task + 1))
        else:
            log.info("task %d/%d learned", task + 1, len(tasks))

    epochs = [sum(entry["task"] == task + 1 for entry in done["history"]) for task in range(len(tasks))]
    # The final accuracy on every task's validation split: what a learning rate is chosen on
    # (claims.tuning), the test-set matrix above left unread by the choice.
    # Each task's validation split alone: its training split, five times the images, need not be permuted again.
    validation = [] if data.val is None else [
        evaluate(model, val.inputs, val.labels, batch).accuracy
        for val in (tasks.split_of(data.val, task) for task in range(len(tasks)))]
    from_matrix = ({**sequence_metrics(done["matrix"], done["initial"]),
                    "accuracy_matrix": done["matrix"], "initial_accuracy": done["initial"]} if test_curve
                   else {"tasks": len(tasks)})
    metrics = {**from_matrix,
               **({"validation_average_accuracy": float(np.mean(validation))} if len(validation) == len(tasks) else {}),
               "epochs_per_task": epochs, "weights_changed": _changed_by_layer(done["changed"], spec.changed_threshold)}
    if spec.changed_threshold_lr_steps is not None:
        metrics["weights_changed_lr_steps"] = {
            **_changed_by_layer(done["changed_lr_steps"], spec.changed_threshold_lr_steps * cfg.train.lr),
            "lr_steps": spec.changed_threshold_lr_steps}
    return SequenceResult(fitted, task_data, done["history"], metrics, resumed)


def _changed_by_layer(per_task: list[dict[str, float]], threshold: float) -> dict:
    """[{layer: share}] per task -> per layer the list over tasks and its mean."""
    layers = list(per_task[0])
    return {"threshold": threshold,
            "per_task": {layer: [shares[layer] for shares in per_task] for layer in layers},
            "mean": {layer: sum(shares[layer] for shares in per_task) / len(per_task) for layer in layers}}


__all__ = ["STATE_KEY", "SequenceResult", "accuracies", "fit_sequence"]
