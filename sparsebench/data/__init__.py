"""Data sets: files on disk -> one tensor per split on the device -> mini-batches.

``load_splits`` is the entry point. The files are found, downloaded and checked by ``files``; the
on-device batching, normalisation and augmentation live in ``batches``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsebench.config import DatasetConfig
from sparsebench.errors import check
from sparsebench.data.batches import Batches, normalize, pad_fill, to_unit_range


@dataclass
class ImageSet:
    """One split on the device: raw images (uint8, N x C x H x W), normalised model inputs, labels."""

    images: torch.Tensor
    inputs: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DataSplits:
    train: ImageSet
    val: ImageSet | None
    test: ImageSet
    mean: torch.Tensor  # (C, 1, 1), [0, 1] scale
    std: torch.Tensor
    num_classes: int
    cfg: DatasetConfig

    def to_inputs(self, images01: torch.Tensor) -> torch.Tensor:
        """[0, 1] images (e.g. after adding noise) -> model inputs."""
        return normalize(images01, self.mean, self.std)

    def train_batches(self, batch_size: int, generator: torch.Generator,
                      device_generator: torch.Generator | None = None) -> Batches:
        return Batches(self.train.inputs, self.train.labels, batch_size, generator=generator,
                       augment_cfg=self.cfg.augment, fill=pad_fill(self.mean, self.std),
                       device_generator=device_generator)


def _subset(count: int, size: int | None, generator: torch.Generator) -> torch.Tensor:
    """Indices of a seeded random subset of ``size`` (all when None), kept in the original order."""
    if size is None or size >= count:
        return torch.arange(count)
    return torch.randperm(count, generator=generator)[:size].sort().values


def _image_set(images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, mean, std, device) -> ImageSet:
    images = images[index].to(device)
    return ImageSet(images, normalize(to_unit_range(images), mean, std), labels[index].to(device))


def load_splits(cfg: DatasetConfig, device: torch.device) -> DataSplits:
    """Read the data set, hold out ``val_size`` training images (seeded by ``split_seed``), apply the
    subsets, and put every split on ``device``."""
    from sparsebench.data.files import load_arrays

    train_images, train_labels, test_images, test_labels = load_arrays(cfg)
    check(cfg.val_size < len(train_labels), "dataset.val_size", cfg.val_size,
          f"must be smaller than the {len(train_labels)} training images of {cfg.name}")
    generator = torch.Generator().manual_seed(cfg.split_seed)
    order = torch.randperm(len(train_labels), generator=generator)
    val_index = order[:cfg.val_size].sort().values
    train_index = order[cfg.val_size:].sort().values
    train_index = train_index[_subset(len(train_index), cfg.train_subset, generator)]
    test_index = _subset(len(test_labels), cfg.test_subset, generator)

    mean = torch.tensor(cfg.mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    std = torch.tensor(cfg.std, dtype=torch.float32, device=device).view(-1, 1, 1)
    return DataSplits(
        train=_image_set(train_images, train_labels, train_index, mean, std, device),
        val=_image_set(train_images, train_labels, val_index, mean, std, device) if cfg.val_size else None,
        test=_image_set(test_images, test_labels, test_index, mean, std, device),
        mean=mean, std=std, num_classes=cfg.num_classes, cfg=cfg,
    )


__all__ = ["Batches", "DataSplits", "ImageSet", "load_splits"]
