"""What a task sequence measures: the accuracy matrix and the continual-learning metrics read from it,
and the share of weights each task's training changed.

R[i][j] is the test accuracy (percent) on task j after training task i (0-based here; T tasks), b[j]
the accuracy on task j of the network at initialisation. With the definitions of the papers named:

- average accuracy ACC = (1/T) sum_j R[T-1][j] (Lopez-Paz & Ranzato 2017, GEM; Chaudhry et al.
  2018's A_T is the same number);
- backward transfer BWT = (1/(T-1)) sum_{j<T-1} (R[T-1][j] - R[j][j]) (Lopez-Paz & Ranzato 2017):
  negative when learning later tasks cost accuracy on earlier ones;
- forward transfer FWT = (1/(T-1)) sum_{j>=1} (R[j-1][j] - b[j]) (Lopez-Paz & Ranzato 2017);
- forgetting F = (1/(T-1)) sum_{j<T-1} f_j, f_j = max_{l<T-1} R[l][j] - R[T-1][j] (Chaudhry et al.
  2018, "Riemannian Walk", eq. 9-10 at k = T: the best accuracy task j ever had before the last task
  against its accuracy at the end); the maximum runs over every earlier row, as the paper writes it;
- learning accuracy LA = (1/T) sum_j R[j][j], each task's accuracy just after it was learned (how
  well a network learns at all: a network that learns little has little to forget);
- normalised forgetting F / LA, the share of what was learned that was forgotten: two networks that
  forget the same points from different learning accuracies do not forget alike (issue 21's
  secondary for K4). The ratio of the two recorded numbers, so a reader can redo it from the record.
"""

from __future__ import annotations

import numpy as np
import torch

from sparsebench.metrics.weights import _learnable
from sparsebench.network import Network


def sequence_metrics(matrix: list[list[float]], initial: list[float]) -> dict:
    """The metrics above from the T x T accuracy matrix and the T accuracies at initialisation."""
    r = np.asarray(matrix, dtype=float)
    tasks = len(r)
    if r.shape != (tasks, tasks) or tasks < 2 or len(initial) != tasks:
        raise ValueError(f"need a square accuracy matrix of at least 2 tasks and one initial accuracy per task, "
                         f"got {r.shape} and {len(initial)}")
    final = r[-1]
    forgetting = [float(r[:-1, j].max() - final[j]) for j in range(tasks - 1)]
    learning = float(np.diag(r).mean())
    return {
        "tasks": tasks,
        "average_accuracy": float(final.mean()),
        "backward_transfer": float(np.mean(final[:-1] - np.diag(r)[:-1])),
        "forward_transfer": float(np.mean([r[j - 1, j] - initial[j] for j in range(1, tasks)])),
        "forgetting": float(np.mean(forgetting)),
        "forgetting_per_task": forgetting,
        "learning_accuracy": learning,
        # a network that learned nothing (LA 0) forgot nothing of it: NaN, not a division error
        "normalised_forgetting": float(np.mean(forgetting)) / learning if learning > 0 else float("nan"),
    }


def weight_snapshot(model: Network) -> dict[str, torch.Tensor]:
    """A copy of each layer's learnable weights (structural zeros left out), flattened."""
    return {name: weights.clone() for name, weights in _learnable(model).items()}


def changed_fractions(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], scales: dict[str, float],
                      threshold: float) -> dict[str, float]:
    """Per layer and ``global`` (pooled over layers): the share of learnable weights whose change from
    ``before`` to ``after`` exceeds ``threshold`` times the layer's scale in ``scales`` (its initial
    std, or the learning rate)."""
    out, changed, total = {}, 0, 0
    for name, start in before.items():
        moved = int(((after[name] - start).abs() > threshold * scales[name]).sum())
        out[name] = moved / start.numel()
        changed, total = changed + moved, total + start.numel()
    out["global"] = changed / total
    return out


__all__ = ["changed_fractions", "sequence_metrics", "weight_snapshot"]
