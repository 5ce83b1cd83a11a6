"""The training loop: epochs of mini-batch steps, the regularizer's penalty and hooks, per-epoch
evaluation for model selection, divergence detection, and a resumable state after every epoch.

Nothing in a step waits for the host: each step's loss and predictions stay on the device and are
reduced and read once per epoch (which is also when a NaN or infinite loss is detected).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from sparsebench import seeds
from sparsebench.data import DataSplits
from sparsebench.errors import RunError
from sparsebench.metrics.evaluation import correct_and_loss
from sparsebench.network import Network
from sparsebench.progress import bar, duration
from sparsebench.records.record import upgraded
from sparsebench.regularizers import Regularizer
from sparsebench.schemas import TrainConfig
from sparsebench.train.optim import build_optimizer, build_scheduler

log = logging.getLogger("sparsebench")


class Diverged(RunError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float):
        self.epoch, self.loss = epoch, loss
        super().__init__(f"training loss became {loss} in epoch {epoch}; lower train.lr or check the data")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    selected_epoch: int = 0  # 1-based epoch whose weights the model now holds
    resumed_from: int = 0  # epochs restored from a checkpoint instead of trained here
    # Weights of other epochs asked for with ``keep`` (rule -> (1-based epoch, state dict)), e.g. the
    # epoch of best test accuracy that the k-winners paper reported.
    kept: dict[str, tuple[int, dict]] = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# Selection rules that keep the weights of their best epoch, and the history entry that scores it.
SCORES = {"best_val": "validation_accuracy", "best_test": "test_accuracy"}


def fit(model: Network, regularizer: Regularizer, data: DataSplits, cfg: TrainConfig, *, seed: int,
        eval_batch_size: int, progress: bool = False, resume: dict | None = None,
        save_state: Callable[[dict], None] | None = None, keep: tuple[str, ...] = (),
        on_epoch: Callable[[dict], None] | None = None, log_epochs: bool = True,
        test_curve: bool = True) -> FitResult:
    """Train ``model`` in place for ``cfg.epochs`` epochs and leave it holding the selected epoch's weights.

    ``resume`` is a state from ``save_state`` of an interrupted run with the same config: training
    continues after its last completed epoch and ends with the numbers an uninterrupted run gives.
    ``keep``: further rules of ``SCORES`` whose best epoch's weights are returned in ``FitResult.kept``.
    ``on_epoch`` is called with each epoch's history entry (trackers, progress logs). Each epoch is
    logged in one line, with or without a progress bar (``progress``: an epoch bar and a batch bar,
    with the last epoch's accuracy in the epoch bar), unless ``log_epochs`` is off (short inner fits).
    Each epoch scores the validation split, and the test split unless ``test_curve`` is off.
    """
    device = data.train.labels.device
    # ``model`` may be torch.compile'd: it runs the forward passes; the module beneath it carries the
    # parts the regularizer and the state dicts need.
    network = getattr(model, "_orig_mod", model)
    optimizer = build_optimizer(network, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    order_generator = torch.Generator().manual_seed(seeds.data_order(seed))
    augment_generator = torch.Generator(device=device).manual_seed(seeds.augmentation(seed))
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext())
    result = FitResult()
    rules = [rule for rule in dict.fromkeys((cfg.select, *keep)) if rule in SCORES]
    best: dict[str, tuple[float, int, dict | None]] = {rule: (-math.inf, 0, None) for rule in rules}

    if resume is not None:
        network.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        order_generator.set_state(resume["order_generator"])
        augment_generator.set_state(resume["augment_generator"])
        torch.set_rng_state(resume["rng"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        result.history = upgraded(None, resume["history"])[1]  # a state saved before ``val`` was ``validation``
        best.update({rule: kept for rule, kept in resume["best"].items() if rule in best})
        result.resumed_from = len(result.history)
        log.info("resuming after epoch %d of %d", result.resumed_from, cfg.epochs)

    epochs = bar(desc="training", total=cfg.epochs, enabled=progress, initial=result.resumed_from, unit="epoch")
    fit_started = time.perf_counter()
    for epoch in range(result.resumed_from + 1, cfg.epochs + 1):
        batch_size = cfg.first_epoch_batch_size if epoch == 1 and cfg.first_epoch_batch_size else cfg.batch_size
        batches = data.train_batches(batch_size, order_generator, augment_generator)
        lr = optimizer.param_groups[0]["lr"]
        # Per-step metrics are summed in place into two device scalars: nothing allocated in a step
        # outlives it. (Keeping each step's loss and predictions in lists made peak memory grow with
        # the number of steps: small long-lived tensors between each step's large temporaries
        # fragment the allocator's heap, 5.9 GB after 2,000 steps of Sparse CNN-2 at batch 4.)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)

        model.train()
        _sync(device)
        started = time.perf_counter()
        for step, (inputs, labels) in enumerate(bar(batches, desc=f"epoch {epoch}", enabled=progress, unit="batch")):
            with autocast:
                logits = model(inputs)
                loss = F.cross_entropy(logits, labels)
                penalty = regularizer.penalty(network)
                objective = loss if penalty is None else loss + penalty
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            regularizer.after_step(network, lr)
            loss_sum.add_(loss.detach(), alpha=len(labels))
            correct.add_(logits.detach().argmax(1).eq(labels).sum())
            if progress and step % 50 == 0:
                epochs.set_postfix(_postfix(result.history[-1] if result.history else None, loss.item()))
        _sync(device)
        seconds = time.perf_counter() - started

        samples = len(data.train)
        train_loss = loss_sum.item() / samples
        if not math.isfinite(train_loss):
            raise Diverged(epoch, train_loss)
        if scheduler is not None:
            scheduler.step()
        regularizer.after_epoch(network)

        entry = {"epoch": epoch, "lr": lr, "batch_size": batch_size, "seconds": seconds,
                 "samples_per_second": samples / seconds, "train_loss": train_loss,
                 "train_accuracy": 100.0 * correct.item() / samples}
        model.eval()
        for split, images in (("validation", data.val), ("test", data.test if test_curve else None)):
            if images is not None:
                split_correct, split_loss = correct_and_loss(model, images.inputs, images.labels, eval_batch_size)
                entry[f"{split}_accuracy"] = 100.0 * split_correct.item() / len(images)
                entry[f"{split}_loss"] = split_loss.item() / len(images)
        result.history.append(entry)

        for rule, (score, _, _) in best.items():
            if entry.get(SCORES[rule], -math.inf) > score:
                best[rule] = (entry[SCORES[rule]], epoch, copy.deepcopy(network.state_dict()))
        epochs.set_postfix(_postfix(entry, train_loss))
        epochs.update(1)
        if log_epochs:
            _log_epoch(entry, cfg.epochs, time.perf_counter() - fit_started, epoch - result.resumed_from)
        if on_epoch is not None:
            on_epoch(entry)
        if save_state is not None:
            save_state({
                "model": network.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "order_generator": order_generator.get_state(), "augment_generator": augment_generator.get_state(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "history": result.history, "best": best,
            })
    epochs.close()

    result.selected_epoch = len(result.history)
    result.kept = {rule: (epoch, state) for rule, (_, epoch, state) in best.items() if state is not None}
    if cfg.select in result.kept:
        result.selected_epoch, state = result.kept[cfg.select]
        network.load_state_dict(state)
    return result


def _postfix(entry: dict | None, loss: float) -> dict[str, str]:
    """The epoch bar's postfix: the running training loss and the last finished epoch's accuracy on the
    split that selects (validation where there is one, else test)."""
    shown = {"loss": f"{loss:.4f}"}
    for split, short in (("validation", "val"), ("test", "test")):
        if entry is not None and f"{split}_accuracy" in entry:
            shown[short] = f"{entry[f'{split}_accuracy']:.2f}%"
            break
    return shown


def _log_epoch(entry: dict, epochs: int, elapsed: float, trained_here: int) -> None:
    """One line per epoch, in the log and on the console alike (above the bar where one shows): what it
    reached and roughly how long the rest will take."""
    left = (epochs - entry["epoch"]) * elapsed / max(trained_here, 1)
    scores = "".join(f", {split} {entry[f'{split}_accuracy']:.2f}%" for split in ("validation", "test")
                     if f"{split}_accuracy" in entry)
    log.info("epoch %d/%d: loss %.4f, train %.2f%%%s, %.1f s, about %s left", entry["epoch"], epochs,
             entry["train_loss"], entry["train_accuracy"], scores, entry["seconds"], duration(left))
