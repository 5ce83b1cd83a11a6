"""The CIFAR-10 reader, on small files the tests write in the official format."""

from __future__ import annotations

import io
import pathlib
import pickle
import tarfile

import numpy as np
import pytest
import torch
from data_helpers import make_cifar_set, md5, official_pickle

from sparsebench.data import cifar
from sparsebench.data.files import load_arrays
from sparsebench.errors import DataError
from sparsebench.schemas import DatasetConfig

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def cifar_config(root: pathlib.Path, **overrides) -> DatasetConfig:
    values = dict(name="cifar10", format="cifar10", root=str(root), folder="cifar10", download=False,
                  archive="cifar-10-python.tar.gz", shape=[3, 32, 32], mean=MEAN, std=STD)
    values.update(overrides)
    return DatasetConfig(**values)


def test_loads_batches_in_order_with_the_official_pixel_layout(tmp_path, cifar_set):
    images, labels = cifar_set.batches[0]
    images[2] = 0
    images[2, 1, 5, 7] = 201  # green channel, row 5, column 7
    batches = cifar_set.write(tmp_path / "cifar10")
    row = pickle.loads((batches / "data_batch_1").read_bytes(), encoding="bytes")[b"data"][2]
    assert row[1 * 1024 + 5 * 32 + 7] == 201 and np.count_nonzero(row) == 1  # where the official format puts it

    train_images, train_labels, test_images, test_labels = load_arrays(cifar_config(tmp_path))
    assert train_images.dtype == torch.uint8 and train_images.shape == (16, 3, 32, 32)
    assert train_labels.dtype == torch.int64 and test_images.shape == (5, 3, 32, 32)
    assert train_images[2, 1, 5, 7] == 201 and int(train_images[2].sum()) == 201
    np.testing.assert_array_equal(train_images.numpy(), cifar_set.train_images)
    np.testing.assert_array_equal(train_labels.numpy(), cifar_set.train_labels)
    np.testing.assert_array_equal(test_images.numpy(), cifar_set.batches[5][0])
    np.testing.assert_array_equal(test_labels.numpy(), cifar_set.batches[5][1])


def test_reads_pickles_of_any_protocol(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": images.reshape(2, 3072), b"labels": [0, 9]}, protocol=5))
    read, labels = cifar.read_batch(path)
    np.testing.assert_array_equal(read, images)
    assert labels.tolist() == [0, 9]


def test_truncated_batch_names_the_file(tmp_path, cifar_set):
    batches = cifar_set.write(tmp_path / "cifar10")
    path = batches / "data_batch_3"
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(DataError) as error:
        load_arrays(cifar_config(tmp_path))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_foreign_pickles_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return open, (str(marker), "w")

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(DataError, match=r"references \S*open, which"):
        cifar.read_batch(path)
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [
    ({b"labels": [1]}, "lacks b'data'"),
    ({b"data": np.zeros((1, 3072), np.float32), b"labels": [1]}, "uint8 rows of 3072"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "2 images but 1 labels"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, "labels outside 0..9"),
    ([1, 2, 3], "not the dict"),
])
def test_malformed_batches(tmp_path, content, match):
    path = tmp_path / "data_batch_1"
    path.write_bytes(official_pickle(content))
    with pytest.raises(DataError, match=match) as error:
        cifar.read_batch(path)
    assert str(path) in str(error.value)


def test_meta_must_name_every_class(tmp_path, cifar_set):
    batches = cifar_set.write(tmp_path / "cifar10")
    (batches / "batches.meta").write_bytes(official_pickle({b"label_names": [b"a", b"b"]}))
    with pytest.raises(DataError, match="batches.meta lists 2 class names"):
        load_arrays(cifar_config(tmp_path))


def test_missing_batches_without_download(tmp_path, cifar_set):
    batches = cifar_set.write(tmp_path / "cifar10")
    (batches / "test_batch").unlink()
    with pytest.raises(DataError) as error:
        load_arrays(cifar_config(tmp_path))
    message = str(error.value)
    assert "cifar-10-batches-py/test_batch" in message and "cifar-10-python.tar.gz" in message
    assert "data_batch_1" not in message and str(tmp_path / "cifar10") in message


def test_archive_put_by_hand_is_checked_and_unpacked(tmp_path, cifar_set):
    archive = cifar_set.archive()
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / "cifar-10-python.tar.gz").write_bytes(archive)
    with pytest.raises(DataError, match="has md5"):
        load_arrays(cifar_config(tmp_path, files={"cifar-10-python.tar.gz": "0" * 32}))
    train_images, *_ = load_arrays(cifar_config(tmp_path, files={"cifar-10-python.tar.gz": md5(archive)}))
    np.testing.assert_array_equal(train_images.numpy(), cifar_set.train_images)
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_unpacking_replaces_an_incomplete_folder(tmp_path, cifar_set):
    folder = tmp_path / "cifar10"
    batches = make_cifar_set(seed=5).write(folder)
    (batches / "data_batch_5").unlink()
    (folder / "cifar-10-python.tar.gz").write_bytes(cifar_set.archive())
    train_images, *_ = load_arrays(cifar_config(tmp_path))
    np.testing.assert_array_equal(train_images.numpy(), cifar_set.train_images)
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


@pytest.mark.parametrize("member", ["../escaped", "/tmp/sparsebench-absolute", "cifar-10-batches-py/link"])
def test_unsafe_archives_are_refused(tmp_path, cifar_set, member):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in cifar_set.files().items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(member)
        if member.endswith("link"):
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    folder = tmp_path / "root" / "cifar10"
    folder.mkdir(parents=True)
    (folder / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="unsafe entry"):
        load_arrays(cifar_config(tmp_path / "root"))
    assert not (tmp_path / "root" / "escaped").exists() and not (folder / "cifar-10-batches-py").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-python.tar.gz"]  # no temporary folder left


def test_archive_without_the_batches_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("something/else")
        info.size = 0
        tar.addfile(info, io.BytesIO(b""))
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="does not hold cifar-10-batches-py"):
        load_arrays(cifar_config(tmp_path))
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-python.tar.gz"]
