"""Where data_folder looks: dataset.root (the files' own folder, or a parent holding <folder>/),
else $SPARSEBENCH_DATA/<folder>, else the user cache folder."""

from __future__ import annotations

import pathlib

import pytest

from sparsebench.data.files import data_folder
from sparsebench.schemas import DatasetConfig


def config(root=None, folder="mnist") -> DatasetConfig:
    return DatasetConfig(name="mnist", format="idx", root=root, folder=folder)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPARSEBENCH_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return monkeypatch


def test_root_is_the_folder_of_the_files_and_wins(clean_env, tmp_path):
    clean_env.setenv("SPARSEBENCH_DATA", str(tmp_path / "env"))
    assert data_folder(config(str(tmp_path / "given"))) == tmp_path / "given"
    assert data_folder(config("~/datasets")) == tmp_path / "home" / "datasets"


def test_root_may_be_a_parent_holding_the_data_sets_folder(clean_env, tmp_path):
    (tmp_path / "parent" / "mnist").mkdir(parents=True)
    assert data_folder(config(str(tmp_path / "parent"))) == tmp_path / "parent" / "mnist"


def test_environment_variable_then_cache(clean_env, tmp_path):
    clean_env.setenv("SPARSEBENCH_DATA", str(tmp_path / "env"))
    assert data_folder(config()) == tmp_path / "env" / "mnist"
    clean_env.delenv("SPARSEBENCH_DATA")
    assert data_folder(config()) == tmp_path / "home" / ".cache" / "sparsebench" / "mnist"
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_folder(config()) == tmp_path / "xdg" / "sparsebench" / "mnist"


def test_empty_folder_means_the_root_itself(clean_env, tmp_path):
    assert data_folder(config(str(tmp_path), folder="")) == tmp_path


def test_relative_root_is_made_absolute(clean_env, tmp_path):
    clean_env.chdir(tmp_path)
    folder = data_folder(config("data"))
    assert folder.is_absolute() and folder == pathlib.Path(tmp_path) / "data"
