"""Whether a run was trained to convergence, judged from its per-epoch training loss.

Converged: over the last ``window`` epochs the training loss changed by at most ``rel_tol`` of its
final value per epoch, or by at most ``abs_tol`` nats per epoch (``train.convergence``). The absolute
floor is what lets a network that fits its training set count as converged: its loss keeps halving
while nothing it computes changes. A loss that still moves by more, down or up, is not converged.
"""

from __future__ import annotations

from sparsebench.schemas import ConvergenceConfig


def convergence(history: list[dict], cfg: ConvergenceConfig) -> dict:
    """``converged`` (bool) and the numbers it rests on: the loss change per epoch over the window
    (positive: falling) and the change allowed."""
    losses = [entry["train_loss"] for entry in history]
    rule = {"window": cfg.window, "rel_tol": cfg.rel_tol, "abs_tol": cfg.abs_tol}
    if len(losses) <= cfg.window:
        return {"converged": False, "reason": f"{len(losses)} epochs: the criterion needs more than {cfg.window}",
                "loss_change_per_epoch": None, "allowed_per_epoch": None, **rule}
    change = (losses[-cfg.window - 1] - losses[-1]) / cfg.window
    allowed = max(cfg.rel_tol * losses[-1], cfg.abs_tol)
    return {"converged": abs(change) <= allowed, "loss_change_per_epoch": change, "allowed_per_epoch": allowed,
            "final_train_loss": losses[-1], **rule}
