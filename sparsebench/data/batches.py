"""Mini-batches on the device: slices of a seeded permutation, normalised and augmented in bulk.

No DataLoader and no per-sample Python: a whole split is one tensor on the device, a batch is an
index gather, augmentation is a few batched tensor operations.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from sparsebench.schemas import AugmentConfig


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1]."""
    return images.to(torch.float32).div_(255.0)


def normalize(images01: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> model inputs, per channel: (x - mean) / std. ``mean``/``std`` are shaped (C, 1, 1)."""
    return (images01 - mean) / std


def augment(inputs: torch.Tensor, cfg: AugmentConfig, fill: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop after padding (the pad holds ``fill``, the normalised black, per channel) and random
    horizontal flip, drawn independently per image and applied to the whole batch at once."""
    batch, channels, height, width = inputs.shape
    device = inputs.device
    if cfg.crop_padding:
        pad = cfg.crop_padding
        padded = fill.expand(batch, channels, height + 2 * pad, width + 2 * pad).clone()
        padded[:, :, pad:pad + height, pad:pad + width] = inputs
        dy = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator, device=device)
        dx = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator, device=device)
        rows = (dy + torch.arange(height, device=device))[:, None, :, None]
        cols = (dx + torch.arange(width, device=device))[:, None, None, :]
        samples = torch.arange(batch, device=device)[:, None, None, None]
        chans = torch.arange(channels, device=device)[None, :, None, None]
        inputs = padded[samples, chans, rows, cols]
    if cfg.flip:
        flip = torch.rand(batch, generator=generator, device=device) < 0.5
        inputs = torch.where(flip[:, None, None, None], inputs.flip(-1), inputs)
    return inputs


class Batches:
    """One epoch's mini-batches of (inputs, labels) from tensors already on the device.

    The permutation is drawn on the CPU from ``generator`` so that CPU and GPU runs see the same order.
    """

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int, *,
                 generator: torch.Generator | None = None, augment_cfg: AugmentConfig | None = None,
                 fill: torch.Tensor | None = None, device_generator: torch.Generator | None = None):
        self.inputs, self.labels, self.batch_size = inputs, labels, batch_size
        self.generator, self.augment_cfg = generator, augment_cfg
        self.fill, self.device_generator = fill, device_generator

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        if self.generator is None:  # evaluation: in order, contiguous slices, no copies
            for start in range(0, count, self.batch_size):
                yield self.inputs[start:start + self.batch_size], self.labels[start:start + self.batch_size]
            return
        order = torch.randperm(count, generator=self.generator).to(self.labels.device, non_blocking=True)
        for start in range(0, count, self.batch_size):
            index = order[start:start + self.batch_size]
            inputs = self.inputs[index]
            if self.augment_cfg is not None and (self.augment_cfg.crop_padding or self.augment_cfg.flip):
                inputs = augment(inputs, self.augment_cfg, self.fill, self.device_generator)
            yield inputs, self.labels[index]


def pad_fill(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The normalised value of a black pixel, per channel: what padding holds (as torchvision pads raw images)."""
    return normalize(torch.zeros_like(mean), mean, std)
