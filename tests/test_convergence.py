"""The convergence criterion on constructed loss histories, checked by hand."""

from __future__ import annotations

from sparsebench.schemas import ConvergenceConfig
from sparsebench.train.convergence import convergence


def _history(losses):
    return [{"epoch": i + 1, "train_loss": loss} for i, loss in enumerate(losses)]


def test_a_loss_still_falling_by_more_than_the_tolerance_has_not_converged():
    # Over the last 3 epochs: (0.20 - 0.14) / 3 = 0.02 per epoch; allowed max(0.01 * 0.14, 0.001) = 0.0014.
    result = convergence(_history([0.5, 0.3, 0.2, 0.18, 0.16, 0.14]), ConvergenceConfig(window=3))
    assert not result["converged"]
    assert abs(result["loss_change_per_epoch"] - 0.02) < 1e-12 and abs(result["allowed_per_epoch"] - 0.0014) < 1e-12


def test_a_flat_loss_has_converged_by_the_relative_rule():
    # (0.1010 - 0.1001) / 3 = 0.0003 per epoch <= 0.01 * 0.1001
    assert convergence(_history([0.3, 0.1010, 0.1005, 0.1003, 0.1001]), ConvergenceConfig(window=3))["converged"]


def test_a_tiny_loss_that_keeps_halving_has_converged_by_the_absolute_floor():
    # Relative change is large (halving each epoch) but (0.0016 - 0.0002) / 3 = 0.00047 <= abs_tol 0.001.
    result = convergence(_history([0.1, 0.0016, 0.0008, 0.0004, 0.0002]), ConvergenceConfig(window=3))
    assert result["converged"]
    assert not convergence(_history([0.1, 0.0016, 0.0008, 0.0004, 0.0002]),
                           ConvergenceConfig(window=3, abs_tol=0.0001))["converged"]


def test_a_rising_loss_has_not_converged_and_short_runs_cannot_tell():
    assert not convergence(_history([0.10, 0.11, 0.13, 0.16]), ConvergenceConfig(window=3))["converged"]
    short = convergence(_history([0.3, 0.2, 0.1]), ConvergenceConfig(window=3))
    assert not short["converged"] and "needs more than 3" in short["reason"]
