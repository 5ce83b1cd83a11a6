"""Pruning of a trained model, one-shot and after a short masked fine-tune.

Each fraction starts from a copy of the trained model, which itself is never changed. Pruning goes
through ``torch.nn.utils.prune``, by one of three methods: ``global`` (``global_unstructured``: one
magnitude threshold over every weight matrix), ``layerwise`` (the same magnitude method applied to each
layer alone: each loses the fraction of its own weights) and ``random`` (``random_unstructured`` per
layer, seeded from the run's seed: the baseline). A fraction is a share of all weights, structural zeros
of fixed sparse connectivity included: having magnitude 0 they are pruned first by the magnitude methods
(random pruning draws them like any other weight), and their mask is added to the pruning mask so that
fine-tuning cannot revive them. The masks are forward pre-hooks of ``torch.nn.utils.prune``, so the
pruned weights stay zero while fine-tuning.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn
from torch.nn.utils import prune

from sparsebench import seeds
from sparsebench.data import DataSplits, ImageSet
from sparsebench.metrics.evaluation import evaluate
from sparsebench.models import wants_channels_last
from sparsebench.network import Network
from sparsebench.progress import steps
from sparsebench.regularizers import Regularizer
from sparsebench.schemas import PruneConfig, TrainConfig
from sparsebench.train import Diverged, fit


class SmallestMagnitude(prune.L1Unstructured):
    """``L1Unstructured``'s mask (the ``amount`` smallest magnitudes), selected with ``kthvalue``
    instead of ``topk``: topk sorts, kthvalue selects in linear time. Measured on the 1.8M weights
    of the default MLP on 2 CPU cores: 23 ms against 170 ms per fraction. Ties at the threshold are
    pruned in index order, so exactly ``amount`` entries are pruned, as with topk."""

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        count = t.nelement()
        k = round(self.amount * count) if isinstance(self.amount, float) else int(self.amount)
        if not 0 <= k <= count:
            raise ValueError(f"amount={self.amount!r} is not allowed: it must prune between 0 and {count} entries")
        mask = default_mask.clone(memory_format=torch.contiguous_format)
        if k == 0:
            return mask
        magnitudes = t.detach().abs().reshape(-1)
        threshold = torch.kthvalue(magnitudes, k).values
        pruned = magnitudes < threshold
        ties = torch.nonzero(magnitudes == threshold).flatten()
        pruned[ties[:k - int(pruned.sum())]] = True
        mask.view(-1)[pruned] = 0
        return mask


def apply_pruning(model: Network, fraction: float, method: str, *, seed: int | None = None) -> None:
    """Prune ``fraction`` of the weights of ``model``'s weight layers, in place, by ``method``: global or
    layerwise magnitude, or random (``seed``: the run's seed, from which the masks' seed is derived)."""
    layers = model.weight_layers()
    targets = [(layer.module, "weight") for layer in layers]
    if method == "global":
        prune.global_unstructured(targets, pruning_method=SmallestMagnitude, amount=fraction)
    elif method == "layerwise":
        for module, name in targets:
            SmallestMagnitude.apply(module, name, amount=fraction)
    elif method == "random":
        if seed is None:
            raise ValueError("random pruning needs the run's seed (seed=...)")
        device = layers[0].module.weight.device
        on_cuda = device.type == "cuda"
        # random_unstructured draws from the global generator (the weights' device's): seed it for the
        # masks alone and give the run its state back, so what runs after draws as it would have.
        with torch.random.fork_rng(devices=[device] if on_cuda else []):
            torch.manual_seed(seeds.random_pruning(seed))
            for module, name in targets:
                prune.random_unstructured(module, name, amount=fraction)
    else:
        raise ValueError(f"pruning method {method!r} is not known: choose one of global, layerwise, random")
    for layer in layers:
        if layer.structural_mask is not None:
            prune.custom_from_mask(layer.module, "weight", ~layer.structural_mask)


def keep_channels_last(model: Network) -> None:
    """Run a pruned conv net in the channels_last format, as the unpruned one runs.

    torch.nn.utils.prune recomputes each weight as ``weight_orig * mask`` before every forward, in
    the default format; a convolution then writes its output in that format too, and the pooling
    after it is slow there: measured on Dense CNN-1 on 2 CPU cores, an evaluation of the test set
    took 1.11 s against 0.72 s. A forward pre-hook, run after pruning's own, restrides the weight.
    """
    def restride(module: nn.Module, args) -> None:
        module.weight = module.weight.to(memory_format=torch.channels_last)

    for module in model.modules():
        if isinstance(module, nn.Conv2d) and hasattr(module, "weight_orig"):
            module.register_forward_pre_hook(restride)


def sparsity(model: Network, structural: list[torch.Tensor | None]) -> tuple[float, float]:
    """(zero share of all weights, zero share of the learnable ones), counted from the effective weights."""
    zeros = total = learnable_zeros = learnable = 0
    for layer, mask in zip(model.weight_layers(), structural):
        weight = layer.module.weight.detach()
        is_zero = weight == 0
        zeros += int(is_zero.sum())
        total += weight.numel()
        keep = ~mask if mask is not None else torch.ones_like(is_zero)
        learnable_zeros += int((is_zero & keep).sum())
        learnable += int(keep.sum())
    return zeros / total, learnable_zeros / learnable


def finetune_data(data: DataSplits, epochs: float, seed: int) -> tuple[DataSplits, int]:
    """The data and whole epochs of a fine-tune: a fraction of an epoch is one pass over a random
    share of the training set of that size."""
    if epochs >= 1:
        return dataclasses.replace(data, val=None), int(epochs)
    count = max(1, round(epochs * len(data.train)))
    generator = torch.Generator().manual_seed(seeds.finetune_subset(seed))
    index = torch.randperm(len(data.train), generator=generator)[:count]
    index = index.to(data.train.labels.device)
    train = ImageSet(data.train.images[index], data.train.inputs[index], data.train.labels[index])
    return dataclasses.replace(data, train=train, val=None), 1


def largest_within(fractions: list[float], accuracies: list[float | None], reference: float,
                   margin: float) -> float | None:
    """The largest fraction whose accuracy is within ``margin`` points of ``reference``, or None."""
    within = [f for f, a in zip(fractions, accuracies) if a is not None and a >= reference - margin]
    return max(within) if within else None


def margin_crossing(fractions: list[float], accuracies: list[float | None], reference: float,
                    margin: float) -> float | None:
    """The pruned fraction at which accuracy falls below ``reference - margin``, interpolated
    linearly between the last fraction above that line and the first below it (the unpruned model
    counts as fraction 0 at ``reference``): a continuous estimate where ``largest_within`` can only
    give a grid value. None when no tested fraction falls below the line (the crossing lies beyond
    the largest fraction: censored, never imputed) or an accuracy on the way is missing."""
    line = reference - margin
    previous_fraction, previous_accuracy = 0.0, reference
    for fraction, accuracy in sorted(zip(fractions, accuracies)):
        if accuracy is None:
            return None
        if accuracy < line:
            if previous_accuracy == accuracy:
                return fraction
            share = (previous_accuracy - line) / (previous_accuracy - accuracy)
            return previous_fraction + share * (fraction - previous_fraction)
        previous_fraction, previous_accuracy = fraction, accuracy
    return None


def prune_curve(model: Network, regularizer: Regularizer, data: DataSplits, cfg: PruneConfig,
                train_cfg: TrainConfig, *, seed: int, eval_batch_size: int) -> dict:
    """Accuracy against pruned fraction, one-shot and fine-tuned, with the sparsity achieved at each, for
    ``cfg.scope``'s method; and the same curve for each method of ``cfg.compare`` under ``by_method``."""
    unpruned = evaluate(model, data.test.inputs, data.test.labels, eval_batch_size).accuracy
    structural = [layer.structural_mask for layer in model.weight_layers()]
    weights_total = sum(layer.module.weight.numel() for layer in model.weight_layers())
    structural_share = sum(int(m.sum()) for m in structural if m is not None) / weights_total
    tune_cfg = dataclasses.replace(train_cfg, lr=cfg.finetune_lr, schedule="none", select="last",
                                   first_epoch_batch_size=None, compile=False)
    tune_data, tune_epochs = finetune_data(data, cfg.finetune_epochs, seed) if cfg.finetune_epochs else (None, 0)
    tune_cfg = dataclasses.replace(tune_cfg, epochs=max(tune_epochs, 1))

    def curve_of(method: str, tuned: bool = True) -> dict:
        return _method_curve(model, regularizer, data, cfg, method, unpruned=unpruned, structural=structural,
                             tune=(tune_data, tune_epochs if tuned else 0, tune_cfg),
                             channels_last=train_cfg.channels_last, seed=seed, eval_batch_size=eval_batch_size)

    main = curve_of(cfg.scope)
    out = {"scope": cfg.scope, "fractions": list(cfg.fractions), "unpruned_accuracy": unpruned,
           "structural": structural_share, **main, "margin": cfg.margin, "finetune_epochs": cfg.finetune_epochs}
    for key in ("largest_within_margin", "margin_crossing"):  # last, where records have always had them
        out[key] = out.pop(key)
    if cfg.compare:
        # The scope's own method, when named, is the curve above (the same masks and fine-tune): not run twice.
        # The others are measured one-shot only: the fine-tunes were two thirds of a run's measuring time
        # (21 s of 26 s for a 256-256 MLP with two methods compared), and the readings they serve (D5's
        # layer-wise and random floors) are one-shot.
        out["by_method"] = {method: main if method == cfg.scope else curve_of(method, tuned=False)
                            for method in cfg.compare}
    return out


def _method_curve(model: Network, regularizer: Regularizer, data: DataSplits, cfg: PruneConfig, method: str, *,
                  unpruned: float, structural: list[torch.Tensor | None], tune: tuple, channels_last: bool | None,
                  seed: int, eval_batch_size: int) -> dict:
    """One method's curve: sparsity achieved and accuracy, one-shot and fine-tuned (``tune``: the data,
    whole epochs and training config of the fine-tune; 0 epochs: none), at every fraction of ``cfg``, and
    the fractions read from it against the margin."""
    tune_data, tune_epochs, tune_cfg = tune
    channels_last = wants_channels_last(model, channels_last)
    curve = {"achieved": [], "learnable_achieved": [], "one_shot_accuracy": [], "finetuned_accuracy": []}
    what = f"pruning ({method}{', one-shot and fine-tuned' if tune_epochs else ', one-shot'})"
    for fraction in steps(cfg.fractions, what):
        # torch.nn.utils.prune flattens weights with .view(-1), which channels_last conv weights refuse.
        pruned = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
        apply_pruning(pruned, fraction, method, seed=seed)
        if channels_last:
            keep_channels_last(pruned)
        achieved, learnable = sparsity(pruned, structural)
        curve["achieved"].append(achieved)
        curve["learnable_achieved"].append(learnable)
        curve["one_shot_accuracy"].append(evaluate(pruned, data.test.inputs, data.test.labels, eval_batch_size).accuracy)
        if tune_epochs:
            try:
                history = fit(pruned, regularizer, tune_data, tune_cfg, seed=seed, eval_batch_size=eval_batch_size,
                              log_epochs=False).history
                curve["finetuned_accuracy"].append(history[-1]["test_accuracy"])
            except Diverged:
                curve["finetuned_accuracy"].append(None)
    within = {"one_shot": largest_within(cfg.fractions, curve["one_shot_accuracy"], unpruned, cfg.margin)}
    crossing = {"one_shot": margin_crossing(cfg.fractions, curve["one_shot_accuracy"], unpruned, cfg.margin)}
    if tune_epochs:
        within["finetuned"] = largest_within(cfg.fractions, curve["finetuned_accuracy"], unpruned, cfg.margin)
        crossing["finetuned"] = margin_crossing(cfg.fractions, curve["finetuned_accuracy"], unpruned, cfg.margin)
    else:
        curve["finetuned_accuracy"] = None
    return {**curve, "largest_within_margin": within, "margin_crossing": crossing}


__all__ = ["SmallestMagnitude", "apply_pruning", "keep_channels_last", "largest_within", "margin_crossing",
           "prune_curve", "sparsity"]
