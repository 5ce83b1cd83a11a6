"""Magnitude pruning: fractions achieved, masks held through fine-tuning, the trained model untouched."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from sparsebench.config import PruneConfig
from sparsebench.data import load_splits
from sparsebench.models import build_model
from torch.nn.utils import prune

from sparsebench.models import place
from sparsebench.prune import (SmallestMagnitude, apply_pruning, keep_channels_last, largest_within, prune_curve,
                                 sparsity)
from sparsebench.regularizers import build_regularizer
from sparsebench.runner import run


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
    kept = torch.cat([(l.module.weight != 0).flatten() for l in pruned.weight_layers()])
    magnitudes = torch.cat([l.module.weight.abs().flatten() for l in model.weight_layers()])
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


def test_curve_keeps_masks_through_finetuning_and_leaves_the_model_alone(make_config):
    cfg, data, regularizer, model = _trained(make_config, "train.lr=0.05")
    before = copy.deepcopy(model.state_dict())

    prune_cfg = PruneConfig(fractions=[0.5, 0.9], finetune_epochs=0.5, finetune_lr=0.05)
    result = prune_curve(model, regularizer, data, prune_cfg, cfg.train, seed=0, eval_batch_size=500)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert result["fractions"] == [0.5, 0.9] and len(result["finetuned_accuracy"]) == 2
    assert all(abs(a - f) < 1e-3 for a, f in zip(result["achieved"], [0.5, 0.9]))

    # Fine-tune one pruned copy by hand as prune_curve does and check its pruned weights stay zero.
    pruned = copy.deepcopy(model)
    apply_pruning(pruned, 0.9, "global")
    zero = [(l.module.weight == 0).clone() for l in pruned.weight_layers()]
    optimizer = torch.optim.SGD(pruned.parameters(), lr=0.1)
    for start in range(0, 500, 100):
        loss = nn.functional.cross_entropy(pruned(data.train.inputs[start:start + 100]), data.train.labels[start:start + 100])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    pruned(data.train.inputs[:1])  # the pre-hook recomputes weight = weight_orig * mask
    for mask, layer, trained in zip(zero, pruned.weight_layers(), model.weight_layers()):
        assert torch.all(layer.module.weight[mask] == 0)
        assert not torch.equal(layer.module.weight[~mask], trained.module.weight[~mask])  # the rest did learn


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
    assert metrics["prune"]["fractions"] == [0.5, 0.9] and metrics["prune"]["largest_within_margin"]
    assert metrics["noise"]["pixels"]["levels"][0] == 0.0 and metrics["noise"]["pixels"]["score"] > 0
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
