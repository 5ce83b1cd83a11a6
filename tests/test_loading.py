"""sparsebench.load_run: a finished run back as its config, record and trained network."""

from __future__ import annotations

import json

import pytest
import torch

import sparsebench
from sparsebench.data import load_splits
from sparsebench.errors import SparsebenchError
from sparsebench.runner import run


def plain_accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std) -> float:
    """Percent of ``images`` (uint8, N x C x H x W) classified right, normalised by hand as the data set's
    config says ((x / 255 - mean) / std per channel), 100 at a time."""
    mean = torch.tensor(mean).view(-1, 1, 1)
    std = torch.tensor(std).view(-1, 1, 1)
    right = 0
    with torch.no_grad():
        for start in range(0, len(labels), 100):
            x = (images[start:start + 100].float() / 255 - mean) / std
            right += (model(x).argmax(dim=1) == labels[start:start + 100]).sum().item()
    return 100.0 * right / len(labels)


def test_a_loaded_run_scores_the_test_accuracy_of_its_record(make_config):
    """A one-epoch dropout MLP trained, loaded back from its folder: in eval mode, with the weights whose
    test accuracy the record holds (the record's number, computed again here with a plain loop)."""
    cfg = make_config("regularizer=dropout", "regularizer.p=0.3")
    outcome = run(cfg)
    assert outcome.status == "completed"
    loaded = sparsebench.load_run(outcome.path)
    assert not loaded.model.training
    assert loaded.config == cfg
    assert loaded.record.metrics == json.loads((outcome.path / "result.json").read_text())["metrics"]
    test = load_splits(cfg.dataset, torch.device("cpu")).test
    accuracy = plain_accuracy(loaded.model, test.images, test.labels, cfg.dataset.mean, cfg.dataset.std)
    assert accuracy == pytest.approx(loaded.record.metrics["test"]["accuracy"], abs=1e-9)
    assert 20 < accuracy < 100  # trained: far from chance (10%) on the embedded digits


def test_a_folder_without_a_completed_run_is_refused_in_one_line(tmp_path):
    with pytest.raises(SparsebenchError, match=r"no run to load \(no record\); give the folder of a completed run"):
        sparsebench.load_run(tmp_path)
