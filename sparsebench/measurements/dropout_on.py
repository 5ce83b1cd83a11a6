"""Test accuracy with the stochastic layers left in training mode (Monte-Carlo dropout; claim G2)."""

from __future__ import annotations

from sparsebench.measurements.base import Trained, measurement
from sparsebench.metrics.evaluation import with_dropout_on

NAMES = (
    (r"dropout_on/accuracy_mean", "test accuracy with dropout left on (mean over passes)", "%"),
    (r"dropout_on/accuracy_std", "spread of test accuracy over passes with dropout left on (std)", "points"),
    (r"dropout_on/accuracy_(?P<end>min|max)", "{end} test accuracy over passes with dropout left on", "%"),
    (r"dropout_on/eval_mode_accuracy", "test accuracy in evaluation mode", "%"),
    (r"dropout_on/passes", "evaluation passes with dropout left on", ""),
    (r"dropout_on/consistency", "test images given the same class in every pass with dropout left on", "%"),
)


@measurement("dropout_on", ("dropout_on",), enabled=lambda cfg: cfg.eval.train_mode_passes > 0, names=NAMES)
def dropout_on(trained: Trained) -> dict:
    cfg, test = trained.cfg, trained.data.test
    return {"dropout_on": with_dropout_on(trained.model, test.inputs, test.labels, cfg.eval.batch_size,
                                          cfg.eval.train_mode_passes, cfg.eval.noise_seed)}
