"""Accuracy and loss of a model on a split, batched on the device with one host sync at the end."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


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
