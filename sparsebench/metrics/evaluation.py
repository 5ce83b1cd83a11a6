"""Accuracy and loss of a model on a split, batched on the device with one host sync at the end."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sparsebench import seeds


@dataclass
class Evaluation:
    accuracy: float  # percent
    loss: float  # mean cross-entropy

    def as_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "loss": self.loss}


@torch.no_grad()
def correct_and_loss(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                     batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Number of correct predictions and summed loss, as device tensors (no host sync)."""
    correct = torch.zeros((), dtype=torch.int64, device=labels.device)
    loss = torch.zeros((), dtype=torch.float64, device=labels.device)
    for start in range(0, len(labels), batch_size):
        x, y = inputs[start:start + batch_size], labels[start:start + batch_size]
        logits = model(x).float()
        correct += (logits.argmax(1) == y).sum()
        loss += F.cross_entropy(logits, y, reduction="sum")
    return correct, loss


def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int) -> Evaluation:
    """Accuracy (percent) and mean loss in evaluation mode; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        correct, loss = correct_and_loss(model, inputs, labels, batch_size)
    finally:
        model.train(was_training)
    count = len(labels)
    return Evaluation(100.0 * correct.item() / count, loss.item() / count)


# torch's dropout layers (Dropout, Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout), by the public names
# of its dropout module: torch's classes do not say whether they are stochastic, sparsebench.nn's do.
TORCH_DROPOUT = tuple(getattr(nn.modules.dropout, name) for name in nn.modules.dropout.__all__)


def is_stochastic(module: nn.Module) -> bool:
    """Whether ``module`` acts randomly in training mode and deterministically in evaluation mode: as
    it declares with a ``stochastic`` attribute (sparsebench.nn's dropout, Sparseout and DropConnect
    layers; any new layer), else whether it is one of torch's dropout layers."""
    return bool(getattr(module, "stochastic", isinstance(module, TORCH_DROPOUT)))


def stochastic_layers(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that :func:`is_stochastic` finds, in ``model.modules()`` order."""
    return [m for m in model.modules() if is_stochastic(m)]


@torch.no_grad()
def with_dropout_on(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
                    passes: int, seed: int) -> dict | None:
    """Accuracy over ``passes`` evaluations with the stochastic layers left in training mode (everything
    else, batch norm and k-winners included, stays in evaluation mode), beside the evaluation-mode
    accuracy. ``consistency`` is the share of examples given the same class in every pass.
    None when the model has no stochastic layer."""
    layers = stochastic_layers(model)
    if not layers:
        return None
    was_training = model.training
    deterministic = evaluate(model, inputs, labels, batch_size).accuracy
    model.eval()
    for layer in layers:
        layer.train()
    try:
        with torch.random.fork_rng(devices=[labels.device] if labels.device.type == "cuda" else []):
            torch.manual_seed(seeds.dropout_on(seed))
            predictions = torch.stack([
                torch.cat([model(inputs[s:s + batch_size]).argmax(1) for s in range(0, len(labels), batch_size)])
                for _ in range(passes)])
    finally:
        model.train(was_training)
    accuracy = (predictions == labels).double().mean(1) * 100.0
    consistent = (predictions == predictions[0]).all(0).double().mean() * 100.0
    return {"passes": passes, "eval_mode_accuracy": deterministic,
            "accuracy_mean": accuracy.mean().item(), "accuracy_std": accuracy.std().item() if passes > 1 else 0.0,
            "accuracy_min": accuracy.min().item(), "accuracy_max": accuracy.max().item(),
            "consistency": consistent.item()}
