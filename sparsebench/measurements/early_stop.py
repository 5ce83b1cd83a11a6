"""Early stopping on the validation split as a check of convergence: the measurements that claims decide on,
taken again on the weights of the epoch with the best validation accuracy (``eval.early_stop``), beside
those of the selected (last) epoch. A verdict that holds at both epochs does not hang on when training
stopped. Kept as ``early_stop/<path>``, named "<name> at the early-stopping (best-validation) epoch"
(``sparsebench.report.names``)."""

from __future__ import annotations

import copy
import dataclasses

from sparsebench.measurements.base import (
    MEASUREMENTS,
    Trained,
    measurement,
    other_weights,
)

NAMES = ((r"early_stop/epoch", "epoch of best validation accuracy (early stopping)", ""),)

# What is measured again, by the measurement that writes it (its own compute, run on the other weights),
# and the groups kept of it: the scores, the trained weights and the activations, not what describes the
# run rather than the weights (selection, convergence, speed) nor the per-image bits (test/correct_bits).
REMEASURED = {"evaluation": ("test", "train", "generalization_gap", "validation", "weights", "activations"),
              "noise": ("noise",), "dropout_on": ("dropout_on", "mc_dropout")}
# Of the evaluation's weights: only what training changed (the initial weights are the run's own).
WEIGHTS_KEPT = ("final", "final_profile")


def enabled(cfg) -> bool:
    """On with eval.early_stop for a single-task run that selects its last epoch and has a validation split
    (with train.select=best_val the record's own measurements are the early-stopping epoch's; a task
    sequence trains each task for a set budget and has no one best epoch)."""
    return bool(cfg.eval.early_stop and cfg.dataset.val_size > 0 and cfg.train.select == "last"
                and cfg.continual is None)


@measurement("early_stop", ("early_stop",), enabled=enabled, names=NAMES, label="the early-stopping epoch again")
def early_stop(trained: Trained) -> dict:
    """The model keeps its own (selected) weights afterwards."""
    if "best_val" not in trained.fitted.kept:
        return {}
    model = trained.model
    epoch, state = trained.fitted.kept["best_val"]
    wanted = [(MEASUREMENTS[name], groups) for name, groups in REMEASURED.items()
              if MEASUREMENTS[name].enabled(trained.cfg)]
    out: dict = {"epoch": epoch}
    if epoch == trained.fitted.selected_epoch:
        # The same weights as the selected epoch's, which the measurements (deterministic: their random
        # draws are seeded) have just measured: their groups, copied rather than computed twice.
        for _, groups in wanted:
            out.update({group: copy.deepcopy(trained.metrics[group]) for group in groups if group in trained.metrics})
    else:
        with other_weights(model, state):
            for item, groups in wanted:
                found = item.compute(dataclasses.replace(trained, metrics={}))
                out.update({group: found[group] for group in groups if group in found})
    out["test"] = {key: value for key, value in out["test"].items() if key in ("accuracy", "loss", "ece")}
    out["weights"] = {key: value for key, value in out["weights"].items() if key in WEIGHTS_KEPT}
    return {"early_stop": out}
