"""Downloads against a local HTTP server on 127.0.0.1 serving files the tests write."""

from __future__ import annotations

import pathlib
import urllib.request

import numpy as np
import pytest
from data_helpers import IDX_STEMS, md5

from sparsebench.data import download
from sparsebench.data.files import load_arrays
from sparsebench.errors import DataError
from sparsebench.schemas import DatasetConfig

NAMES = [f"{stem}.gz" for stem in IDX_STEMS]


def idx_config(root: pathlib.Path, mirrors: list[str], files: dict[str, str], **overrides) -> DatasetConfig:
    """Files go to ``root``/tiny: the folder named as dataset.root, the way a user points at a data set's folder."""
    values = dict(name="tiny", format="idx", root=str(root / "tiny"), folder="tiny", download=True, mirrors=mirrors,
                  files=files, shape=[1, 6, 6])
    values.update(overrides)
    return DatasetConfig(**values)


def leftovers(folder: pathlib.Path) -> list[str]:
    """Files that are neither a complete data file nor absent: part files, temporary folders."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part") or p.name.startswith("."))


def test_downloads_verifies_and_loads(tmp_path, http_server, idx_set):
    idx_set.write(http_server.root)
    cfg = idx_config(tmp_path / "data", [http_server.url], idx_set.files_md5(), content_md5=idx_set.content_md5())
    train_images, train_labels, _, test_labels = load_arrays(cfg)
    np.testing.assert_array_equal(train_images[:, 0].numpy(), idx_set.train_images)
    np.testing.assert_array_equal(test_labels.numpy(), idx_set.test_labels)
    folder = tmp_path / "data" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)
    assert all(md5((folder / name).read_bytes()) == idx_set.files_md5()[name] for name in NAMES)
    assert sorted(http_server.requests) == sorted(f"/{name}" for name in NAMES)

    load_arrays(cfg)  # the files are there now: nothing is downloaded again
    assert len(http_server.requests) == 4


def test_downloads_only_the_missing_files(tmp_path, http_server, idx_set):
    idx_set.write(http_server.root)
    idx_set.write(tmp_path / "data" / "tiny", compressed=False, only=IDX_STEMS[:3])  # raw names count as present
    load_arrays(idx_config(tmp_path / "data", [http_server.url], idx_set.files_md5()))
    assert http_server.requests == ["/t10k-labels-idx1-ubyte.gz"]


def test_missing_mirror_falls_through_to_the_next(tmp_path, http_server, idx_set):
    idx_set.write(http_server.root)
    mirrors = [http_server.url + "nowhere/", http_server.url]
    load_arrays(idx_config(tmp_path / "data", mirrors, idx_set.files_md5()))
    assert http_server.requests[:2] == ["/nowhere/train-images-idx3-ubyte.gz", "/train-images-idx3-ubyte.gz"]
    assert leftovers(tmp_path / "data" / "tiny") == []


def test_wrong_content_is_deleted_and_the_next_mirror_tried(tmp_path, http_server, idx_set):
    idx_set.write(http_server.root / "good")
    (http_server.root / "bad").mkdir()
    for name in NAMES:
        (http_server.root / "bad" / name).write_bytes(b"not the file")
    load_arrays(idx_config(tmp_path / "data", [http_server.url + "bad/", http_server.url + "good/"],
                           idx_set.files_md5()))
    folder = tmp_path / "data" / "tiny"
    assert all(md5((folder / name).read_bytes()) == idx_set.files_md5()[name] for name in NAMES)
    assert leftovers(folder) == []


def test_md5_mismatch_is_an_error_and_leaves_nothing(tmp_path, http_server, idx_set):
    idx_set.write(http_server.root)
    files = idx_set.files_md5() | {"t10k-images-idx3-ubyte.gz": "0" * 32}
    with pytest.raises(DataError) as error:
        load_arrays(idx_config(tmp_path / "data", [http_server.url], files))
    message = str(error.value)
    assert "md5 mismatch" in message and "t10k-images-idx3-ubyte.gz" in message and "\n" not in message
    folder = tmp_path / "data" / "tiny"
    assert not (folder / "t10k-images-idx3-ubyte.gz").exists() and leftovers(folder) == []


def test_cut_off_download_leaves_no_complete_looking_file(tmp_path, http_server, idx_set):
    idx_set.write(http_server.root)
    with pytest.raises(DataError, match="incomplete") as error:
        load_arrays(idx_config(tmp_path / "data", [http_server.url + "cut/"], idx_set.files_md5()))
    assert all(name in str(error.value) for name in NAMES)  # the first one failed, so all four are missing
    folder = tmp_path / "data" / "tiny"
    assert list(folder.iterdir()) == []
    load_arrays(idx_config(tmp_path / "data", [http_server.url + "cut/", http_server.url], idx_set.files_md5()))


def test_interrupted_download_removes_its_part_file(tmp_path, http_server, idx_set, monkeypatch):
    idx_set.write(http_server.root)
    opened = urllib.request.urlopen

    class Interrupted:
        """A response that delivers one chunk, then the user presses Ctrl-C."""

        def __init__(self, response):
            self.response, self.chunks = response, 0
            self.headers = response.headers

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.response.close()

        def read(self, size):
            self.chunks += 1
            if self.chunks > 1:
                raise KeyboardInterrupt
            return self.response.read(10)

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: Interrupted(opened(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        load_arrays(idx_config(tmp_path / "data", [http_server.url], idx_set.files_md5()))
    assert list((tmp_path / "data" / "tiny").iterdir()) == []


def test_silent_mirror_times_out(tmp_path, http_server, idx_set, monkeypatch):
    monkeypatch.setattr(download, "TIMEOUT_S", 0.3)
    idx_set.write(http_server.root)
    with pytest.raises(DataError, match="timed out"):
        load_arrays(idx_config(tmp_path / "data", [http_server.url + "hang/"], idx_set.files_md5()))
    assert list((tmp_path / "data" / "tiny").iterdir()) == []


def check_missing_message(message: str, folder: pathlib.Path, missing: list[str]) -> None:
    assert "\n" not in message
    assert all(name in message for name in missing)
    assert str(folder) in message
    assert "dataset.root=" in message and "SPARSEBENCH_DATA" in message


def test_download_off_gives_one_line_naming_files_and_folder(tmp_path, idx_set):
    cfg = idx_config(tmp_path / "data", ["http://127.0.0.1:9/"], idx_set.files_md5(), download=False)
    with pytest.raises(DataError, match=r"dataset.download=false") as error:
        load_arrays(cfg)
    check_missing_message(str(error.value), tmp_path / "data" / "tiny", NAMES)


def test_unreachable_mirror_gives_one_line_naming_files_and_folder(tmp_path, idx_set, closed_port_url,
                                                                   monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with pytest.raises(DataError) as error:
        load_arrays(idx_config(tmp_path / "data", [closed_port_url], idx_set.files_md5()))
    message = str(error.value)
    check_missing_message(message, tmp_path / "data" / "tiny", NAMES)
    assert closed_port_url in message and "refused" in message.lower()


def test_no_md5_means_no_download(tmp_path, http_server, idx_set):
    idx_set.write(http_server.root)
    with pytest.raises(DataError, match="lists no md5"):
        load_arrays(idx_config(tmp_path / "data", [http_server.url], {}))
    assert http_server.requests == []


def test_cifar_archive_is_downloaded_and_unpacked(tmp_path, http_server, cifar_set):
    archive = cifar_set.archive()
    (http_server.root / "cifar-10-python.tar.gz").write_bytes(archive)
    cfg = DatasetConfig(name="cifar10", format="cifar10", root=str(tmp_path / "data" / "cifar10"), folder="cifar10",
                        mirrors=[http_server.url + "missing/", http_server.url],
                        files={"cifar-10-python.tar.gz": md5(archive)}, archive="cifar-10-python.tar.gz",
                        shape=[3, 32, 32], mean=[0.5] * 3, std=[0.25] * 3)
    train_images, train_labels, test_images, _ = load_arrays(cfg)
    np.testing.assert_array_equal(train_images.numpy(), cifar_set.train_images)
    np.testing.assert_array_equal(test_images.numpy(), cifar_set.batches[5][0])
    folder = tmp_path / "data" / "cifar10"
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    assert (folder / "cifar-10-batches-py" / "readme.html").is_file()

    wrong = DatasetConfig(**{**cfg.__dict__, "root": str(tmp_path / "other" / "cifar10"),
                             "files": {"cifar-10-python.tar.gz": "0" * 32}})
    with pytest.raises(DataError, match="md5 mismatch") as error:
        load_arrays(wrong)
    assert "cifar-10-batches-py/data_batch_1" in str(error.value)
    assert list((tmp_path / "other" / "cifar10").iterdir()) == []
