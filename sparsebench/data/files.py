"""Finding a data set's files on disk, downloading the missing ones, and reading them into tensors.

``load_arrays(cfg)`` is the entry point: it looks in ``data_folder(cfg)``, downloads what is missing
(when ``dataset.download``), checks the structure of everything it reads, and returns four CPU tensors.
Each file's checksum (``dataset.content_md5``) is checked here only where the config names no digest of
the arrays; where it does, ``sparsebench.data`` checks that digest, which covers every file, and reads
the checksums (``verify_files``) only to name a damaged file. Every problem is
a single-line ``DataError`` naming the file or folder, what is wrong and how to fix it.

Formats (``dataset.format``), each registered in ``FORMATS`` with the two things a format does: say
which files it reads, and read them:
- ``idx``: MNIST-style files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each either gzip-compressed (``.gz``, as
  distributed) or not.
- ``cifar10``: the ``cifar-10-batches-py/`` folder of the official python archive, unpacked from
  ``dataset.archive`` when only the archive is there.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sparsebench.data import cifar, download, idx
from sparsebench.errors import DataError
from sparsebench.registry import Registry
from sparsebench.schemas import DatasetConfig

log = logging.getLogger(__name__)

# The four IDX files by role, under their names without ".gz".
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

Arrays = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DataFormat:
    # (cfg, folder) -> the files ``read`` reads, or None while any of them is missing
    files: Callable[[DatasetConfig, pathlib.Path], list[pathlib.Path] | None]
    # (cfg, folder) -> the four numpy arrays, downloading missing files when cfg.download
    read: Callable[[DatasetConfig, pathlib.Path], tuple[np.ndarray, ...]]


FORMATS: Registry[DataFormat] = Registry("data format", "dataset.format")


def data_folder(cfg: DatasetConfig) -> pathlib.Path:
    """The folder holding the data set's files.

    ``dataset.root`` when given: the folder of the files as distributed (``.../mnist`` with the four IDX
    files); a parent that holds ``<dataset.folder>/`` works too. Otherwise ``$SPARSEBENCH_DATA/<folder>``,
    else ``<user cache>/sparsebench/<folder>`` (``$XDG_CACHE_HOME`` or ``~/.cache``), where downloads go.
    """
    if cfg.root:
        root = pathlib.Path(cfg.root).expanduser().absolute()
        nested = root / cfg.folder
        return nested if cfg.folder and nested.is_dir() else root
    if os.environ.get("SPARSEBENCH_DATA"):
        base = pathlib.Path(os.environ["SPARSEBENCH_DATA"]).expanduser()
    else:
        base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "sparsebench"
    return (base / cfg.folder).absolute()


def data_files(cfg: DatasetConfig) -> list[pathlib.Path] | None:
    """The files ``load_arrays`` reads for ``cfg``, or None while any of them is missing."""
    return FORMATS[cfg.format].files(cfg, data_folder(cfg))


def read_arrays(cfg: DatasetConfig) -> tuple[np.ndarray, ...]:
    """(train_images uint8 N×C×H×W, train_labels int64 N, test_images, test_labels) as numpy arrays, after
    locating the files under data_folder(cfg), downloading missing ones when cfg.download, and checking
    them. The images may be read-only views of the files' bytes: what identifies the data reads them as
    they are, and ``load_arrays`` copies them once for training."""
    folder = data_folder(cfg)
    # Where the config names the arrays' digest, which is checked after reading (data.identity.check_content),
    # the per-file checksums add nothing but the name of a damaged file: they are left to verify_files, called
    # when that check fails (0.07 s of each read of MNIST).
    quick = dataclasses.replace(cfg, content_md5={}) if cfg.digest else cfg
    train_images, train_labels, test_images, test_labels = FORMATS[cfg.format].read(quick, folder)
    log.info("data set %s: %d training and %d test images of shape %s from %s", cfg.name, len(train_images),
             len(test_images), list(train_images.shape[1:]), folder)
    return (train_images, train_labels.astype(np.int64, copy=False), test_images,
            test_labels.astype(np.int64, copy=False))


def verify_files(cfg: DatasetConfig) -> None:
    """Read the files again with the per-file checksums ``read_arrays`` left out: a DataError naming the
    first damaged file, if one is."""
    if cfg.digest and cfg.content_md5:
        FORMATS[cfg.format].read(cfg, data_folder(cfg))


def load_arrays(cfg: DatasetConfig) -> Arrays:
    """``read_arrays(cfg)`` as four writable CPU tensors."""
    return tuple(_tensor(array) for array in read_arrays(cfg))  # type: ignore[return-value]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.require(array, requirements=["C", "W"]))  # copies only read-only views


# --- IDX ---------------------------------------------------------------------------------------------------------

def _distributed_name(cfg: DatasetConfig, stem: str) -> str:
    """The name under which ``stem`` is downloaded: the one ``dataset.files`` lists, else ``<stem>.gz``."""
    for name in (f"{stem}.gz", stem):
        if name in cfg.files:
            return name
    return f"{stem}.gz"


def _find_idx(folder: pathlib.Path, name: str, stem: str) -> pathlib.Path | None:
    for candidate in dict.fromkeys((name, f"{stem}.gz", stem)):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _content_md5(cfg: DatasetConfig, path: pathlib.Path, stem: str) -> str | None:
    for key in (path.name, f"{stem}.gz", stem):
        if cfg.content_md5.get(key):
            return cfg.content_md5[key]
    return None


def _load_idx(cfg: DatasetConfig, folder: pathlib.Path) -> tuple[np.ndarray, ...]:
    names = {role: _distributed_name(cfg, stem) for role, stem in IDX_FILES.items()}
    missing = [role for role, stem in IDX_FILES.items() if _find_idx(folder, names[role], stem) is None]
    download.fetch_missing(cfg, folder, [names[role] for role in missing], note=" (each .gz or not)")
    paths = {role: _find_idx(folder, names[role], stem) for role, stem in IDX_FILES.items()}
    arrays = {}
    for role, path in paths.items():
        read = idx.read_images if role.endswith("images") else idx.read_labels
        arrays[role] = read(path, _content_md5(cfg, path, IDX_FILES[role]))

    expected = tuple(cfg.shape)
    for split in ("train", "test"):
        images_path, labels_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if expected[0] != 1 or images.shape[1:] != expected[1:]:
            raise DataError(f"{images_path} holds images of shape {[1, *images.shape[1:]]}, but dataset.shape is "
                            f"{list(expected)}; set dataset.shape to match, or use the right files")
        _check_labels(labels, labels_path, len(images), images_path, cfg.num_classes)
        arrays[f"{split}_images"] = images.reshape(len(images), 1, *images.shape[1:])
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]


# --- CIFAR-10 ----------------------------------------------------------------------------------------------------

def _idx_files(cfg: DatasetConfig, folder: pathlib.Path) -> list[pathlib.Path] | None:
    paths = [_find_idx(folder, _distributed_name(cfg, stem), stem) for stem in IDX_FILES.values()]
    return None if None in paths else paths


FORMATS.add("idx", DataFormat(_idx_files, _load_idx))


def _cifar10_files(cfg: DatasetConfig, folder: pathlib.Path) -> list[pathlib.Path] | None:
    batches = folder / cifar.BATCH_FOLDER
    return None if cifar.missing_files(batches) else [batches / name for name in cifar.ALL_FILES]


def _load_cifar10(cfg: DatasetConfig, folder: pathlib.Path) -> tuple[np.ndarray, ...]:
    batches = folder / cifar.BATCH_FOLDER
    archive_name = cfg.archive or cifar.ARCHIVE
    archive = folder / archive_name
    if cifar.missing_files(batches):
        if not archive.is_file():
            absent = [f"{cifar.BATCH_FOLDER}/{name}" for name in cifar.missing_files(batches)]
            download.fetch_missing(cfg, folder, [archive_name], shown=[_brief(absent)],
                                   note=f" (or the archive {archive_name})")
        elif cfg.files.get(archive_name):  # provided by hand: check it is the official archive
            found = download.md5_file(archive)
            if found != cfg.files[archive_name].lower():
                raise DataError(f"{archive} has md5 {found}, but dataset.files expects {cfg.files[archive_name]}; "
                                f"delete it so that it is downloaded again, or replace it with the official archive")
        log.info("unpacking %s", archive)
        cifar.unpack(archive, folder)

    return cifar.read_folder(batches, tuple(cfg.shape), cfg.num_classes)


# --- checks ------------------------------------------------------------------------------------------------------

FORMATS.add("cifar10", DataFormat(_cifar10_files, _load_cifar10))


def _check_labels(labels: np.ndarray, labels_path: pathlib.Path, count: int, images_path: pathlib.Path,
                  num_classes: int) -> None:
    if len(labels) != count:
        raise DataError(f"{labels_path} holds {len(labels)} labels but {images_path} holds {count} images; "
                        f"the two files must come from the same data set and split: replace the wrong one")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(np.count_nonzero((labels < 0) | (labels >= num_classes)))
        raise DataError(f"{labels_path} has {bad} labels outside 0..{num_classes - 1} (largest {int(labels.max())}); "
                        f"set dataset.num_classes to match, or use the right files")


def _brief(names: list[str], limit: int = 3) -> str:
    return ", ".join(names) if len(names) <= limit else f"{', '.join(names[:limit])} and {len(names) - limit} more"
