"""Which data a run ran on: a digest of the arrays' content, and checks that the files are the data set named.

A run's identity includes ``dataset_digest(cfg)``, so the same config on other files is another run:
``dataset=fashion_mnist dataset.root=<the MNIST files>`` can never pass for a Fashion-MNIST run. The
digest is a sha256 of the four arrays (shape, type and bytes, decompressed), so re-compressed copies of
the same data share it. Computing it means reading the files (about a second for MNIST); it is kept
per process and in ``<user cache>/sparsebench/digests.json``, keyed by each file's path, size and
modification time, so a sweep or a claims plan reads each data set once.

Before any run uses them, files are checked against what the config says they hold
(:func:`check_content`): the digest a known data set must have, the digests of the other known data
sets (the wrong data set's files are named as such), the image counts and the pixel mean and std.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
from importlib import resources

import numpy as np
import torch
import yaml

from sparsebench.atomic import atomic_write_text
from sparsebench.errors import DataError, EnvironmentFault
from sparsebench.schemas import DatasetConfig

log = logging.getLogger(__name__)


class OtherDataSet(DataError):
    """Files that hold another data set this project knows: intact, so no file of them is damaged."""


# Pixel statistics must match the config's to this much on the [0, 1] scale: wrong files differ by
# far more (MNIST against Fashion-MNIST: mean 0.131 against 0.286), a random subset by far less.
STATS_TOLERANCE = 0.01
_MEMO: dict[str, str] = {}
_CACHE_WARNED = False  # a cache that cannot be written is said once per process


def array_digest(arrays) -> str:
    """sha256 (hex, first 16 characters) of the arrays' shapes, types and bytes, in order."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(np.asarray(array))
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:16]


def cache_path() -> pathlib.Path:
    base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return base / "sparsebench" / "digests.json"


def fingerprint(paths: list[pathlib.Path]) -> str | None:
    """Path, size and modification time of each file; None when one is missing."""
    parts = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            return None
        parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def _read_cache() -> dict[str, str]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(key: str | None, digest: str) -> None:
    """Keep ``digest`` for the files of ``key`` in this process and, best effort, in the user cache."""
    if key is None:
        return
    _MEMO[key] = digest
    cache = _read_cache()
    if cache.get(key) == digest:
        return
    cache[key] = digest
    try:
        atomic_write_text(cache_path(), json.dumps(cache, indent=0, sort_keys=True))
    except (OSError, EnvironmentFault):  # a read-only home: the digest is recomputed next time, nothing else changes
        global _CACHE_WARNED
        if not _CACHE_WARNED:
            log.warning("cannot write the data digest cache %s: each process reads the data once more to identify it; "
                        "set XDG_CACHE_HOME to a folder you can write to avoid that", cache_path())
            _CACHE_WARNED = True


def cached(key: str | None) -> str | None:
    if key is None:
        return None
    if key not in _MEMO:
        found = _read_cache().get(key)
        if isinstance(found, str):
            _MEMO[key] = found
    return _MEMO.get(key)


def known_data_sets() -> dict[str, dict]:
    """name -> the identity fields (``digest``, ``train_count``, ``test_count``) of every data set
    config shipped in ``conf/dataset/``."""
    folder = resources.files("sparsebench.conf") / "dataset"
    known = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text()) or {}
            known[data.get("name", entry.name[:-5])] = data
    return known


def _stats(images) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 N x C x H x W images on the [0, 1] scale."""
    images = torch.as_tensor(np.require(images, requirements=["W"]))  # (a read-only view is copied: torch writes)
    values = np.arange(256) / 255.0
    means, stds = [], []
    for channel in range(images.shape[1]):
        # From the 256 counts of each pixel value: exact, and over ten times cheaper than float
        # arithmetic on every pixel (0.18 s against 2.9 s for MNIST's training images).
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).double().numpy()
        mean = counts @ values / counts.sum()
        means.append(mean)
        stds.append(np.sqrt(max(counts @ np.square(values) / counts.sum() - mean**2, 0.0)))
    return np.array(means), np.array(stds)


def check_content(cfg: DatasetConfig, digest: str, arrays, folder: pathlib.Path) -> None:
    """Raise a one-line DataError when the arrays read from ``folder`` are not the data set ``cfg`` names."""
    train_images, _, test_images, _ = arrays
    for name, fields in known_data_sets().items():
        if name != cfg.name and fields.get("digest") == digest and cfg.digest != digest:
            raise OtherDataSet(f"{folder} holds the data set '{name}' (content digest {digest}), not '{cfg.name}'; "
                               f"point dataset.root at the {cfg.name} files, or use dataset={name}")
    if cfg.digest and digest != cfg.digest:
        raise DataError(f"{folder} does not hold the official {cfg.name} data: its content digest is {digest}, "
                        f"dataset.digest expects {cfg.digest}; replace the files with the official ones")
    for split, images, expected in (("training", train_images, cfg.train_count), ("test", test_images, cfg.test_count)):
        if expected is not None and len(images) != expected:
            raise DataError(f"{folder} holds {len(images)} {split} images, but {cfg.name} has {expected}; "
                            f"use the complete {cfg.name} files, or set dataset.{'train' if split == 'training' else 'test'}"
                            f"_count=null for data of your own")
    shipped = next((fields for fields in known_data_sets().values() if cfg.digest == digest == fields.get("digest")
                    and fields.get("mean") and fields.get("std")), None)
    # The official arrays, byte for byte: their pixel statistics are the shipped config's, not computed again
    # (0.08 s for MNIST); a normalisation typed otherwise is refused as what it is.
    mean, std = ((np.array(shipped["mean"], dtype=float), np.array(shipped["std"], dtype=float)) if shipped is not None
                 else _stats(train_images))
    if np.abs(mean - cfg.mean).max() <= STATS_TOLERANCE and np.abs(std - cfg.std).max() <= STATS_TOLERANCE:
        return
    shown = lambda values: "[" + ", ".join(f"{v:.4f}" for v in values) + "]"  # noqa: E731
    if shipped is not None:
        raise DataError(f"dataset.mean={shown(cfg.mean)} and dataset.std={shown(cfg.std)} are not the pixel "
                        f"statistics of the official {cfg.name} files in {folder} (mean {shown(mean)}, std "
                        f"{shown(std)}); leave them at {cfg.name}'s values")
    raise DataError(f"the training images in {folder} have pixel mean {shown(mean)} and std {shown(std)}, but "
                    f"{cfg.name} has mean {shown(cfg.mean)} and std {shown(cfg.std)}: these are not {cfg.name}'s "
                    f"files; point dataset.root at them, or set dataset.mean and dataset.std for data of your own")


__all__ = ["array_digest", "cached", "check_content", "fingerprint", "known_data_sets", "remember"]
