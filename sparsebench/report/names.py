"""Human names and units of metrics, keyed by metric path: the one table that report tables, figures and
the claims page read (a plot function never spells a metric's name out itself).

Metric paths follow patterns (``weights/final/<layer>/rel_<t>``, ``noise/<kind>/score``, ...), so a row
of ``NAMES`` is a regular expression over the whole path with a name template filled from its named
groups; the first row that matches wins. Group values are made readable by ``PARTS`` (``global`` names
no layer, ``salt_pepper`` is "salt-and-pepper noise"). A path no row matches is named by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class MetricName:
    name: str  # what is measured, in words: "near-zero share, |w| < 0.1·σ_init"
    unit: str = ""  # what it is counted in: "%", "fraction of weights", "s"; empty for a pure number

    @property
    def label(self) -> str:
        """The name with its unit, for a table header or an axis: ``test accuracy (%)``."""
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def difference_unit(self) -> str:
        """The unit of a difference of two such values: a difference of percentages is in points."""
        return "points" if self.unit == "%" else self.unit


# Readable forms of the parts of a path, by the name of the group they fill.
PARTS = {
    "layer": {"global": ""},
    "units": {"mean": "mean over hidden layers"},
    "noise": {"pixels": "pixel noise", "gaussian": "Gaussian noise", "salt_pepper": "salt-and-pepper noise"},
    "prune": {"one_shot": "one-shot", "finetuned": "after fine-tuning"},
    "rule": {"last": "last", "best_val": "best-validation", "best_test": "best-test"},
}

_ACCURACY = "test accuracy"
_SHARE = "fraction of weights"

# (pattern over the whole path, name template, unit). {threshold} is filled from the groups kind and t:
# "|w| < 0.01" (absolute) or "|w| < 0.1·σ_init" (relative to the layer's initial standard deviation);
# {of_layer} is " of <layer>" or nothing for the whole network.
NAMES: list[tuple[str, str, str]] = [
    # Accuracy and loss
    (r"(?P<split>test|train|val)/accuracy", "{split} accuracy", "%"),
    (r"(?P<split>test|train|val)/loss", "{split} loss", "cross-entropy, nats"),
    (r"generalization_gap", "train − test accuracy gap", "points"),
    (r"selection/epoch", "selected epoch", ""),
    (r"selection/test_accuracy_by_rule/(?P<rule>\w+)", "test accuracy at the {rule} epoch", "%"),
    (r"convergence/converged", "trained to convergence", ""),
    (r"convergence/loss_change_per_epoch", "training-loss change per epoch at the end", "nats"),
    # Near-zero weights
    (r"weights/final/(?P<layer>[^/]+)/(?P<kind>abs|rel)_(?P<t>[^/]+)", "near-zero share{of_layer}, {threshold}", _SHARE),
    (r"weights/init/(?P<layer>[^/]+)/(?P<kind>abs|rel)_(?P<t>[^/]+)",
     "near-zero share at initialisation{of_layer}, {threshold}", _SHARE),
    (r"weights/change/(?P<layer>[^/]+)/(?P<kind>abs|rel)_(?P<t>[^/]+)",
     "change of the near-zero share from initialisation{of_layer}, {threshold}", _SHARE),
    (r"weights/final/(?P<layer>[^/]+)/structural", "share of structural zeros{of_layer}", _SHARE),
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
    # Noise
    (r"noise/(?P<noise>[^/]+)/score", "noise score, {noise}", "correct predictions summed over levels"),
    (r"noise/(?P<noise>[^/]+)/levels", "{noise} level", ""),
    (r"noise/(?P<noise>[^/]+)/accuracy", "test accuracy under {noise}", "%"),
    (r"noise/(?P<noise>[^/]+)/correct", "correct predictions under {noise}", "images"),
    # Pruning
    (r"prune/margin_crossing/(?P<prune>[^/]+)",
     "interpolated pruned fraction where accuracy falls by the margin, {prune}", _SHARE),
    (r"prune/largest_within_margin/(?P<prune>[^/]+)", "largest tested pruned fraction within the margin, {prune}",
     _SHARE),
    (r"prune/unpruned_accuracy", "test accuracy before pruning", "%"),
    (r"prune/fractions", "fraction of weights pruned (by magnitude)", ""),
    (r"prune/one_shot_accuracy", "test accuracy, pruned one-shot", "%"),
    (r"prune/finetuned_accuracy", "test accuracy, pruned and fine-tuned", "%"),
    (r"prune/margin", "accuracy margin of pruning", "points"),
    # Dropout left on at evaluation
    (r"dropout_on/accuracy_mean", "test accuracy with dropout left on (mean over passes)", "%"),
    (r"dropout_on/accuracy_std", "spread of test accuracy over passes with dropout left on (std)", "points"),
    (r"dropout_on/accuracy_(?P<end>min|max)", "{end} test accuracy over passes with dropout left on", "%"),
    (r"dropout_on/eval_mode_accuracy", "test accuracy in evaluation mode", "%"),
    (r"dropout_on/consistency", "test images given the same class in every pass with dropout left on", "%"),
    # Task sequences (Lopez-Paz & Ranzato 2017; forgetting as Chaudhry et al. 2018)
    (r"continual/forgetting", "forgetting (best earlier accuracy − final accuracy, mean over earlier tasks)",
     "points"),
    (r"continual/average_accuracy", "average final accuracy over the tasks", "%"),
    (r"continual/learning_accuracy", "accuracy on each task just after learning it (mean)", "%"),
    (r"continual/backward_transfer", "backward transfer", "points"),
    (r"continual/forward_transfer", "forward transfer", "points"),
    (r"continual/tasks", "tasks in the sequence", ""),
    # Speed
    (r"speed/seconds_per_epoch", "training time per epoch", "s"),
    (r"speed/samples_per_second", "training throughput", "images/s"),
    (r"speed/measure_seconds", "time of the measurements after training", "s"),
    # Per-epoch history (figures of training curves)
    (r"history/epoch", "epoch", ""),
    (r"history/(?P<split>test|train|val)_accuracy", "{split} accuracy", "%"),
    (r"history/(?P<split>test|train|val)_loss", "{split} loss", "cross-entropy, nats"),
    # Settings that figures put on an axis
    (r"regularizer\.p", "dropout rate p", ""),
    (r"regularizer\.q", "Sparseout exponent q", ""),
]

_COMPILED = [(re.compile(pattern), template, unit) for pattern, template, unit in NAMES]


def _threshold(kind: str, t: str) -> str:
    return f"|w| < {t}" if kind == "abs" else f"|w| < {t}·σ_init"


def _fill(template: str, groups: dict[str, str]) -> str:
    values = {key: PARTS.get(key, {}).get(value, value) for key, value in groups.items()}
    if "layer" in groups:
        values["of_layer"] = f" of {values['layer']}" if values["layer"] else ""
    if "kind" in groups and "t" in groups:
        values["threshold"] = _threshold(groups["kind"], groups["t"])
    if "split" in groups:
        values["split"] = {"val": "validation", "train": "training"}.get(groups["split"], groups["split"])
    return template.format(**values)


@lru_cache(maxsize=1024)
def metric_name(path: str) -> MetricName:
    """The human name and unit of the metric at ``path``; a path measured at the k-winners paper's
    best-test epoch (``best_test/...``) says so; ``x − y`` (a check comparing two metrics) is named part
    by part; a path no row matches is its own name."""
    if " − " in path:
        parts = [metric_name(part) for part in path.split(" − ")]
        units = {part.unit for part in parts}
        return MetricName(" − ".join(part.name for part in parts), units.pop() if len(units) == 1 else "")
    if path.startswith("best_test/"):
        inner = metric_name(path[len("best_test/"):])
        if inner.name != path[len("best_test/"):]:
            return MetricName(f"{inner.name}, at the best-test epoch", inner.unit)
    for pattern, template, unit in _COMPILED:
        match = pattern.fullmatch(path)
        if match:
            return MetricName(_fill(template, match.groupdict()), unit)
    return MetricName(path)


def metric_label(path: str) -> str:
    """``name (unit)`` of the metric at ``path``, for a table header or an axis."""
    return metric_name(path).label


def difference_label(path: str, prefix: str = "Δ ") -> str:
    """The axis label of a difference of the metric at ``path``: ``Δ test accuracy (points)``."""
    name = metric_name(path)
    unit = name.difference_unit
    return f"{prefix}{name.name}" + (f" ({unit})" if unit else "")


__all__ = ["NAMES", "MetricName", "difference_label", "metric_label", "metric_name"]
