"""The dataset configs as users compose them, the real MNIST files (when present) and the embedded subset."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest
import torch
from data_helpers import CONF, IDX_STEMS, REPO, SHARED_MNIST
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from sparsebench.data.files import load_arrays
from sparsebench.schemas import DatasetConfig

PACKAGE = REPO / "sparsebench"
EMBEDDED = PACKAGE / "data" / "embedded"
needs_mnist = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not found at {SHARED_MNIST}")

# ../shared/data/README.md
MNIST_CONTENT_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def compose_dataset(name: str, *overrides: str) -> DatasetConfig:
    """conf/dataset/<name>.yaml composed by Hydra against its schema, as a DatasetConfig."""
    ConfigStore.instance().store(group="schema/dataset", name="dataset", node=DatasetConfig)
    if not OmegaConf.has_resolver("package_dir"):  # registered by sparsebench's CLI in real runs
        OmegaConf.register_new_resolver("package_dir", lambda path: str(PACKAGE / path))
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(overrides=[f"+dataset={name}", *(f"dataset.{override}" for override in overrides)])
    return OmegaConf.to_object(cfg.dataset)


def pixel_statistics(images: torch.Tensor) -> tuple[float, float]:
    """Mean and std on the [0, 1] scale, exactly, from the histogram of the 256 byte values."""
    counts = np.bincount(images.numpy().ravel(), minlength=256).astype(np.float64)
    values = np.arange(256) / 255.0
    mean = (counts * values).sum() / counts.sum()
    return mean, np.sqrt((counts * values**2).sum() / counts.sum() - mean**2)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "embedded"])
def test_dataset_configs_compose_against_the_schema(name, monkeypatch):
    monkeypatch.delenv("SPARSEBENCH_DATA", raising=False)
    cfg = compose_dataset(name)
    assert isinstance(cfg, DatasetConfig) and cfg.name == name
    assert (cfg.root is None) == (name != "embedded")
    if cfg.download:
        assert cfg.mirrors and all(url.startswith(("http://", "https://")) for url in cfg.mirrors)
        assert cfg.files and all(len(value) == 32 for value in cfg.files.values())
    if cfg.format == "idx":
        assert set(cfg.content_md5) <= {f"{stem}.gz" for stem in IDX_STEMS}


def test_mnist_config_lists_the_official_checksums():
    cfg = compose_dataset("mnist")
    assert cfg.content_md5 == MNIST_CONTENT_MD5
    assert cfg.files["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert cfg.mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert (cfg.mean, cfg.std) == ([0.1307], [0.3081])


@pytest.fixture(scope="module")
def real_mnist():
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    return load_arrays(compose_dataset("mnist", f"root={SHARED_MNIST.parent}", "download=false"))


@needs_mnist
def test_real_mnist_loads_with_its_known_statistics(real_mnist):
    train_images, train_labels, test_images, test_labels = real_mnist
    assert train_images.shape == (60000, 1, 28, 28) and train_images.dtype == torch.uint8
    assert test_images.shape == (10000, 1, 28, 28)
    assert train_labels.dtype == torch.int64
    assert torch.bincount(train_labels).tolist() == TRAIN_COUNTS
    assert torch.bincount(test_labels).tolist() == TEST_COUNTS
    mean, std = pixel_statistics(train_images)
    assert mean == pytest.approx(0.1307, abs=5e-5) and std == pytest.approx(0.3081, abs=5e-5)


def test_embedded_subset_loads_balanced():
    train_images, train_labels, test_images, test_labels = load_arrays(compose_dataset("embedded"))
    assert train_images.shape == (5000, 1, 28, 28) and test_images.shape == (1000, 1, 28, 28)
    assert torch.bincount(train_labels).tolist() == [500] * 10
    assert torch.bincount(test_labels).tolist() == [100] * 10
    mean, std = pixel_statistics(train_images)
    assert mean == pytest.approx(0.1307, abs=0.01) and std == pytest.approx(0.3081, abs=0.01)
    assert sum(path.stat().st_size for path in EMBEDDED.glob("*.gz")) < 1_500_000


@needs_mnist
def test_embedded_subset_is_remade_identically_from_real_mnist(tmp_path):
    script = REPO / "scripts" / "make_embedded_subset.py"
    subprocess.run([sys.executable, str(script), "--source", str(SHARED_MNIST), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for stem in IDX_STEMS:
        remade, shipped = tmp_path / f"{stem}.gz", EMBEDDED / f"{stem}.gz"
        assert gzip.decompress(remade.read_bytes()) == gzip.decompress(shipped.read_bytes()), stem
        assert remade.read_bytes()[4:8] == b"\x00\x00\x00\x00"  # gzip time stamp: none


@needs_mnist
def test_embedded_images_come_from_real_mnist(real_mnist):
    train_images, train_labels, _, _ = real_mnist
    subset_images, subset_labels, _, _ = load_arrays(compose_dataset("embedded"))
    real, subset = train_images.reshape(60000, -1).numpy(), subset_images.reshape(5000, -1).numpy()
    # Find each subset image in the real training set by a random linear key of its bytes, then compare bytes.
    weights = np.random.default_rng(0).integers(1, 2**31, 784)
    real_keys, subset_keys = real.astype(np.int64) @ weights, subset.astype(np.int64) @ weights
    order = np.argsort(real_keys)
    where = order[np.searchsorted(real_keys[order], subset_keys).clip(max=59999)]
    np.testing.assert_array_equal(real[where], subset)
    np.testing.assert_array_equal(train_labels.numpy()[where], subset_labels.numpy())
    assert len(np.unique(where)) == 5000  # 5,000 different images
