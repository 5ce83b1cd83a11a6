"""Pruning: accuracy against the pruned fraction, one-shot and after a short fine-tune, by the method of
``prune.scope`` (``prune/...``) and by each of ``prune.compare`` beside it (``prune/by_method/<method>/...``)."""

from __future__ import annotations

from sparsebench.measurements.base import Trained, measurement
from sparsebench.prune import prune_curve

_SHARE = "fraction of weights"
NAMES = (
    (r"prune/margin_crossing/(?P<prune>[^/]+)",
     "interpolated pruned fraction where accuracy falls by the margin, {prune}", _SHARE),
    (r"prune/largest_within_margin/(?P<prune>[^/]+)", "largest tested pruned fraction within the margin, {prune}",
     _SHARE),
    (r"prune/unpruned_accuracy", "test accuracy before pruning", "%"),
    (r"prune/fractions", "fraction of weights pruned (by magnitude)", ""),
    (r"prune/one_shot_accuracy", "test accuracy, pruned one-shot", "%"),
    (r"prune/finetuned_accuracy", "test accuracy, pruned and fine-tuned", "%"),
    (r"prune/margin", "accuracy margin of pruning", "points"),
    (r"prune/structural", "share of structural zeros before pruning", _SHARE),
    (r"prune/finetune_epochs", "fine-tuning after pruning", "epochs"),
    # The methods of prune.compare, each beside the scope's
    (r"prune/by_method/(?P<method>[^/]+)/margin_crossing/(?P<prune>[^/]+)",
     "interpolated pruned fraction where accuracy falls by the margin, {method} pruning, {prune}", _SHARE),
    (r"prune/by_method/(?P<method>[^/]+)/largest_within_margin/(?P<prune>[^/]+)",
     "largest tested pruned fraction within the margin, {method} pruning, {prune}", _SHARE),
    (r"prune/by_method/(?P<method>[^/]+)/one_shot_accuracy", "test accuracy, {method} pruning one-shot", "%"),
    (r"prune/by_method/(?P<method>[^/]+)/finetuned_accuracy", "test accuracy, {method} pruning and fine-tuned",
     "%"),
    (r"prune/by_method/(?P<method>[^/]+)/achieved", "share of all weights zero after {method} pruning", _SHARE),
    (r"prune/by_method/(?P<method>[^/]+)/learnable_achieved",
     "share of learnable weights zero after {method} pruning", _SHARE),
)


@measurement("prune", ("prune",), enabled=lambda cfg: bool(cfg.prune.fractions), names=NAMES, label="pruning and fine-tunes")
def prune(trained: Trained) -> dict:
    cfg = trained.cfg
    return {"prune": prune_curve(trained.model, trained.regularizer, trained.data, cfg.prune, cfg.train,
                                 seed=cfg.seed, eval_batch_size=cfg.eval.batch_size)}
