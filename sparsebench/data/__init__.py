"""Data sets: files on disk -> one tensor per split on the device -> mini-batches.

``load_splits`` is the entry point. The files are found, downloaded and checked by ``files``; what
data a run ran on (a content digest, part of the run's identity) and whether the files are the data set
named, by ``identity``; the on-device batching, normalisation and augmentation live in ``batches``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsebench import seeds
from sparsebench.data import identity
from sparsebench.data.batches import Batches, normalize, pad_fill, to_unit_range
from sparsebench.data.files import (
    data_files,
    data_folder,
    load_arrays,
    read_arrays,
    verify_files,
)
from sparsebench.errors import DataError, check
from sparsebench.schemas import DatasetConfig


@dataclass
class ImageSet:
    """One split on the device: raw images (uint8, N x C x H x W), normalised model inputs, labels."""

    images: torch.Tensor
    inputs: torch.Tensor
    labels: torch.Tensor
    # Positions of these images in the data set's file (its training or test images), on the CPU; None for
    # images made from others (a task's permuted or split copy).
    index: torch.Tensor | None = None

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
    digest: str = ""  # content digest of the files' arrays (data.identity)

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
    return ImageSet(images, normalize(to_unit_range(images), mean, std), labels[index].to(device), index)


def read_data(cfg: DatasetConfig):
    """(the four tensors of ``files.load_arrays``, their content digest), after checking that they are
    the data set ``cfg`` names (``identity.check_content``)."""
    arrays = load_arrays(cfg)
    return arrays, _identify(cfg, arrays)


def dataset_digest(cfg: DatasetConfig) -> str:
    """The content digest of the data ``cfg`` points at: from the cache when its files are unchanged,
    else by reading (and, if need be, downloading) and checking them. Raises DataError."""
    files = data_files(cfg)
    found = identity.cached(identity.fingerprint(files)) if files else None
    # (The arrays as read, without the copy training needs: a claims plan reads each data set for its digest.)
    return found or _identify(cfg, read_arrays(cfg))


def _identify(cfg: DatasetConfig, arrays) -> str:
    """The arrays' content digest, once they are checked to be the data set ``cfg`` names; kept for their files."""
    digest = identity.array_digest(arrays)
    try:
        identity.check_content(cfg, digest, arrays, data_folder(cfg))
    except identity.OtherDataSet:
        # Said as it is: the embedded set's per-file checksums would call MNIST's intact files damaged and
        # advise deleting them.
        raise
    except DataError:
        verify_files(cfg)  # a damaged file named first, as a read with its checksums names it
        raise
    identity.remember(identity.fingerprint(data_files(cfg)), digest)
    return digest


_LAST: dict = {}  # the splits last loaded in this process: a worker that runs a sweep reads its data once


def load_splits(cfg: DatasetConfig, device: torch.device) -> DataSplits:
    """Read the data set, hold out ``val_size`` training images (seeded by ``split_seed``), apply the
    subsets, and put every split on ``device``. The last splits loaded are kept, and given again while
    the config, the device and the files are the same (nothing writes into them)."""
    files = data_files(cfg)
    key = (repr(cfg), str(device), identity.fingerprint(files) if files else None)
    if key[2] is not None and _LAST.get("key") == key:
        return _LAST["splits"]
    splits = _load_splits(cfg, device)
    _LAST.clear()
    _LAST.update(key=key, splits=splits)
    return splits


def _load_splits(cfg: DatasetConfig, device: torch.device) -> DataSplits:
    (train_images, train_labels, test_images, test_labels), digest = read_data(cfg)
    check(cfg.val_size < len(train_labels), "dataset.val_size", cfg.val_size,
          f"must be smaller than the {len(train_labels)} training images of {cfg.name}")
    for key, size, available in (("train_subset", cfg.train_subset, len(train_labels) - cfg.val_size),
                                 ("test_subset", cfg.test_subset, len(test_labels))):
        check(size is None or size <= available, f"dataset.{key}", size,
              f"{cfg.name} has only {available} images there", f"use at most {available}, or null for all")
    generator = torch.Generator().manual_seed(seeds.split(cfg.split_seed))
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
        mean=mean, std=std, num_classes=cfg.num_classes, cfg=cfg, digest=digest,
    )


__all__ = ["Batches", "DataSplits", "ImageSet", "dataset_digest", "load_splits", "read_data"]
