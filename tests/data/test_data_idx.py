"""The IDX reader and the IDX branch of load_arrays, on files the tests write."""

from __future__ import annotations

import gzip
import pathlib

import numpy as np
import pytest
import torch
from data_helpers import IDX_STEMS, idx_bytes, make_idx_set, md5

from sparsebench.data import idx
from sparsebench.data.files import load_arrays
from sparsebench.errors import DataError
from sparsebench.schemas import DatasetConfig


def idx_config(root: pathlib.Path, **overrides) -> DatasetConfig:
    values = dict(name="tiny", format="idx", root=str(root), folder="tiny", download=False, shape=[1, 6, 6])
    values.update(overrides)
    return DatasetConfig(**values)


# --- one file ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_reads_images_written_by_hand(tmp_path, name):
    images = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    data = idx_bytes(images)
    assert data[:8] == b"\x00\x00\x08\x03\x00\x00\x00\x07"  # the magic number and the first size, big-endian
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    read = idx.read_images(path)
    assert read.dtype == np.uint8 and read.shape == (7, 5, 3)
    np.testing.assert_array_equal(read, images)


def test_reads_labels_and_checks_content_md5(tmp_path):
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8)
    data = idx_bytes(labels)
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(idx.read_labels(path, content_md5=md5(data)), labels)
    with pytest.raises(DataError, match="md5") as error:
        idx.read_labels(path, content_md5="0" * 32)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_writer_round_trip_and_reproducible_gzip(tmp_path, name):
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    idx.write(tmp_path / name, images)
    np.testing.assert_array_equal(idx.read_images(tmp_path / name), images)
    first = (tmp_path / name).read_bytes()
    idx.write(tmp_path / name, images)
    assert (tmp_path / name).read_bytes() == first  # no time stamp in the gzip header
    assert (first[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_gzip_is_told_by_content_not_name(tmp_path):
    labels = np.array([1, 2, 3], dtype=np.uint8)
    (tmp_path / "raw-named.gz").write_bytes(idx_bytes(labels))
    (tmp_path / "gzip-named").write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(idx.read_labels(tmp_path / "raw-named.gz"), labels)
    np.testing.assert_array_equal(idx.read_labels(tmp_path / "gzip-named"), labels)


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_file_names_the_file(tmp_path, compressed):
    data = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))[:-100]
    path = tmp_path / ("images.gz" if compressed else "images")
    path.write_bytes(gzip.compress(data) if compressed else data)
    with pytest.raises(DataError, match="truncated") as error:
        idx.read_images(path)
    message = str(error.value)
    assert str(path) in message and "delete it" in message and "\n" not in message


def test_truncated_gzip_stream_names_the_file(tmp_path):
    packed = gzip.compress(idx_bytes(np.ones((50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "images.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError) as error:
        idx.read_images(path)
    assert str(path) in str(error.value) and "truncated" in str(error.value)


def test_wrong_magic_names_the_file(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)))  # a labels file where images are expected
    with pytest.raises(DataError, match="magic number is 0x00000801") as error:
        idx.read_images(path)
    assert str(path) in str(error.value)


def test_trailing_bytes_and_tiny_files_are_refused(tmp_path):
    (tmp_path / "long").write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)) + b"\x00")
    with pytest.raises(DataError, match="trailing bytes"):
        idx.read_labels(tmp_path / "long")
    (tmp_path / "short").write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too few"):
        idx.read_labels(tmp_path / "short")


# --- a whole data set ----------------------------------------------------------------------------------------------

def test_load_arrays_returns_tensors_and_accepts_either_name(tmp_path, idx_set):
    compressed = {stem: index % 2 == 0 for index, stem in enumerate(IDX_STEMS)}  # mixed .gz and raw names
    idx_set.write(tmp_path / "tiny", compressed)
    cfg = idx_config(tmp_path, content_md5=idx_set.content_md5())
    train_images, train_labels, test_images, test_labels = load_arrays(cfg)
    assert train_images.dtype == torch.uint8 and train_images.shape == (30, 1, 6, 6)
    assert train_labels.dtype == torch.int64 and test_images.shape == (10, 1, 6, 6)
    np.testing.assert_array_equal(train_images[:, 0].numpy(), idx_set.train_images)
    np.testing.assert_array_equal(test_labels.numpy(), idx_set.test_labels)
    assert train_images.numpy().flags.writeable  # no read-only views handed out


def test_load_arrays_checks_content_md5_of_each_file(tmp_path, idx_set):
    idx_set.write(tmp_path / "tiny")
    wrong = idx_set.content_md5() | {"t10k-labels-idx1-ubyte.gz": "f" * 32}
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_arrays(idx_config(tmp_path, content_md5=wrong))


def test_image_and_label_counts_must_agree(tmp_path, idx_set):
    other = make_idx_set(train=29)
    idx_set.write(tmp_path / "tiny")
    other.write(tmp_path / "tiny", only=("train-labels-idx1-ubyte",))
    with pytest.raises(DataError, match="29 labels but .*train-images-idx3-ubyte.gz holds 30 images"):
        load_arrays(idx_config(tmp_path))


def test_labels_must_be_below_num_classes(tmp_path, idx_set):
    idx_set.write(tmp_path / "tiny")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz has .* labels outside 0..4"):
        load_arrays(idx_config(tmp_path, num_classes=5))


def test_image_shape_must_match_the_config(tmp_path, idx_set):
    idx_set.write(tmp_path / "tiny")
    with pytest.raises(DataError, match=r"shape \[1, 6, 6\], but dataset.shape is \[1, 28, 28\]"):
        load_arrays(idx_config(tmp_path, shape=[1, 28, 28]))


def test_missing_files_without_download(tmp_path, idx_set):
    idx_set.write(tmp_path / "tiny", only=IDX_STEMS[:2])
    with pytest.raises(DataError) as error:
        load_arrays(idx_config(tmp_path))
    message = str(error.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images" not in message and str(tmp_path / "tiny") in message and "\n" not in message
