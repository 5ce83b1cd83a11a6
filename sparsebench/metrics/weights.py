"""Near-zero weights: the share of weights below absolute and relative magnitude thresholds, and
scale-free measures of sparsity: Hoyer's sparsity of |w| and the share below a fraction of the
layer's own RMS.

Structural zeros (weights fixed at zero by sparse connectivity) are counted apart: near-zero
fractions and Hoyer's sparsity are taken over the learnable weights only, and the structural share is
reported beside.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sparsebench.metrics.activations import hoyer
from sparsebench.network import Network

# Thresholds of the near-zero curve (|w| < t, t log-spaced) stored in every record, for figures.
CURVE_THRESHOLDS = [float(t) for t in np.logspace(-5, 0, 21)]
# Bin edges of the stored weight-magnitude histogram (log-spaced |w|; the first bin also holds |w| < 1e-6).
HISTOGRAM_EDGES = [0.0] + [float(t) for t in np.logspace(-6, 1, 57)]


def _learnable(model: Network) -> dict[str, torch.Tensor]:
    """Each weight layer's learnable weights (structural zeros removed), flattened, as float32."""
    out = {}
    with torch.no_grad():
        for layer in model.weight_layers():
            weight = layer.module.weight.detach().float()
            out[layer.name] = weight[~layer.structural_mask] if layer.structural_mask is not None else weight.flatten()
    return out


def weight_stds(model: Network) -> dict[str, float]:
    """Standard deviation of each layer's learnable weights (at initialisation: the scale of relative thresholds)."""
    return {name: float(w.std()) for name, w in _learnable(model).items()}


def threshold_key(kind: str, threshold: float) -> str:
    return f"{kind}_{threshold:g}"


def near_zero_fractions(model: Network, absolute: list[float], relative: list[float],
                        reference_stds: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per layer and ``global``: the fraction of learnable weights with |w| < t for each absolute t and
    each relative t (times the layer's ``reference_stds`` entry), the structural-zero fraction, and counts.

    Keys: ``abs_<t>``, ``rel_<t>``, ``structural`` and ``count`` (learnable weights).
    """
    result: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    structural_total = 0
    all_total = 0
    for layer, weights in zip(model.weight_layers(), _learnable(model).values()):
        magnitudes = weights.abs()
        count = magnitudes.numel()
        structural = int(layer.structural_mask.sum()) if layer.structural_mask is not None else 0
        cutoffs = {threshold_key("abs", t): t for t in absolute}
        cutoffs.update({threshold_key("rel", t): t * reference_stds[layer.name] for t in relative})
        below = {key: int((magnitudes < cutoff).sum()) for key, cutoff in cutoffs.items()}
        row = {key: n / count for key, n in below.items()}
        for key, n in below.items():
            totals[key] = totals.get(key, 0) + n
        row["structural"] = structural / (count + structural)
        row["count"] = count
        result[layer.name] = row
        structural_total += structural
        all_total += count
    result["global"] = {key: n / all_total for key, n in totals.items()}
    result["global"]["structural"] = structural_total / (all_total + structural_total)
    result["global"]["count"] = all_total
    return result


def scale_free_sparsity(model: Network, rms_fractions: list[float]) -> dict[str, dict[str, float]]:
    """Per layer and ``global``: Hoyer's sparsity of the learnable weights, (sqrt(n) - |w|_1/|w|_2) /
    (sqrt(n) - 1) (0 all equal in magnitude, 1 one weight carries everything), and the share of them with
    |w| < f x the layer's own RMS for each f of ``rms_fractions``. Both are unchanged when a layer's
    weights are scaled, which the near-zero shares under a fixed threshold are not.

    ``global``: Hoyer's sparsity of all layers' weights concatenated (a layer weighs by its count of
    weights), and the count-weighted share (each layer's weights against that layer's RMS).
    ``global_mean``: Hoyer's sparsity averaged over layers, each layer weighing the same.
    Keys: ``hoyer`` and ``rms_<f>``."""
    result: dict[str, dict[str, float]] = {}
    below_total: dict[str, int] = {}
    # float64: the sums run over up to millions of weights.
    learnable = {name: weights.double() for name, weights in _learnable(model).items()}
    for name, weights in learnable.items():
        magnitudes = weights.abs()
        rms = magnitudes.square().mean().sqrt()
        row = {"hoyer": float(hoyer(magnitudes.unsqueeze(0))[0])}
        for fraction in rms_fractions:
            key = threshold_key("rms", fraction)
            below = int((magnitudes < fraction * rms).sum())
            row[key] = below / magnitudes.numel()
            below_total[key] = below_total.get(key, 0) + below
        result[name] = row
    mean_over_layers = sum(row["hoyer"] for row in result.values()) / len(result)
    everything = torch.cat(list(learnable.values())).abs()
    result["global"] = {"hoyer": float(hoyer(everything.unsqueeze(0))[0]),
                        **{key: n / everything.numel() for key, n in below_total.items()}}
    result["global_mean"] = {"hoyer": mean_over_layers}
    return result


def magnitude_profile(model: Network) -> dict[str, list[float]]:
    """Over all learnable weights: the near-zero fraction at each of CURVE_THRESHOLDS, and a
    histogram of |w| on HISTOGRAM_EDGES (fractions). Stored in the record so figures need no checkpoint."""
    magnitudes = torch.cat(list(_learnable(model).values())).abs()
    n = magnitudes.numel()
    # Bucketing against a few dozen sorted edges is several times cheaper than sorting the weights.
    curve = torch.bincount(torch.bucketize(magnitudes, torch.tensor(CURVE_THRESHOLDS), right=True),
                           minlength=len(CURVE_THRESHOLDS) + 1).cumsum(0)[:-1]
    bins = torch.bucketize(magnitudes, torch.tensor(HISTOGRAM_EDGES[1:]), right=True)
    counts = torch.bincount(bins, minlength=len(HISTOGRAM_EDGES))[:len(HISTOGRAM_EDGES) - 1]
    return {
        "curve_thresholds": CURVE_THRESHOLDS,
        "curve_fractions": (curve.double() / n).tolist(),
        "histogram_edges": HISTOGRAM_EDGES,
        "histogram_fractions": (counts.double() / n).tolist(),
        "mean_abs": float(magnitudes.mean()),
        "rms": math.sqrt(float(magnitudes.square().mean())),
    }
