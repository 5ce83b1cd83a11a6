"""sparsebench.nn.masks: Bernoulli masks from a few random bits per element."""

from __future__ import annotations

import math

import pytest
import torch

from sparsebench.nn.masks import keep_mask, keep_probability, scaled_keep_mask

# p = 0.5 and 0.25/0.75 take the lookup-table paths (1 and 2 bits an element); 0.3 and 0.1 the 16-bit one.
PS = [0.5, 0.25, 0.75, 0.3, 0.1]


@pytest.mark.parametrize("p", PS)
def test_keep_frequency_matches_the_keep_probability(p):
    torch.manual_seed(0)
    n = 400_000
    mask = keep_mask((n,), p)
    keep = keep_probability(p)
    assert mask.dtype == torch.bool and mask.shape == (n,)
    se = math.sqrt(keep * (1 - keep) / n)
    assert abs(mask.double().mean().item() - keep) < 5 * se
    assert abs(keep - (1 - p)) <= 2 ** -17


@pytest.mark.parametrize("p", PS)
def test_scaled_mask_takes_two_values_and_has_mean_one(p):
    torch.manual_seed(1)
    n = 400_000
    keep = keep_probability(p)
    scaled = scaled_keep_mask((n // 100, 100), p, dtype=torch.float64)
    assert scaled.shape == (n // 100, 100) and scaled.dtype == torch.float64
    assert set(scaled.unique().tolist()) <= {0.0, 1.0 / keep}
    se = math.sqrt((1 - keep) / keep / n)  # sd of M = m / keep is sqrt((1 - keep) / keep)
    assert abs(scaled.mean().item() - 1.0) < 5 * se


@pytest.mark.parametrize("p", PS)
def test_minus_one_is_the_same_draw_minus_one(p):
    for dtype in (torch.float32, torch.float64):
        torch.manual_seed(4)
        scaled = scaled_keep_mask((300, 7), p, dtype=dtype)
        torch.manual_seed(4)
        shifted = scaled_keep_mask((300, 7), p, dtype=dtype, minus_one=True)
        torch.testing.assert_close(shifted, scaled - 1, rtol=0, atol=1e-6)
        # exactly two values, -1 and 1 / keep - 1, the latter to the rounding of ``dtype``
        values = shifted.unique().double()
        expected = torch.tensor([-1.0, 1 / keep_probability(p) - 1], dtype=torch.float64)
        assert values.shape == (2,) and values[0] == -1.0
        assert abs(values[1] - expected[1]) <= 4 * torch.finfo(dtype).eps


def test_neighbouring_elements_are_independent():
    # The lookup-table path packs 8 elements in a byte: adjacent elements must not be correlated.
    torch.manual_seed(2)
    m = scaled_keep_mask((200_000, 2), 0.5, dtype=torch.float64) - 1.0
    corr = (m[:, 0] * m[:, 1]).mean().item()
    assert abs(corr) < 5 / math.sqrt(200_000)


def test_p_zero_keeps_everything_and_masks_are_reproducible():
    assert keep_mask((3, 4), 0.0).all()
    assert torch.equal(scaled_keep_mask((3, 4), 0.0), torch.ones(3, 4))
    for p in (0.5, 0.3):
        g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
        assert torch.equal(keep_mask((50, 7), p, generator=g1), keep_mask((50, 7), p, generator=g2))
        torch.manual_seed(3)
        a = scaled_keep_mask((50, 7), p)
        torch.manual_seed(3)
        assert torch.equal(a, scaled_keep_mask((50, 7), p))


def test_odd_sizes():
    for shape in [(1,), (3,), (5, 3), (2, 3, 5, 7)]:
        for p in (0.5, 0.25, 0.3):
            assert keep_mask(shape, p).shape == shape
            assert scaled_keep_mask(shape, p).shape == shape
