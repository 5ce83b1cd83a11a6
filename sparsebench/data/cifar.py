"""CIFAR-10 in its official python format: reading the batches, unpacking the archive.

``cifar-10-python.tar.gz`` unpacks to ``cifar-10-batches-py/`` holding ``data_batch_1`` to ``data_batch_5``
(10,000 training images each), ``test_batch`` (10,000) and ``batches.meta``: python pickles of dicts whose
``b'data'`` is a uint8 array of N rows of 3072 values (channel-major: 1024 red, 1024 green, 1024 blue,
each a row-major 32 x 32 plane) and ``b'labels'`` a list of N integers in 0..9.

The pickles are read with an unpickler that accepts only what such a file can contain (numpy arrays,
dtypes, bytes), so a foreign or tampered file is reported instead of executing arbitrary code.
"""

from __future__ import annotations

import math
import os
import pathlib
import pickle
import shutil
import tarfile
import tempfile
from typing import Any

import numpy as np

from sparsebench.errors import DataError

BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
ALL_FILES = (*TRAIN_BATCHES, TEST_BATCH, META)
ARCHIVE = "cifar-10-python.tar.gz"

REPLACE = "delete it so that it is unpacked or downloaded again, or replace it with an intact copy"

# (module, name) of every global an official batch may reference; numpy 1 and 2 module names.
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes pickled by Python 3 at protocol 2
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it references {module}.{name}, which a CIFAR batch never does")
        return super().find_class(module, name)


def read_pickle(path: pathlib.Path) -> dict:
    """The dict pickled in ``path`` (keys as bytes); DataError naming the file if it is not one."""
    try:
        with open(path, "rb") as stream:
            content = _BatchUnpickler(stream, encoding="bytes").load()
    except OSError as error:
        raise DataError(f"cannot read {path} ({_one_line(error)}); check that it is a readable file") from None
    except Exception as error:  # truncated or foreign pickles raise many kinds of error
        raise DataError(f"{path} is not a readable CIFAR-10 pickle ({type(error).__name__}: {_one_line(error)}); "
                        f"{REPLACE}") from None
    if not isinstance(content, dict):
        raise DataError(f"{path} holds a {type(content).__name__}, not the dict of a CIFAR-10 batch; {REPLACE}")
    return content


def read_batch(path: pathlib.Path, shape: tuple[int, int, int] = (3, 32, 32),
               num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(images N x C x H x W uint8, labels N int64) of one batch file; labels must lie in 0..num_classes-1."""
    content = read_pickle(path)
    data, labels = content.get(b"data"), content.get(b"labels")
    if data is None or labels is None:
        keys = ", ".join(repr(key) for key in content)
        raise DataError(f"{path} lacks b'data' or b'labels' (it has {keys}): not a CIFAR-10 batch; {REPLACE}")
    row = math.prod(shape)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != row:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: b'data' should be uint8 rows of {row} values (one image of dataset.shape "
                        f"{list(shape)} each), found {found}; {REPLACE}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        labels = None
    if labels is None or labels.ndim != 1:
        raise DataError(f"{path}: b'labels' should be a list of integers; {REPLACE}")
    if len(labels) != len(data):
        raise DataError(f"{path} holds {len(data)} images but {len(labels)} labels; {REPLACE}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path} has labels outside 0..{num_classes - 1} (from {labels.min()} to {labels.max()}); "
                        f"set dataset.num_classes to match, or {REPLACE}")
    # Row i is channel-major then row-major: data[i, c*H*W + y*W + x] is pixel (c, y, x).
    return np.ascontiguousarray(data).reshape(len(data), *shape), labels


def read_meta(path: pathlib.Path, num_classes: int) -> list[str]:
    """The class names of ``batches.meta``; checks there is one per class."""
    names = read_pickle(path).get(b"label_names")
    if not isinstance(names, list) or len(names) != num_classes:
        count = len(names) if isinstance(names, list) else "no"
        raise DataError(f"{path} lists {count} class names in b'label_names', expected {num_classes}; {REPLACE}")
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


def read_folder(folder: pathlib.Path, shape: tuple[int, int, int], num_classes: int) -> tuple[np.ndarray, ...]:
    """(train_images, train_labels, test_images, test_labels) of an unpacked ``cifar-10-batches-py`` folder."""
    read_meta(folder / META, num_classes)
    train = [read_batch(folder / name, shape, num_classes) for name in TRAIN_BATCHES]
    test_images, test_labels = read_batch(folder / TEST_BATCH, shape, num_classes)
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    return train_images, train_labels, test_images, test_labels


def missing_files(folder: pathlib.Path) -> list[str]:
    """The files of ``cifar-10-batches-py`` absent from ``folder``."""
    return [name for name in ALL_FILES if not (folder / name).is_file()]


def _check_members(archive: pathlib.Path, members: list[tarfile.TarInfo]) -> None:
    """Refuse archives with absolute paths, '..', links or devices (path traversal and the like)."""
    for member in members:
        parts = pathlib.PurePosixPath(member.name).parts
        if member.name.startswith(("/", "\\")) or ".." in parts or not (member.isfile() or member.isdir()):
            raise DataError(f"{archive} contains an unsafe entry '{member.name}' (absolute path, '..', link or "
                            f"device); it is not the official archive: {REPLACE}")


def unpack(archive: pathlib.Path, destination: pathlib.Path) -> pathlib.Path:
    """Unpack the official archive so that ``destination/cifar-10-batches-py`` appears complete, atomically.

    The archive is extracted into a temporary folder beside the target, checked, then renamed into place;
    an incomplete earlier folder is replaced. Returns the batch folder.
    """
    target = destination / BATCH_FOLDER
    destination.mkdir(parents=True, exist_ok=True)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=".unpack-", dir=destination))
    old = None
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                _check_members(archive, members)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4, 3.10.12
                    tar.extractall(scratch, members=members, filter="data")
                else:
                    tar.extractall(scratch, members=members)
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DataError(f"{archive} cannot be unpacked ({_one_line(error)}); {REPLACE}") from None
        unpacked = scratch / BATCH_FOLDER
        absent = missing_files(unpacked)
        if absent:
            raise DataError(f"{archive} does not hold {BATCH_FOLDER}/ with {', '.join(absent)}; "
                            f"it is not the official CIFAR-10 python archive: {REPLACE}")
        if target.exists():
            if not missing_files(target):  # another process finished first
                return target
            old = pathlib.Path(tempfile.mkdtemp(prefix=".incomplete-", dir=destination))
            os.replace(target, old / BATCH_FOLDER)  # set aside, removed below
        try:
            os.replace(unpacked, target)
        except OSError as error:
            if not target.is_dir() or missing_files(target):  # not merely another process finishing first
                raise DataError(f"cannot move the unpacked {BATCH_FOLDER} into {destination} "
                                f"({_one_line(error)}); check that the folder is writable") from None
        return target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
