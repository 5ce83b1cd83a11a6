"""On-device batching and augmentation."""

from __future__ import annotations

import torch

from sparsebench.data.batches import Batches, augment
from sparsebench.schemas import AugmentConfig


def test_training_batches_are_a_seeded_permutation():
    inputs, labels = torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10)
    seen = [y for _, y in Batches(inputs, labels, 3, generator=torch.Generator().manual_seed(0))]
    assert [len(y) for y in seen] == [3, 3, 3, 1]
    order = torch.cat(seen)
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    again = torch.cat([y for _, y in Batches(inputs, labels, 3, generator=torch.Generator().manual_seed(0))])
    assert torch.equal(order, again)
    for x, y in Batches(inputs, labels, 3, generator=torch.Generator().manual_seed(0)):
        assert torch.equal(x.view(-1), y.float())


def test_random_crop_shifts_within_padding_and_fills_with_given_value():
    image = torch.arange(1.0, 17.0).view(1, 1, 4, 4).repeat(200, 1, 1, 1)
    out = augment(image, AugmentConfig(crop_padding=1, flip=False), torch.full((1, 1, 1), -5.0),
                  torch.Generator().manual_seed(0))
    assert out.shape == image.shape
    shifts = set()
    for crop in out[:, 0]:
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                padded = torch.full((6, 6), -5.0)
                padded[1:5, 1:5] = image[0, 0]
                if torch.equal(crop, padded[1 + dy:5 + dy, 1 + dx:5 + dx]):
                    shifts.add((dy, dx))
                    break
            else:
                continue
            break
        else:
            raise AssertionError("a crop is not a shifted window of the padded image")
    assert len(shifts) == 9


def test_flip_mirrors_about_half_the_images():
    image = torch.arange(4.0).view(1, 1, 1, 4).repeat(1000, 1, 1, 1)
    out = augment(image, AugmentConfig(crop_padding=0, flip=True), torch.zeros(1, 1, 1), torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 3).sum().item()
    assert 400 < flipped < 600
    assert all(torch.equal(o, image[0]) or torch.equal(o, image[0].flip(-1)) for o in out)
