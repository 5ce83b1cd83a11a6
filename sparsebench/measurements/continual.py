"""A task sequence's own numbers (``sparsebench.continual.metrics``): the accuracy matrix, forgetting,
backward and forward transfer, learning accuracy, the share of weights each task changed."""

from __future__ import annotations

from sparsebench.measurements.base import Trained, measurement

# Lopez-Paz & Ranzato 2017; forgetting as Chaudhry et al. 2018.
NAMES = (
    (r"continual/forgetting", "forgetting (best earlier accuracy − final accuracy, mean over earlier tasks)",
     "points"),
    (r"continual/average_accuracy", "average final accuracy over the tasks", "%"),
    (r"continual/validation_average_accuracy", "average final accuracy over the tasks' validation images", "%"),
    (r"continual/learning_accuracy", "accuracy on each task just after learning it (mean)", "%"),
    (r"continual/normalised_forgetting", "forgetting normalised by learning accuracy (forgetting / learning accuracy)",
     "fraction"),
    (r"continual/backward_transfer", "backward transfer", "points"),
    (r"continual/forward_transfer", "forward transfer", "points"),
    (r"continual/tasks", "tasks in the sequence", ""),
    (r"continual/weights_changed/threshold", "change that counts a weight as changed", "× initial weight std"),
    (r"continual/weights_changed/mean/(?P<layer>[^/]+)", "share of weights each task changed{of_layer} (mean)",
     "fraction of weights"),
    (r"continual/weights_changed_lr_steps/threshold", "change that counts a weight as changed", "|Δw|"),
    (r"continual/weights_changed_lr_steps/lr_steps", "change that counts a weight as changed, in optimizer steps",
     "× learning rate"),
    (r"continual/weights_changed_lr_steps/mean/(?P<layer>[^/]+)",
     "share of weights each task moved by more than the learning-rate threshold{of_layer} (mean)",
     "fraction of weights"),
)


@measurement("continual", ("continual",), enabled=lambda cfg: cfg.continual is not None, names=NAMES, label="the task sequence")
def continual(trained: Trained) -> dict:
    return {"continual": trained.sequence.metrics}
