"""The k-winners paper's figures: test accuracy and noise scores of the epoch with the best test accuracy
(``eval.best_test``), for its reproduction table only: no claim decides on an epoch chosen on the test set."""

from __future__ import annotations

from sparsebench.measurements.base import Trained, measurement, other_weights
from sparsebench.metrics.evaluation import evaluate
from sparsebench.metrics.noise import noise_robustness

# Its other paths are ``best_test/<path>``, named as ``<path>`` "at the best-test epoch"
# (``sparsebench.report.names``).
NAMES = ((r"best_test/epoch", "epoch of best test accuracy", ""),)


@measurement("best_test", ("best_test",), enabled=lambda cfg: cfg.eval.best_test, names=NAMES, label="the best-test epoch again")
def best_test(trained: Trained) -> dict:
    """The model keeps its own (selected) weights afterwards."""
    if "best_test" not in trained.fitted.kept:
        return {}
    model, data, cfg = trained.model, trained.data, trained.cfg
    epoch, state = trained.fitted.kept["best_test"]
    with other_weights(model, state):
        out = {"epoch": epoch, "test": evaluate(model, data.test.inputs, data.test.labels, cfg.eval.batch_size).as_dict()}
        if cfg.eval.noise:
            out["noise"] = noise_robustness(model, data, cfg.eval)
    return {"best_test": out}
