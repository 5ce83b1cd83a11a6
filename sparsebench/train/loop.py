"""The training loop: epochs of mini-batch steps, the regularizer's penalty and hooks, per-epoch
evaluation for model selection, divergence detection, and a resumable state after every epoch.

Nothing in a step waits for the host: each step's loss and predictions stay on the device and are
reduced and read once per epoch (which is also when a NaN or infinite loss is detected).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sparsebench.config import TrainConfig
from sparsebench.data import DataSplits
from sparsebench.errors import RunError
from sparsebench.metrics.evaluation import correct_and_loss
from sparsebench.models import Network
from sparsebench.regularizers import Regularizer
from sparsebench.train.optim import build_optimizer, build_scheduler


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


def progress_enabled(setting: str) -> bool:
    """auto: a bar only on an interactive terminal (quiet in CI and logs)."""
    return setting == "on" or (setting == "auto" and sys.stderr.isatty())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _score(entry: dict, select: str) -> float | None:
    return {"best_val": entry.get("val_accuracy"), "best_test": entry.get("test_accuracy")}.get(select)


def fit(model: Network, regularizer: Regularizer, data: DataSplits, cfg: TrainConfig, *, seed: int,
        eval_batch_size: int, progress: bool = False, resume: dict | None = None,
        save_state: Callable[[dict], None] | None = None) -> FitResult:
    """Train ``model`` in place for ``cfg.epochs`` epochs and leave it holding the selected epoch's weights.

    ``resume`` is a state from ``save_state`` of an interrupted run with the same config: training
    continues after its last completed epoch and ends with the numbers an uninterrupted run gives.
    """
    device = data.train.labels.device
    # ``model`` may be torch.compile'd: it runs the forward passes; the module beneath it carries the
    # parts the regularizer and the state dicts need.
    network = getattr(model, "_orig_mod", model)
    optimizer = build_optimizer(network, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    order_generator = torch.Generator().manual_seed(seed)
    augment_generator = torch.Generator(device=device).manual_seed(seed + 1)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext())
    result, best_score, best_state = FitResult(), -math.inf, None

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
        result.history, best_score, best_state = resume["history"], resume["best_score"], resume["best_state"]
        result.resumed_from = len(result.history)

    epochs = tqdm(range(cfg.epochs), desc="epochs", disable=not progress, initial=result.resumed_from)
    for epoch in range(result.resumed_from + 1, cfg.epochs + 1):
        batch_size = cfg.first_epoch_batch_size if epoch == 1 and cfg.first_epoch_batch_size else cfg.batch_size
        batches = data.train_batches(batch_size, order_generator, augment_generator)
        lr = optimizer.param_groups[0]["lr"]
        # Reduced once per epoch rather than summed per step: a step then launches one small kernel
        # for its metrics (argmax) instead of five, which measured 1% of a step of the default MLP.
        losses, predictions, targets = [], [], []

        model.train()
        _sync(device)
        started = time.perf_counter()
        for step, (inputs, labels) in enumerate(tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not progress)):
            with autocast:
                logits = model(inputs)
                loss = F.cross_entropy(logits, labels)
                penalty = regularizer.penalty(network)
                objective = loss if penalty is None else loss + penalty
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            regularizer.after_step(network, lr)
            losses.append(loss.detach())
            predictions.append(logits.detach().argmax(1))
            targets.append(labels)
            if progress and step % 50 == 0:
                epochs.set_postfix(loss=f"{loss.item():.4f}")
        _sync(device)
        seconds = time.perf_counter() - started

        samples = len(data.train)
        sizes = torch.tensor([len(t) for t in targets], dtype=torch.float64, device=device)
        train_loss = (torch.stack(losses).double() @ sizes).item() / samples
        correct = (torch.cat(predictions) == torch.cat(targets)).sum()
        del losses, predictions, targets
        if not math.isfinite(train_loss):
            raise Diverged(epoch, train_loss)
        if scheduler is not None:
            scheduler.step()
        regularizer.after_epoch(network)

        entry = {"epoch": epoch, "lr": lr, "batch_size": batch_size, "seconds": seconds,
                 "samples_per_second": samples / seconds, "train_loss": train_loss,
                 "train_accuracy": 100.0 * correct.item() / samples}
        model.eval()
        for split in ("val", "test"):
            images = getattr(data, split)
            if images is not None:
                split_correct, split_loss = correct_and_loss(model, images.inputs, images.labels, eval_batch_size)
                entry[f"{split}_accuracy"] = 100.0 * split_correct.item() / len(images)
                entry[f"{split}_loss"] = split_loss.item() / len(images)
        result.history.append(entry)

        score = _score(entry, cfg.select)
        if score is not None and score > best_score:
            best_score, best_state = score, copy.deepcopy(network.state_dict())
        epochs.update(1)
        if save_state is not None:
            save_state({
                "model": network.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "order_generator": order_generator.get_state(), "augment_generator": augment_generator.get_state(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "history": result.history, "best_score": best_score, "best_state": best_state,
            })
    epochs.close()

    result.selected_epoch = len(result.history)
    if best_state is not None:
        network.load_state_dict(best_state)
        result.selected_epoch = max(result.history, key=lambda e: _score(e, cfg.select))["epoch"]
    return result
