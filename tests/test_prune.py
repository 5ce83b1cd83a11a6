"""Magnitude pruning: fractions achieved, masks held through fine-tuning, the trained model untouched."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import sparsebench.prune as pruning
from sparsebench.data import load_splits
from sparsebench.metrics.evaluation import evaluate
from sparsebench.models import build_model, place
from sparsebench.prune import (
    SmallestMagnitude,
    apply_pruning,
    keep_channels_last,
    largest_within,
    prune_curve,
    sparsity,
)
from sparsebench.regularizers import build_regularizer
from sparsebench.runner import run
from sparsebench.schemas import PruneConfig
from sparsebench.train import fit


def _trained(make_config, *overrides):
    cfg = make_config(*overrides)
    data = load_splits(cfg.dataset, torch.device("cpu"))
    torch.manual_seed(0)
    regularizer = build_regularizer(cfg.regularizer)
    model = build_model(cfg.model, regularizer, tuple(cfg.dataset.shape), 10)
    return cfg, data, regularizer, model


def test_global_and_layerwise_pruning_reach_the_fraction(make_config):
    _, _, _, model = _trained(make_config)
    total = sum(layer.module.weight.numel() for layer in model.weight_layers())
    for fraction in (0.5, 0.9, 0.99):
        pruned = copy.deepcopy(model)
        apply_pruning(pruned, fraction, "global")
        achieved, learnable = sparsity(pruned, [None] * 3)
        assert abs(achieved - round(fraction * total) / total) < 1e-12 and achieved == learnable
        per_layer = [(layer.module.weight == 0).float().mean().item() for layer in pruned.weight_layers()]
        assert max(per_layer) - min(per_layer) > 0.01  # one global threshold: layers end up differently sparse
        layerwise = copy.deepcopy(model)
        apply_pruning(layerwise, fraction, "layerwise")
        for layer in layerwise.weight_layers():
            n = layer.module.weight.numel()
            assert (layer.module.weight == 0).sum().item() == round(fraction * n)


def test_global_pruning_removes_the_smallest_magnitudes(make_config):
    _, _, _, model = _trained(make_config)
    pruned = copy.deepcopy(model)
    apply_pruning(pruned, 0.7, "global")
    kept = torch.cat([(layer.module.weight != 0).flatten() for layer in pruned.weight_layers()])
    magnitudes = torch.cat([layer.module.weight.abs().flatten() for layer in model.weight_layers()])
    assert magnitudes[kept].min() >= magnitudes[~kept].max()


def test_selection_matches_torch_l1_unstructured_and_prunes_exactly_amount_with_ties():
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(300, 70, generator=generator)
    everything = torch.ones_like(weights)
    for amount in (0.0, 0.3, 0.77, 0.99, 1.0, 123):
        ours = SmallestMagnitude(amount).compute_mask(weights, everything)
        theirs = prune.L1Unstructured(amount).compute_mask(weights, everything)
        assert torch.equal(ours, theirs), amount
    tied = torch.randint(-3, 4, (50, 40), generator=generator).float()  # many equal magnitudes and zeros
    for amount in (0.1, 0.5, 0.9):
        mask = SmallestMagnitude(amount).compute_mask(tied, torch.ones_like(tied))
        assert int((mask == 0).sum()) == round(amount * tied.numel())
        assert tied.abs()[mask == 1].min() >= tied.abs()[mask == 0].max()


def test_pruned_conv_nets_run_in_channels_last_with_the_same_outputs(make_config):
    """A one-channel conv's pruned weight comes out in the default format; restrided, the net runs
    in channels_last like the unpruned one, and computes the same function."""
    cfg = make_config("model=mnist_cnn", "model.channels=[8,8]", "model.hidden=[32]")
    torch.manual_seed(0)
    model = place(build_model(cfg.model, build_regularizer(cfg.regularizer), (1, 28, 28), 10), torch.device("cpu"), None)
    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    restrided = copy.deepcopy(plain)
    apply_pruning(plain, 0.5, "global")
    apply_pruning(restrided, 0.5, "global")
    keep_channels_last(restrided)
    formats = {}
    for name, module in restrided.named_modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(lambda m, i, out, name=name: formats.__setitem__(
                name, out.stride(1) == 1))  # channels innermost: channels_last
    inputs = torch.randn(16, 1, 28, 28)
    torch.testing.assert_close(restrided.eval()(inputs), plain.eval()(inputs))
    assert formats and all(formats.values())


def _keep_finetuned_copies(monkeypatch) -> list:
    """Let prune_curve run as it does, through the real fit, and keep each pruned copy after its
    fine-tune (prune_curve itself throws them away)."""
    copies, real_fit = [], pruning.fit

    def fit_and_keep(model, *args, **kwargs):
        result = real_fit(model, *args, **kwargs)
        copies.append(model)
        return result

    monkeypatch.setattr(pruning, "fit", fit_and_keep)
    return copies


def test_curve_keeps_masks_through_finetuning_and_leaves_the_model_alone(make_config, monkeypatch):
    cfg, data, regularizer, model = _trained(make_config, "train.lr=0.05")
    before = copy.deepcopy(model.state_dict())
    copies = _keep_finetuned_copies(monkeypatch)

    prune_cfg = PruneConfig(fractions=[0.5, 0.9], finetune_epochs=0.5, finetune_lr=0.05)
    result = prune_curve(model, regularizer, data, prune_cfg, cfg.train, seed=0, eval_batch_size=500)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert result["fractions"] == [0.5, 0.9] and len(result["finetuned_accuracy"]) == 2
    total = sum(layer.module.weight.numel() for layer in model.weight_layers())
    assert result["achieved"] == [round(0.5 * total) / total, round(0.9 * total) / total]

    assert len(copies) == 2
    magnitudes = torch.cat([layer.module.weight.detach().abs().flatten() for layer in model.weight_layers()])
    for fraction, tuned, accuracy in zip([0.5, 0.9], copies, result["finetuned_accuracy"]):
        # the smallest magnitudes of the trained model, and only those, are still exactly zero
        pruned = magnitudes <= magnitudes.kthvalue(round(fraction * total)).values
        weights = torch.cat([layer.module.weight.detach().flatten() for layer in tuned.weight_layers()])
        assert torch.all(weights[pruned] == 0) and int(pruned.sum()) == round(fraction * total)
        trained = torch.cat([layer.module.weight.detach().flatten() for layer in model.weight_layers()])
        assert (weights[~pruned] != trained[~pruned]).float().mean() > 0.9  # the rest did learn
        # the accuracy reported is the fine-tuned copy's
        assert evaluate(tuned, data.test.inputs, data.test.labels, 500).accuracy == accuracy


def _row_norms(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().flatten(1).norm(dim=1)


def test_max_norm_holds_during_the_pruning_finetune(make_config, monkeypatch):
    """Dropout's max-norm hook caps the weights the pruned layers compute with, though
    torch.nn.utils.prune recomputes them from weight_orig before every forward."""
    cfg, data, regularizer, model = _trained(make_config, "regularizer=dropout", "regularizer.max_norm=0.2")
    assert min(_row_norms(layer.module.weight).max() for layer in model.weight_layers(hidden_only=True)) > 0.4
    copies = _keep_finetuned_copies(monkeypatch)
    prune_curve(model, regularizer, data, PruneConfig(fractions=[0.5], finetune_epochs=0.5, finetune_lr=0.05),
                cfg.train, seed=0, eval_batch_size=500)
    [tuned] = copies
    for layer in tuned.weight_layers(hidden_only=True):
        norms = _row_norms(layer.module.weight)
        assert norms.max() <= 0.2 + 1e-6 and norms.min() > 0.19  # every row was over the cap


def test_decoupled_l2_decays_the_pruned_weights_during_the_finetune(make_config, monkeypatch):
    """With a fine-tune learning rate of 1e-6 the gradient steps are negligible and each step
    multiplies the weights by 1 - 2 * lr * lam = 0.5: after the 5 steps of the fine-tune (500 images,
    batch 100) the weights are the pruned initial weights times 0.5**5."""
    lr = 1e-6
    cfg, data, regularizer, model = _trained(make_config, "regularizer=l2", "regularizer.decoupled=true",
                                             f"regularizer.lam={0.25 / lr}")
    copies = _keep_finetuned_copies(monkeypatch)
    prune_curve(model, regularizer, data, PruneConfig(fractions=[0.5], finetune_epochs=0.5, finetune_lr=lr),
                cfg.train, seed=0, eval_batch_size=500)
    [tuned] = copies
    for layer, initial in zip(tuned.weight_layers(), model.weight_layers()):
        weight = layer.module.weight.detach()
        kept = weight != 0
        torch.testing.assert_close(weight[kept], initial.module.weight.detach()[kept] * 0.5 ** 5, rtol=1e-3, atol=1e-7)


def test_penalties_see_the_weights_a_pruned_model_computes_with(make_config):
    cfg, _, regularizer, model = _trained(make_config, "regularizer=l1", "regularizer.lam=0.001")
    pruned = copy.deepcopy(model)
    apply_pruning(pruned, 0.7, "global")
    magnitudes = torch.cat([layer.module.weight.detach().abs().flatten() for layer in model.weight_layers()])
    kept = magnitudes.sort().values[round(0.7 * len(magnitudes)):]  # the largest 30%
    penalty = regularizer.penalty(pruned)
    torch.testing.assert_close(penalty, 0.001 * kept.sum(), rtol=1e-5, atol=0)
    penalty.backward()
    for layer in pruned.weight_layers():
        gradient = layer.module.weight_orig.grad
        assert torch.all(gradient[layer.module.weight_mask == 0] == 0)  # pruned weights are not penalised
        assert torch.all(gradient[layer.module.weight_mask == 1].abs() == 0.001)


def test_largest_fraction_within_margin():
    assert largest_within([0.5, 0.7, 0.9], [98.0, 97.5, 90.0], 98.2, 1.0) == 0.7
    assert largest_within([0.5, 0.9], [96.0, 99.0], 98.2, 1.0) == 0.9
    assert largest_within([0.5], [90.0], 98.2, 1.0) is None
    assert largest_within([0.5, 0.7], [None, 98.0], 98.2, 1.0) == 0.7


def test_run_record_holds_prune_noise_and_dropout_on(make_config):
    cfg = make_config("regularizer=dropout", "prune.fractions=[0.5,0.9]", "prune.finetune_epochs=0.2",
                      "eval.noise=[pixels]", "eval.train_mode_passes=3")
    outcome = run(cfg)
    metrics = json.loads((outcome.path / "result.json").read_text())["metrics"]
    assert metrics["prune"]["fractions"] == [0.5, 0.9]
    within = metrics["prune"]["largest_within_margin"]
    assert set(within) == {"one_shot", "finetuned"} and all(v in (None, 0.5, 0.9) for v in within.values())
    assert len(metrics["prune"]["finetuned_accuracy"]) == 2
    pixels = metrics["noise"]["pixels"]
    assert pixels["levels"] == [round(0.05 * i, 2) for i in range(11)]
    assert pixels["accuracy"][0] == metrics["test"]["accuracy"]  # level 0 is the clean test set
    assert pixels["score"] == sum(pixels["correct"]) and pixels["correct"][-1] < pixels["correct"][0]
    on = metrics["dropout_on"]
    assert on["passes"] == 3 and on["eval_mode_accuracy"] == metrics["test"]["accuracy"]
    assert on["accuracy_std"] > 0 and on["consistency"] < 100
    parts = metrics["speed"]["measure_seconds_by_part"]
    assert set(parts) == {"evaluation", "dropout_on", "noise", "prune"} and all(v > 0 for v in parts.values())
    assert sum(parts.values()) <= metrics["speed"]["measure_seconds"]


def test_margin_crossing_interpolates_between_the_grid_points():
    from sparsebench.prune import margin_crossing

    # Unpruned 98.0, margin 1: the line is 97.0. Accuracies 97.8 at 0.5 and 96.2 at 0.7:
    # 0.5 + (97.8 - 97.0) / (97.8 - 96.2) * 0.2 = 0.6.
    assert margin_crossing([0.5, 0.7, 0.9], [97.8, 96.2, 50.0], 98.0, 1.0) == pytest.approx(0.6)
    # Below the line at the first fraction: from (0, 98.0) to (0.5, 96.0): 0.5 * 1 / 2 = 0.25.
    assert margin_crossing([0.5, 0.9], [96.0, 40.0], 98.0, 1.0) == pytest.approx(0.25)
    # Never below the line within the grid: censored, not imputed.
    assert margin_crossing([0.5, 0.9], [97.9, 97.5], 98.0, 1.0) is None
    assert margin_crossing([0.5, 0.9], [97.9, None], 98.0, 1.0) is None


# ----------------------------------------------------------------------------------------------------
# The methods of prune.compare: layerwise and random beside the scope's


def _masks(model) -> list[torch.Tensor]:
    return [(layer.module.weight == 0) for layer in model.weight_layers()]


def test_layerwise_pruning_cuts_each_layer_at_its_own_threshold(make_config):
    _, _, _, model = _trained(make_config)
    pruned = copy.deepcopy(model)
    apply_pruning(pruned, 0.7, "layerwise")
    thresholds = []
    for layer, original in zip(pruned.weight_layers(), model.weight_layers()):
        gone = layer.module.weight == 0
        magnitudes = original.module.weight.detach().abs()
        assert int(gone.sum()) == round(0.7 * magnitudes.numel())  # torch's rounding of amount x n
        assert magnitudes[~gone].min() >= magnitudes[gone].max()  # the smallest of the layer, and only those
        thresholds.append(float(magnitudes[gone].max()))
    assert max(thresholds) > 1.2 * min(thresholds)  # a threshold per layer, not one for all


def test_random_pruning_is_reproducible_per_seed_and_leaves_the_magnitudes_alone(make_config):
    from scipy.stats import ks_2samp

    _, _, _, model = _trained(make_config)
    state = torch.get_rng_state()
    masks = {}
    for seed in (3, 3, 4):
        pruned = copy.deepcopy(model)
        apply_pruning(pruned, 0.5, "random", seed=seed)
        masks.setdefault(seed, []).append(_masks(pruned))
    assert torch.equal(torch.get_rng_state(), state)  # the run's own random state is untouched
    assert all(torch.equal(a, b) for a, b in zip(*masks[3]))
    assert not any(torch.equal(a, b) for a, b in zip(masks[3][0], masks[4][0]))
    for layer, gone in zip(model.weight_layers(), masks[3][0]):
        assert int(gone.sum()) == round(0.5 * gone.numel())  # random_unstructured rounds as l1 does
    # Pruned at random, the kept and the pruned weights are two samples of one magnitude distribution;
    # magnitude pruning, on the same weights, splits it at a threshold (the test can tell them apart).
    magnitudes = torch.cat([layer.module.weight.detach().abs().flatten() for layer in model.weight_layers()]).numpy()
    gone = torch.cat([m.flatten() for m in masks[3][0]]).numpy()
    assert ks_2samp(magnitudes[gone], magnitudes[~gone]).pvalue > 0.01
    assert abs(magnitudes[gone].mean() / magnitudes[~gone].mean() - 1) < 0.02
    by_magnitude = copy.deepcopy(model)
    apply_pruning(by_magnitude, 0.5, "layerwise")
    gone = torch.cat([m.flatten() for m in _masks(by_magnitude)]).numpy()
    assert ks_2samp(magnitudes[gone], magnitudes[~gone]).pvalue < 1e-10


def test_random_masks_are_seeded_apart_from_the_runs_seed_and_nest_over_fractions(make_config):
    _, _, _, model = _trained(make_config)
    pruned = {}
    for fraction in (0.5, 0.9):
        pruned[fraction] = copy.deepcopy(model)
        apply_pruning(pruned[fraction], fraction, "random", seed=0)
    # what was pruned at 0.5 is pruned at 0.9 too (the same draws, a larger share of them)
    assert all(bool((small <= large).all()) for small, large in zip(_masks(pruned[0.5]), _masks(pruned[0.9])))
    # The masks' seed, written out: numpy's SeedSequence of (run seed, 2); torch's random_unstructured
    # draws from the global generator, layer by layer.
    expected = copy.deepcopy(model)
    torch.manual_seed(int(np.random.SeedSequence([0, 2]).generate_state(1)[0]))
    for layer in expected.weight_layers():
        prune.random_unstructured(layer.module, "weight", amount=0.5)
    assert all(torch.equal(a, b) for a, b in zip(_masks(pruned[0.5]), _masks(expected)))
    # Not the run's seed itself, whose stream drew the initial weights.
    own = copy.deepcopy(model)
    torch.manual_seed(0)
    for layer in own.weight_layers():
        prune.random_unstructured(layer.module, "weight", amount=0.5)
    assert not any(torch.equal(a, b) for a, b in zip(_masks(pruned[0.5]), _masks(own)))


def test_the_curve_of_each_compared_method_beside_the_scope_s_unchanged(make_config):
    cfg, data, regularizer, model = _trained(make_config, "train.lr=0.05", "train.epochs=3")
    fit(model, regularizer, data, cfg.train, seed=0, eval_batch_size=500, log_epochs=False)
    base = PruneConfig(fractions=[0.5, 0.9, 0.99], finetune_epochs=0.2, finetune_lr=0.01)
    alone = prune_curve(model, regularizer, data, base, cfg.train, seed=0, eval_batch_size=500)
    compared = prune_curve(model, regularizer, data, dataclasses.replace(base, compare=["layerwise", "random", "global"]),
                           cfg.train, seed=0, eval_batch_size=500)
    by_method = compared.pop("by_method")
    assert compared == alone  # the scope's keys, numbers and order as without compare
    assert list(compared) == list(alone)
    assert set(by_method) == {"layerwise", "random", "global"}
    assert by_method["global"] == {k: alone[k] for k in by_method["global"]}  # the scope's own curve, not rerun
    for method in ("layerwise", "random"):  # compared methods are measured one-shot only
        curve = by_method[method]
        assert set(curve) == {"achieved", "learnable_achieved", "one_shot_accuracy", "finetuned_accuracy",
                              "largest_within_margin", "margin_crossing"}
        assert len(curve["one_shot_accuracy"]) == 3 and curve["finetuned_accuracy"] is None
        assert set(curve["margin_crossing"]) == set(curve["largest_within_margin"]) == {"one_shot"}
    # layerwise one-shot, against torch's own l1_unstructured applied to each layer
    for fraction, accuracy in zip(base.fractions, by_method["layerwise"]["one_shot_accuracy"]):
        reference = copy.deepcopy(model)
        for layer in reference.weight_layers():
            prune.l1_unstructured(layer.module, "weight", amount=fraction)
        assert evaluate(reference, data.test.inputs, data.test.labels, 500).accuracy == accuracy
    # trained, the network loses more to random pruning than to pruning by magnitude (at 99% all are at chance)
    for magnitude in (alone, by_method["layerwise"]):
        assert all(r < m - 5 for r, m in zip(by_method["random"]["one_shot_accuracy"][:2],
                                              magnitude["one_shot_accuracy"][:2]))
    # no fine-tune: one-shot only, for every method
    quick = prune_curve(model, regularizer, data, dataclasses.replace(base, finetune_epochs=0, compare=["random"]),
                        cfg.train, seed=0, eval_batch_size=500)
    assert quick["by_method"]["random"]["finetuned_accuracy"] is None
    assert set(quick["by_method"]["random"]["margin_crossing"]) == {"one_shot"}


def test_compare_names_known_methods_once(make_config):
    from sparsebench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"prune.compare=\['magnitude'\] .*one of global, layerwise, random"):
        make_config("prune=default", "prune.compare=[magnitude]")
    with pytest.raises(ConfigError, match=r"prune.compare=\['random', 'random'\] .*each method once"):
        make_config("prune=default", "prune.compare=[random,random]")


def test_a_record_holds_the_compared_methods(make_config):
    outcome = run(make_config("prune=default", "prune.fractions=[0.5,0.9]", "prune.finetune_epochs=0",
                              "prune.compare=[layerwise,random]"))
    prune_metrics = json.loads((outcome.path / "result.json").read_text())["metrics"]["prune"]
    assert set(prune_metrics["by_method"]) == {"layerwise", "random"}
    assert prune_metrics["by_method"]["random"]["achieved"] == pytest.approx([0.5, 0.9], abs=1e-4)
