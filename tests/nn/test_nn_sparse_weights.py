"""SparseWeights / SparseWeights2d: fixed random sparse connectivity, nupic.torch compatible."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from sparsebench.nn import (
    SparseWeights,
    SparseWeights2d,
    normalize_sparse_weights,
    random_connectivity_mask,
    rezero_weights,
)


def test_each_output_unit_keeps_exactly_round_density_times_fan_in_linear():
    layer = SparseWeights(nn.Linear(100, 20), sparsity=0.7)
    kept = (~layer.zero_mask).sum(1)
    assert (kept == 30).all()
    assert ((layer.module.weight != 0).sum(1) == 30).all()
    assert layer.zero_mask.dtype == torch.bool and layer.zero_mask.shape == (20, 100)
    assert len({tuple(row.tolist()) for row in layer.zero_mask}) == 20  # rows chosen independently


def test_each_output_channel_keeps_exactly_round_density_times_fan_in_conv():
    layer = SparseWeights2d(nn.Conv2d(3, 8, 5), sparsity=0.6)  # fan_in 75, round(0.4 * 75) = 30 kept
    assert layer.fan_in == 75 and layer.kept_per_unit == 30
    assert ((~layer.zero_mask).flatten(1).sum(1) == 30).all()
    assert ((layer.module.weight != 0).flatten(1).sum(1) == 30).all()
    grouped = SparseWeights2d(nn.Conv2d(4, 6, 3, groups=2), sparsity=0.5)  # fan_in 2 * 9 = 18
    assert ((~grouped.zero_mask).flatten(1).sum(1) == 9).all()


def test_forward_is_the_wrapped_layer_with_zeros():
    layer = SparseWeights(nn.Linear(10, 4), sparsity=0.5)
    x = torch.randn(3, 10)
    expected = F.linear(x, layer.module.weight.masked_fill(layer.zero_mask, 0.0), layer.module.bias)
    assert torch.equal(layer(x), expected)


def test_zero_after_an_optimizer_step_and_rezero():
    layer = SparseWeights(nn.Linear(20, 10), sparsity=0.6)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        layer(torch.randn(8, 20)).pow(2).sum().backward()
        optimizer.step()
    assert (layer.module.weight[layer.zero_mask] != 0).any()  # the step moved them
    nn.Sequential(layer).apply(rezero_weights)
    assert (layer.module.weight[layer.zero_mask] == 0).all()
    assert (layer.module.weight[~layer.zero_mask] != 0).all()


def test_zero_after_load_state_dict_and_mask_restored():
    layer = SparseWeights(nn.Linear(20, 10), sparsity=0.6)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    assert set(state) == {"module.weight", "module.bias", "zero_mask"}
    state["module.weight"].fill_(1.0)
    other = nn.Sequential(SparseWeights(nn.Linear(20, 10), sparsity=0.6))  # a different mask
    other.load_state_dict({f"0.{k}": v for k, v in state.items()})
    loaded = other[0]
    assert torch.equal(loaded.zero_mask, layer.zero_mask)
    assert torch.equal(loaded.module.weight, (~layer.zero_mask).float())


def test_structural_mask():
    layer = SparseWeights2d(nn.Conv2d(2, 4, 3), sparsity=0.5)
    mask = layer.structural_mask()
    assert mask.dtype == torch.bool and mask.shape == layer.module.weight.shape
    assert torch.equal(mask, layer.zero_mask)
    assert (layer.module.weight[mask] == 0).all()
    mask.fill_(False)  # a copy: the layer is unaffected
    assert layer.zero_mask.any()


def test_generator_seeds_masks_apart_from_the_global_random_state():
    linear = nn.Linear(30, 5)
    state = torch.get_rng_state()
    a = SparseWeights(linear, sparsity=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    b = SparseWeights(nn.Linear(30, 5), sparsity=0.5, generator=torch.Generator().manual_seed(3))
    c = SparseWeights(nn.Linear(30, 5), sparsity=0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.zero_mask, b.zero_mask) and not torch.equal(a.zero_mask, c.zero_mask)


def test_mask_choices_are_uniform_over_inputs():
    mask = random_connectivity_mask(4000, 10, 0.3, generator=torch.Generator().manual_seed(0))
    kept_share = (~mask).double().mean(0)  # each input kept with probability 3 / 10
    se = (0.3 * 0.7 / 4000) ** 0.5
    assert ((kept_share - 0.3).abs() < 5 * se).all()


def test_sparsity_zero_and_allow_extremes():
    dense = SparseWeights(nn.Linear(5, 3), sparsity=0.0)
    assert not dense.zero_mask.any()
    empty = SparseWeights(nn.Linear(5, 3), sparsity=1.0, allow_extremes=True)
    assert (empty.module.weight == 0).all()


def test_deprecated_weight_sparsity_is_the_fraction_kept_as_in_nupic():
    with pytest.warns(DeprecationWarning, match="weight_sparsity"):
        layer = SparseWeights(nn.Linear(10, 4), 0.3)  # positional: nupic.torch's weight_sparsity
    assert layer.sparsity == pytest.approx(0.7) and layer.weight_sparsity == pytest.approx(0.3)
    assert ((~layer.zero_mask).sum(1) == 3).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SparseWeights(nn.Linear(10, 4), sparsity=0.3)  # the keyword warns nothing


@pytest.mark.parametrize("kwargs, name", [
    ({"sparsity": 1.0}, "sparsity=1.0"), ({"sparsity": -0.1}, "sparsity=-0.1"),
    ({"sparsity": 1.5}, "sparsity=1.5"), ({}, "sparsity=None"),
    ({"sparsity": 0.5, "weight_sparsity": 0.5}, "weight_sparsity=0.5"),
])
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match="is not allowed") as info:
        SparseWeights(nn.Linear(4, 3), **kwargs)
    assert str(info.value).startswith(name)


def test_wrong_module_types_raise():
    with pytest.raises(ValueError, match="nn.Linear"):
        SparseWeights(nn.Conv2d(1, 1, 1), sparsity=0.5)
    with pytest.raises(ValueError, match="nn.Conv2d"):
        SparseWeights2d(nn.Linear(1, 1), sparsity=0.5)


def test_normalize_keeps_the_structure_and_rezero_works_under_pruning():
    layer = SparseWeights(nn.Linear(100, 10), sparsity=0.9)
    before = layer.module.weight.detach().abs().max()
    normalize_sparse_weights(layer)
    assert (layer.module.weight[layer.zero_mask] == 0).all()
    assert layer.module.weight.detach().abs().max() > before  # fan 10 instead of 100: wider init
    prune.l1_unstructured(layer.module, "weight", amount=0.5)
    with torch.no_grad():
        layer.module.weight_orig.add_(1.0)
    layer.rezero_weights()
    assert (layer.module.weight_orig[layer.zero_mask] == 0).all()


def test_built_on_the_meta_device_without_loading_torch_dynamo():
    """A model built on the meta device (how a config is checked before any run) has no weights to zero:
    building it must not run an operation on meta tensors, whose first use imports torch._dynamo (about
    a second, once per process)."""
    import subprocess
    import sys

    code = ("import sys, torch\nfrom torch import nn\nfrom sparsebench.nn import SparseWeights, SparseWeights2d\n"
            "with torch.device('meta'):\n"
            "    layers = [SparseWeights(nn.Linear(100, 20), sparsity=0.7), SparseWeights2d(nn.Conv2d(3, 8, 5), sparsity=0.6)]\n"
            "assert all(layer.zero_mask.is_meta and layer.module.weight.is_meta for layer in layers)\n"
            "print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_built_on_the_meta_device_draws_no_mask():
    """A meta tensor holds no values, so a layer built there draws no mask: the random state it would
    have drawn from is left as it was (and a large layer costs no sort of its rows)."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with torch.device("meta"):
        layer = SparseWeights(nn.Linear(300, 200), sparsity=0.7)
    assert layer.zero_mask.is_meta and layer.zero_mask.shape == (200, 300) and layer.zero_mask.dtype == torch.bool
    assert torch.equal(torch.rand(3), expected)
