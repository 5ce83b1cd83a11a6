"""check_content: files that are not the data set the config names are refused; the official arrays pass."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

from sparsebench.data.identity import array_digest, check_content
from sparsebench.errors import DataError
from sparsebench.schemas import DatasetConfig


def _arrays(seed: int = 0):
    generator = np.random.default_rng(seed)
    # Pixels uniform on 0..255: mean 0.5 and std sqrt((256**2 - 1) / 12) / 255 = 0.2898 on the [0, 1] scale.
    train = torch.from_numpy(generator.integers(0, 256, size=(4000, 1, 8, 8), dtype=np.uint8))
    test = torch.from_numpy(generator.integers(0, 256, size=(500, 1, 8, 8), dtype=np.uint8))
    return train, torch.zeros(4000, dtype=torch.int64), test, torch.zeros(500, dtype=torch.int64)


def _config(**changes) -> DatasetConfig:
    fields = dict(name="uniform", format="idx", shape=[1, 8, 8], mean=[0.5], std=[0.2898], train_count=4000,
                  test_count=500)
    return DatasetConfig(**{**fields, **changes})


def test_pixel_statistics_far_from_the_config_are_refused():
    arrays = _arrays()
    digest = array_digest(arrays)
    check_content(_config(), digest, arrays, pathlib.Path("here"))  # 0.5 and 0.2898, within 0.01
    with pytest.raises(DataError, match=r"have pixel mean \[0\.49\d\d\] and std \[0\.2\d{3}\], but uniform has mean "
                                        r"\[0\.1307\] and std \[0\.3081\]"):
        check_content(_config(mean=[0.1307], std=[0.3081]), digest, arrays, pathlib.Path("here"))


def test_the_official_arrays_are_checked_against_the_shipped_statistics_without_computing_them(monkeypatch):
    from sparsebench.data import identity

    arrays = _arrays()
    digest = array_digest(arrays)
    shipped = {"name": "uniform", "digest": digest, "mean": [0.5], "std": [0.2898]}
    monkeypatch.setattr(identity, "known_data_sets", lambda: {"uniform": shipped})
    monkeypatch.setattr(identity, "_stats", lambda images: pytest.fail("the official arrays' statistics recomputed"))
    check_content(_config(digest=digest), digest, arrays, pathlib.Path("here"))
    with pytest.raises(DataError, match=r"^dataset.mean=\[0\.1307\] and dataset.std=\[0\.3081\] are not the pixel "
                                        r"statistics of the official uniform files in here \(mean \[0\.5000\], std "
                                        r"\[0\.2898\]\); leave them at uniform's values$"):
        check_content(_config(mean=[0.1307], std=[0.3081], digest=digest), digest, arrays, pathlib.Path("here"))
    with pytest.raises(DataError, match="does not hold the official uniform data"):
        check_content(_config(digest=digest), array_digest(_arrays(seed=1)), _arrays(seed=1), pathlib.Path("here"))
