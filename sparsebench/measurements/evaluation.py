"""What every run measures on its selected weights: scores on each split, the selected epoch,
convergence, speed, near-zero weights and activation sparsity."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from sparsebench.measurements.base import Trained, measurement
from sparsebench.metrics.activations import ActivationSparsity
from sparsebench.metrics.evaluation import evaluate, pack_correct
from sparsebench.metrics.weights import (
    magnitude_profile,
    near_zero_fractions,
    scale_free_sparsity,
    weight_stds,
)
from sparsebench.records.paths import is_number
from sparsebench.train.convergence import convergence

_SHARE = "fraction of weights"
_HOYER = "0 dense, 1 one-hot"
NAMES = (
    (r"(?P<split>test|train|validation)/accuracy", "{split} accuracy", "%"),
    # The mean cross-entropy of the softmax probabilities: their negative log-likelihood.
    (r"(?P<split>test|train|validation)/loss", "{split} loss", "cross-entropy, nats"),
    (r"(?P<split>test|train|validation)/ece", "{split} expected calibration error (15 bins)", "fraction"),
    (r"test/correct_bits", "test images classified correctly, one bit each (base64 of numpy.packbits)", ""),
    (r"test/count", "test images", "images"),
    (r"generalization_gap", "train − test accuracy gap", "points"),
    (r"selection/epoch", "selected epoch", ""),
    (r"selection/test_accuracy_by_rule/(?P<rule>\w+)", "test accuracy at the {rule} epoch", "%"),
    (r"convergence/converged", "trained to convergence", ""),
    (r"convergence/loss_change_per_epoch", "training-loss change per epoch at the end", "nats"),
    (r"convergence/allowed_per_epoch", "largest training-loss change per epoch that counts as converged", "nats"),
    (r"convergence/window", "epochs the convergence criterion looks back over", ""),
    (r"convergence/rel_tol", "relative tolerance of the convergence criterion", "fraction of the loss"),
    (r"convergence/abs_tol", "absolute tolerance of the convergence criterion", "nats"),
    # Near-zero weights
    (r"weights/(?P<when>final|init)/global/hoyer",
     "Hoyer sparsity of |w|{at_init}, all weights pooled (each layer weighted by its count of weights)", _HOYER),
    (r"weights/(?P<when>final|init)/global_mean/hoyer",
     "Hoyer sparsity of |w|{at_init}, unweighted mean over layers", _HOYER),
    (r"weights/(?P<when>final|init)/(?P<layer>[^/]+)/hoyer", "Hoyer sparsity of |w|{at_init}{of_layer}", _HOYER),
    (r"weights/change/global/hoyer",
     "change of the Hoyer sparsity of |w| from initialisation, all weights pooled (count-weighted)", "Hoyer, 0 to 1"),
    (r"weights/change/global_mean/hoyer",
     "change of the Hoyer sparsity of |w| from initialisation, unweighted mean over layers", "Hoyer, 0 to 1"),
    (r"weights/change/(?P<layer>[^/]+)/hoyer", "change of the Hoyer sparsity of |w| from initialisation{of_layer}",
     "Hoyer, 0 to 1"),
    (r"weights/(?P<when>final|init)/global/(?P<kind>rms)_(?P<t>[^/]+)",
     "near-zero share{at_init}, {threshold}, count-weighted over layers", _SHARE),
    (r"weights/final/(?P<layer>[^/]+)/(?P<kind>abs|rel|rms)_(?P<t>[^/]+)", "near-zero share{of_layer}, {threshold}",
     _SHARE),
    (r"weights/init/(?P<layer>[^/]+)/(?P<kind>abs|rel|rms)_(?P<t>[^/]+)",
     "near-zero share at initialisation{of_layer}, {threshold}", _SHARE),
    (r"weights/change/(?P<layer>[^/]+)/(?P<kind>abs|rel|rms)_(?P<t>[^/]+)",
     "change of the near-zero share from initialisation{of_layer}, {threshold}", _SHARE),
    (r"weights/(?:final|init)/(?P<layer>[^/]+)/structural", "share of structural zeros{of_layer}", _SHARE),
    (r"weights/(?:final|init)/(?P<layer>[^/]+)/count", "learnable weights{of_layer}", ""),
    (r"weights/init_std/(?P<layer>[^/]+)", "initial weight std{of_layer} (σ_init)", ""),
    (r"weights/final_profile/mean_abs", "mean |w|", ""),
    (r"weights/init_profile/mean_abs", "mean |w| at initialisation", ""),
    (r"weights/final_profile/rms", "root mean square of w", ""),
    (r"weights/init_profile/rms", "root mean square of w at initialisation", ""),
    (r"weights/(?:final|init)_profile/curve_thresholds", "threshold t on |w|", ""),
    (r"weights/(?:final|init)_profile/curve_fractions", "share of weights with |w| < t", _SHARE),
    (r"weights/(?:final|init)_profile/histogram_edges", "|w| (first bin: everything below its upper edge)", ""),
    (r"weights/(?:final|init)_profile/histogram_fractions", "share of weights in the bin", _SHARE),
    # Activations
    (r"activations/(?P<units>[^/]+)/hoyer", "Hoyer sparsity of activations, {units}", "0 dense, 1 one-hot"),
    (r"activations/(?P<units>[^/]+)/zero_fraction", "share of zero activations, {units}", "fraction"),
    (r"activations/(?P<layer>[^/]+)/units", "units{of_layer}", ""),
    # Speed
    (r"speed/seconds_per_epoch", "training time per epoch", "s"),
    (r"speed/samples_per_second", "training throughput", "images/s"),
    (r"speed/measure_seconds", "time of the measurements after training", "s"),
)


def weight_measurements(model, cfg, reference_stds: dict | None = None) -> dict:
    """Near-zero shares (thresholds relative to ``reference_stds``, the initial stds, when given), the
    scale-free ones (Hoyer, below a fraction of each layer's own RMS) and the magnitude profile of
    ``model``'s weights; taken at initialisation and after training."""
    stds = reference_stds or weight_stds(model)
    near_zero = near_zero_fractions(model, cfg.eval.near_zero_abs, cfg.eval.near_zero_rel, stds)
    for layer, row in scale_free_sparsity(model, cfg.eval.near_zero_rms).items():
        near_zero.setdefault(layer, {}).update(row)
    return {"std": stds, "near_zero": near_zero, "profile": magnitude_profile(model)}


def weight_changes(metrics: Mapping) -> dict:
    """Report columns ``weights/change/<layer>/<threshold>``: each near-zero share after training minus
    the same share at initialisation."""
    out = {}
    weights = metrics.get("weights")
    if not (isinstance(weights, dict) and isinstance(weights.get("init"), dict)
            and isinstance(weights.get("final"), dict)):
        return out
    for layer, final in weights["final"].items():
        init = weights["init"].get(layer)
        if not isinstance(final, dict) or not isinstance(init, dict):
            continue
        for key, value in final.items():
            if key in ("count", "structural") or not is_number(value) or not is_number(init.get(key)):
                continue
            out[f"weights/change/{layer}/{key}"] = value - init[key]
    return out


def _selection(fitted, rule: str) -> dict:
    """The chosen epoch, and the test accuracy each selection rule would have reported (so the
    k-winners paper's best-test figure can be shown beside the honest ones). A run that did not score
    the test split along training (``eval.test_curve`` off: a tuning trial) has none of them."""
    history = fitted.history
    at = {"last": history[-1].get("test_accuracy")}
    for name, key in (("best_val", "validation_accuracy"), ("best_test", "test_accuracy")):
        scored = [e for e in history if key in e]
        if scored:
            at[name] = max(scored, key=lambda e: e[key]).get("test_accuracy")
    return {"rule": rule, "epoch": fitted.selected_epoch,
            "test_accuracy_by_rule": {name: accuracy for name, accuracy in at.items() if accuracy is not None}}


@measurement("evaluation", ("test", "train", "generalization_gap", "validation", "selection", "convergence", "speed",
                            "weights", "activations"), names=NAMES, derived=weight_changes,
             optional={"validation": lambda cfg: cfg.dataset.val_size > 0}, label="scores, weights and activations")
def evaluation(trained: Trained) -> dict:
    model, data, cfg, fitted = trained.model, trained.data, trained.cfg, trained.fitted
    batch = cfg.eval.batch_size
    with ActivationSparsity(model) as activations:
        test = evaluate(model, data.test.inputs, data.test.labels, batch)
    train = evaluate(model, data.train.inputs, data.train.labels, batch)
    # Each test image's correctness, for statistics over images (a bootstrap of the test set): packed, so
    # that 10,000 images take 1,668 characters.
    out = {"test": {**test.as_dict(), "correct_bits": pack_correct(test.correct), "count": len(test.correct)},
           "train": train.as_dict(), "generalization_gap": train.accuracy - test.accuracy}
    if data.val is not None:
        out["validation"] = evaluate(model, data.val.inputs, data.val.labels, batch).as_dict()
    out["selection"] = _selection(fitted, cfg.train.select)
    out["convergence"] = convergence(fitted.history, cfg.train.convergence)
    steady = [e["seconds"] for e in fitted.history if e["batch_size"] == cfg.train.batch_size] or \
        [e["seconds"] for e in fitted.history]
    out["speed"] = {"seconds_per_epoch": statistics.mean(steady),
                    "samples_per_second": len(data.train) / statistics.mean(steady),
                    "resumed_epochs": fitted.resumed_from}
    initial = trained.initial
    final = weight_measurements(model, cfg, reference_stds=initial["std"])
    out["weights"] = {"init": initial["near_zero"], "final": final["near_zero"], "init_std": initial["std"],
                      "init_profile": initial["profile"], "final_profile": final["profile"]}
    out["activations"] = activations.result()
    return out
