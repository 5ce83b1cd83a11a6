"""Helpers of the data tests: data set files written in their official formats, and a local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pathlib
import pickle
import struct
import tarfile
from dataclasses import dataclass, field

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
CONF = REPO / "conf"

IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- IDX -----------------------------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    """IDX bytes written by hand from the format's description (independent of sparsebench's writer)."""
    magic = 0x00000800 | array.ndim  # two zero bytes, 0x08 (unsigned byte), number of dimensions
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", size) for size in array.shape) + array.tobytes()


@dataclass
class IdxSet:
    """A small MNIST-like data set: arrays and the file bytes as written (gzip) and decompressed."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    raw: dict[str, bytes] = field(default_factory=dict)  # stem -> IDX bytes

    def gz(self, stem: str) -> bytes:
        return gzip.compress(self.raw[stem], mtime=0)

    def files_md5(self) -> dict[str, str]:
        return {f"{stem}.gz": md5(self.gz(stem)) for stem in IDX_STEMS}

    def content_md5(self) -> dict[str, str]:
        return {f"{stem}.gz": md5(self.raw[stem]) for stem in IDX_STEMS}

    def write(self, folder: pathlib.Path, compressed: bool | dict[str, bool] = True,
              only: tuple[str, ...] = IDX_STEMS) -> pathlib.Path:
        folder.mkdir(parents=True, exist_ok=True)
        for stem in only:
            packed = compressed if isinstance(compressed, bool) else compressed[stem]
            if packed:
                (folder / f"{stem}.gz").write_bytes(self.gz(stem))
            else:
                (folder / stem).write_bytes(self.raw[stem])
        return folder


def make_idx_set(train: int = 30, test: int = 10, size: int = 6, seed: int = 0) -> IdxSet:
    rng = np.random.default_rng(seed)
    arrays = dict(
        train_images=rng.integers(0, 256, (train, size, size), dtype=np.uint8),
        train_labels=(np.arange(train) % 10).astype(np.uint8),
        test_images=rng.integers(0, 256, (test, size, size), dtype=np.uint8),
        test_labels=(np.arange(test)[::-1] % 10).astype(np.uint8),
    )
    data = IdxSet(**arrays)
    for stem, key in zip(IDX_STEMS, arrays):
        data.raw[stem] = idx_bytes(arrays[key])
    return data


# --- CIFAR-10 ------------------------------------------------------------------------------------------------------

def cifar_rows(images: np.ndarray) -> np.ndarray:
    """N x 3 x 32 x 32 -> N x 3072 as the official files hold them: 1024 red, 1024 green, 1024 blue values,
    each plane row by row."""
    n = len(images)
    return np.concatenate([images[:, 0].reshape(n, 1024), images[:, 1].reshape(n, 1024),
                           images[:, 2].reshape(n, 1024)], axis=1)


def official_pickle(content: dict) -> bytes:
    """A pickle like the official (Python 2, numpy 1) files: protocol 2, numpy.core module names."""
    return pickle.dumps(content, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


@dataclass
class CifarSet:
    batches: list[tuple[np.ndarray, np.ndarray]]  # data_batch_1..5, then test_batch: (images N x 3 x 32 x 32, labels)

    @property
    def train_images(self) -> np.ndarray:
        return np.concatenate([images for images, _ in self.batches[:5]])

    @property
    def train_labels(self) -> np.ndarray:
        return np.concatenate([labels for _, labels in self.batches[:5]])

    def files(self) -> dict[str, bytes]:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        out = {}
        for name, (images, labels) in zip(names, self.batches):
            out[name] = official_pickle({b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
                                         b"data": cifar_rows(images),
                                         b"filenames": [f"img{i}.png".encode() for i in range(len(labels))]})
        out["batches.meta"] = official_pickle({
            b"num_cases_per_batch": 10000, b"num_vis": 3072,
            b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
                             b"ship", b"truck"]})
        return out

    def write(self, folder: pathlib.Path) -> pathlib.Path:
        batches = folder / "cifar-10-batches-py"
        batches.mkdir(parents=True, exist_ok=True)
        for name, data in self.files().items():
            (batches / name).write_bytes(data)
        return batches

    def archive(self, extra: dict[str, bytes] | None = None) -> bytes:
        """cifar-10-python.tar.gz bytes: the batch folder (plus ``extra`` members by name)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            members = {f"cifar-10-batches-py/{name}": data for name, data in self.files().items()}
            members["cifar-10-batches-py/readme.html"] = b"<html></html>"
            members.update(extra or {})
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def make_cifar_set(sizes: tuple[int, ...] = (4, 3, 2, 3, 4, 5), seed: int = 0) -> CifarSet:
    rng = np.random.default_rng(seed)
    batches = []
    for index, n in enumerate(sizes):
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = (np.arange(n) + index) % 10
        batches.append((images, labels))
    return CifarSet(batches)


# --- a local HTTP server -------------------------------------------------------------------------------------------

class RequestHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the server's folder; ``/cut/<name>`` announces the full length but sends half and hangs up;
    ``/hang/<name>`` answers nothing until the test ends."""

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.path.startswith("/cut/"):
            body = (self.server.root / self.path[len("/cut/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/hang/"):
            self.server.release.wait(10)
            return
        super().do_GET()
