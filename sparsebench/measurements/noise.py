"""Noise robustness: test accuracy on corrupted copies of the test images, per noise kind and level."""

from __future__ import annotations

from sparsebench.measurements.base import Trained, measurement
from sparsebench.metrics.noise import noise_robustness

NAMES = (
    (r"noise/(?P<noise>[^/]+)/score", "noise score, {noise}", "correct predictions summed over levels"),
    (r"noise/(?P<noise>[^/]+)/levels", "{noise} level", ""),
    (r"noise/(?P<noise>[^/]+)/accuracy", "test accuracy under {noise}", "%"),
    (r"noise/(?P<noise>[^/]+)/correct", "correct predictions under {noise}", "images"),
    (r"noise/(?P<noise>[^/]+)/images", "test images corrupted by {noise}", "images"),
)


@measurement("noise", ("noise",), enabled=lambda cfg: bool(cfg.eval.noise), names=NAMES, label="noise robustness")
def noise(trained: Trained) -> dict:
    return {"noise": noise_robustness(trained.model, trained.data, trained.cfg.eval)}
