"""sparsebench.nn.Dropout: inverted dropout with fast masks, and PyTorch's own on request."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sparsebench.nn import Dropout, Dropout2d, Sparseout, keep_probability


def test_torch_rng_is_pytorch_dropout_bit_for_bit():
    x = torch.randn(64, 300)
    torch.manual_seed(3)
    expected = F.dropout(x, 0.3, True)
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.3, rng="torch")(x), expected)
    torch.manual_seed(3)
    expected2d = F.dropout2d(x.view(64, 3, 10, 10), 0.3, True)
    torch.manual_seed(3)
    assert torch.equal(Dropout2d(0.3, rng="torch")(x.view(64, 3, 10, 10)), expected2d)


@pytest.mark.parametrize("p", [0.5, 0.2, 0.8])
def test_fast_masks_keep_at_the_stated_rate_and_are_unbiased(p):
    x = torch.ones(400_000)
    torch.manual_seed(0)
    y = Dropout(p)(x)
    keep = keep_probability(p)
    assert abs(keep - (1 - p)) < 2 ** -16
    kept = (y != 0).double().mean().item()
    assert abs(kept - keep) < 5 * (keep * (1 - keep) / x.numel()) ** 0.5
    values = y.unique()
    assert len(values) == 2 and values[0] == 0 and abs(values[1].item() - 1 / keep) < 1e-6
    assert abs(y.double().mean().item() - 1.0) < 5 * ((1 - keep) / keep / x.numel()) ** 0.5


def test_spatial_drops_whole_channels_and_eval_is_identity():
    x = torch.rand(32, 8, 5, 5) + 0.1
    layer = Dropout2d(0.5)
    y = layer(x)
    per_channel = (y == 0).flatten(2)
    assert torch.all(per_channel.all(2) | (~per_channel).all(2))
    dropped = per_channel.all(2).double().mean().item()  # 256 channels, each dropped with p = 0.5
    assert abs(dropped - 0.5) < 5 * (0.25 / 256) ** 0.5
    kept = ~per_channel.all(2)
    torch.testing.assert_close(y[kept], 2 * x[kept])  # kept channels scaled by 1 / (1 - p)
    layer.eval()
    assert layer(x) is x


def test_sparseout_with_q_2_trains_identically_to_fast_dropout():
    x = torch.randn(128, 100, requires_grad=True)
    torch.manual_seed(7)
    a = Dropout(0.4)(x)
    torch.manual_seed(7)
    b = Sparseout(0.4, q=2.0, rng="fast")(x)
    assert torch.equal(a, b) and (a == 0).any() and (a != 0).any()


def test_bad_arguments():
    with pytest.raises(ValueError, match="p=1.0"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="rng='numpy'"):
        Dropout(0.5, rng="numpy")
