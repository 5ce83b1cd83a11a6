"""Training: optimizer and schedule (``optim``) and the loop (``loop``)."""

from sparsebench.progress import progress_enabled
from sparsebench.train.loop import Diverged, FitResult, fit

__all__ = ["Diverged", "FitResult", "fit", "progress_enabled"]
