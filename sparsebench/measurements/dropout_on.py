"""Test accuracy with the stochastic layers left in training mode (claim G2), and Monte-Carlo dropout
(Gal & Ghahramani 2016): the softmax probabilities of the same passes averaged."""

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
    (r"mc_dropout/accuracy", "test accuracy of MC dropout (softmax averaged over passes with dropout left on)", "%"),
    (r"mc_dropout/nll", "test negative log-likelihood of MC dropout (softmax averaged over passes)", "nats"),
    (r"mc_dropout/ece", "expected calibration error of MC dropout on the test set (15 bins)", "fraction"),
    (r"mc_dropout/passes", "passes averaged by MC dropout", ""),
)


@measurement("dropout_on", ("dropout_on", "mc_dropout"), enabled=lambda cfg: cfg.eval.train_mode_passes > 0,
             names=NAMES, label="test passes with dropout left on")
def dropout_on(trained: Trained) -> dict:
    """Both groups null for a model without stochastic layers."""
    cfg, test = trained.cfg, trained.data.test
    found = with_dropout_on(trained.model, test.inputs, test.labels, cfg.eval.batch_size, cfg.eval.train_mode_passes,
                            cfg.eval.noise_seed)
    return found if found is not None else {"dropout_on": None, "mc_dropout": None}
