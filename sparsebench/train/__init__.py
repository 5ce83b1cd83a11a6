"""Training: optimizer and schedule (``optim``) and the loop (``loop``)."""

from sparsebench.train.loop import Diverged, FitResult, fit, progress_enabled

__all__ = ["Diverged", "FitResult", "fit", "progress_enabled"]
