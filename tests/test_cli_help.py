"""What the three commands say about themselves (--version, --help) and two command lines the docs
give: a search space without a sweeper that searches (docs/sweeps.md), and data of your own in MNIST's
format (README)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import tomllib

from sparsebench.claims.cli import main as claims_main
from sparsebench.cli import main as sparsebench_main
from sparsebench.data import idx
from sparsebench.report.cli import main as report_main
from tests.conftest import REPO, TINY, call_command

COMMANDS = {"sparsebench": sparsebench_main, "sparsebench-claims": claims_main, "sparsebench-report": report_main}


@pytest.mark.parametrize("prog", COMMANDS)
def test_version_names_the_command_and_the_version_of_pyproject(prog, capsys):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    import torch

    assert call_command(COMMANDS[prog], "--version") == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{prog} {version} (Python {sys.version_info[0]}.{sys.version_info[1]}.")
    assert f"torch {torch.__version__}" in line


@pytest.mark.parametrize("prog", ["sparsebench-claims", "sparsebench-report"])
def test_help_is_plain_text(prog, capsys):
    """No reST markup (``x``) and no argparse escaping (95%%) in what --help prints."""
    assert call_command(COMMANDS[prog], "--help") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{prog} [" if prog == "sparsebench-report" else f"{prog}: run what the claims need")
    assert "`" not in out and "%%" not in out


def test_a_search_space_without_a_searching_sweeper_is_refused_in_one_line(capsys):
    """Hydra's basic sweeper cannot sample interval(...): one line naming the value and the fix, not
    Hydra's traceback from inside the sweep."""
    status = call_command(sparsebench_main, "-m", "regularizer=dropout", "regularizer.p=interval(0.1,0.7)", *TINY)
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().splitlines() == [
        "sparsebench: error: regularizer.p=interval(0.1,0.7) is a search space, which Hydra's basic sweeper cannot "
        "run (it runs lists of values: regularizer.p=0.1,0.3,0.5): add hydra/sweeper=optuna to search it "
        "(pip install 'sparsebench[tune]')"]


def test_data_of_your_own_runs_with_the_checks_of_mnist_cleared(tmp_path, capsys):
    """README's recipe: IDX files of your own under MNIST's names, with MNIST's content checks (content
    digest, decompressed md5s, image counts) cleared and your own pixel statistics. The run completes, on
    all of those images, and its record holds the images' digest, not MNIST's."""
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
    for name, array in [("train-images-idx3-ubyte.gz", train), ("t10k-images-idx3-ubyte.gz", test),
                        ("train-labels-idx1-ubyte.gz", rng.integers(0, 10, 300, dtype=np.uint8)),
                        ("t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 100, dtype=np.uint8))]:
        idx.write(tmp_path / name, array)
    mean, std = float(train.mean() / 255), float(train.std() / 255)
    own = ["dataset=mnist", f"dataset.root={tmp_path}", "dataset.digest=null", "dataset.content_md5=null",
           "dataset.train_count=null", "dataset.test_count=null", f"dataset.mean=[{mean}]", f"dataset.std=[{std}]"]
    tiny = [o for o in TINY if not o.startswith(("dataset=", "dataset.train_subset", "dataset.test_subset"))]
    status = call_command(sparsebench_main, *own, *tiny, f"results_dir={tmp_path / 'results'}")
    assert status == 0, capsys.readouterr().err
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/*/result.json")]
    assert record["status"] == "completed" and record["config"]["dataset"]["content_md5"] == {}
    assert (record["data"]["train_images"], record["data"]["test_images"]) == (300, 100)
    assert record["data"]["digest"] != "11de40ec28a7c150"  # MNIST's
