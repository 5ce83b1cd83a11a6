"""Human names and units of metrics, keyed by metric path: the one table that report tables, figures and
the claims page read (a plot function never spells a metric's name out itself). The rows come from
the measurements that write the paths (``sparsebench.measurements``).

Metric paths follow patterns (``weights/final/<layer>/rel_<t>``, ``noise/<kind>/score``, ...), so a row
of ``name_rows()`` is a regular expression over the whole path with a name template filled from its named
groups; the first row that matches wins. Group values are made readable by ``PARTS`` (``global`` names
no layer, ``salt_pepper`` is "salt-and-pepper noise"). A path no row matches is named by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sparsebench.measurements import metric_names
from sparsebench.measurements.base import Name
from sparsebench.metrics.noise import NOISE_KINDS


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
    "noise": {name: kind.label for name, kind in NOISE_KINDS.items()},
    "prune": {"one_shot": "one-shot", "finetuned": "after fine-tuning"},
    "method": {"global": "global magnitude", "layerwise": "layer-wise magnitude", "random": "random"},
    "rule": {"last": "last", "best_val": "best-validation", "best_test": "best-test"},
}

# Each row: (pattern over the whole path, name template, unit). {threshold} is filled from the groups
# kind and t: "|w| < 0.01" (absolute), "|w| < 0.1·σ_init" (relative to the layer's initial standard
# deviation) or "|w| < 0.1·RMS ..." (relative to the layer's own RMS); {of_layer} is " of <layer>" or
# nothing for the whole network; {at_init} is " at initialisation" where the group when is init.
# Rows of the paths that are not a measurement's: the per-epoch history and settings figures put on
# an axis. Every measurement names its own paths (``sparsebench.measurements``).
OTHER_NAMES: list[Name] = [
    (r"history/epoch", "epoch", ""),
    (r"history/(?P<split>test|train|validation)_accuracy", "{split} accuracy", "%"),
    (r"history/(?P<split>test|train|validation)_loss", "{split} loss", "cross-entropy, nats"),
    (r"history/(?P<split>test|train|validation)_error", "{split} error", "%"),
    (r"regularizer\.p", "dropout rate p", ""),
    (r"train\.lr", "learning rate", ""),
    (r"regularizer\.q", "Sparseout exponent q", ""),
]


def name_rows() -> list[Name]:
    """Every row, the measurements' first (a measurement registered later is seen after
    ``metric_name.cache_clear()``)."""
    return [*metric_names(), *OTHER_NAMES]


def _threshold(kind: str, t: str) -> str:
    return {"abs": f"|w| < {t}", "rel": f"|w| < {t}·σ_init",
            "rms": f"|w| < {t}·RMS (each layer's own RMS, when measured)"}[kind]


def _fill(template: str, groups: dict[str, str]) -> str:
    values = {key: PARTS.get(key, {}).get(value, value) for key, value in groups.items()}
    if "layer" in groups:
        values["of_layer"] = f" of {values['layer']}" if values["layer"] else ""
    if "kind" in groups and "t" in groups:
        values["threshold"] = _threshold(groups["kind"], groups["t"])
    if "when" in groups:
        values["at_init"] = " at initialisation" if groups["when"] == "init" else ""
    if "split" in groups:
        values["split"] = {"train": "training"}.get(groups["split"], groups["split"])
    return template.format(**values)


# Groups that hold other metrics measured on the weights of another epoch: prefix -> how the name says so.
EPOCH_PREFIXES = {"best_test/": ", at the best-test epoch",
                  "early_stop/": " at the early-stopping (best-validation) epoch"}


@lru_cache(maxsize=1024)
def metric_name(path: str) -> MetricName:
    """The human name and unit of the metric at ``path``; a path measured at the k-winners paper's
    best-test epoch (``best_test/...``) or at the early-stopping epoch (``early_stop/...``) says so;
    ``x − y`` (a check comparing two metrics) is named part by part; a path no row matches is its own name."""
    if " − " in path:
        parts = [metric_name(part) for part in path.split(" − ")]
        units = {part.unit for part in parts}
        return MetricName(" − ".join(part.name for part in parts), units.pop() if len(units) == 1 else "")
    for prefix, where in EPOCH_PREFIXES.items():
        if path.startswith(prefix):
            inner = metric_name(path[len(prefix):])
            if inner.name != path[len(prefix):]:
                return MetricName(f"{inner.name}{where}", inner.unit)
    for pattern, template, unit in name_rows():
        match = re.fullmatch(pattern, path)  # re caches compiled patterns
        if match:
            return MetricName(_fill(template, match.groupdict()), unit)
    return MetricName(path)


def is_known_metric(path: str) -> bool:
    """Whether some measurement (or another row of the names) writes the metric at ``path``: a path no row
    names is a mistake, not a metric left unmeasured."""
    return metric_name(path).name != path


def metric_label(path: str) -> str:
    """``name (unit)`` of the metric at ``path``, for a table header or an axis."""
    return metric_name(path).label


def difference_label(path: str, prefix: str = "Δ ") -> str:
    """The axis label of a difference of the metric at ``path``: ``Δ test accuracy (points)``."""
    name = metric_name(path)
    unit = name.difference_unit
    return f"{prefix}{name.name}" + (f" ({unit})" if unit else "")


# Config values and keys in a group's label, as a figure's legend says them.
REGULARIZER_NAMES = {"none": "no regularizer", "dropout": "dropout", "l1": "L1", "l2": "L2", "kwinners": "k-winners",
                     "sparseout": "Sparseout", "dropconnect": "DropConnect"}
KEY_NAMES = {"lam": "λ", "percent_on": "active share", "weight_density": "weight density", "max_norm": "max-norm",
             "input_p": "input p", "boost_strength": "boost"}


def _short_number(text: str) -> str:
    """``1e-05`` as ``1e-5``: Python's exponent is padded to two digits, which no paper prints."""
    return re.sub(r"e([+-]?)0*(\d)", lambda m: f"e{'-' if m.group(1) == '-' else ''}{m.group(2)}", text)


def arm_label(label: str) -> str:
    """A group's label (``report.aggregate.make_labels``: ``regularizer=l1 lam=1e-05``) as a legend says it:
    ``L1 λ=1e-5``; ``[0.1]`` (one value for every layer) as ``0.1``. A paper's name for a row of its table
    (no ``=`` in it) is kept as it is."""
    words = []
    for token in label.split(" "):
        key, sep, value = token.partition("=")
        if not sep:
            words.append(token)
            continue
        value = _short_number(re.sub(r"^\[([^,\]]+)\]$", r"\1", value))
        if key == "regularizer":
            words.append(REGULARIZER_NAMES.get(value, value))
        else:
            words.append(f"{KEY_NAMES.get(key, key)}={value}")
    return " ".join(words)


__all__ = ["MetricName", "arm_label", "name_rows", "difference_label", "is_known_metric", "metric_label", "metric_name"]
