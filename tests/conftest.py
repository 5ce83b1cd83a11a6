"""Shared fixtures: configs composed from the real conf/ with Hydra's Compose API, shrunk to seconds."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
import torch

from sparsebench.configure import validate
from sparsebench.schemas import RunConfig
from sparsebench.sweep import compose, hydra_configs

# One thread for torch, here and in the commands the tests start as processes (unless OMP_NUM_THREADS is
# set): every network here is tiny, so a second thread buys nothing, and on a shared 2-core host OpenMP's
# threads wait on each other. With another job on the host, three test files took 3.6x as long at 2
# threads as at 1 (172-180 s against 50). Tests of the DropConnect kernel's split across threads set
# their own count.
torch.set_num_threads(int(os.environ.setdefault("OMP_NUM_THREADS", "1")))


def pytest_xdist_auto_num_workers(config) -> int | None:
    """No worker processes where system tests are selected (``-m system``, ``-m ''``), which ``-n logical``
    in pyproject.toml would spread too: they start commands as processes, signal them and wait with
    timeouts, and two side by side on 2 cores race their own clocks. The fast lane (``-m 'not system'``,
    the default) takes xdist's own count."""
    return None if "not system" in (config.getoption("markexpr") or "") else 0


REPO = Path(__file__).resolve().parents[1]
# The real MNIST files: under $SPARSEBENCH_DATA (the runner's own default place) when set, else beside the clone.
MNIST = (Path(os.environ["SPARSEBENCH_DATA"]) if os.environ.get("SPARSEBENCH_DATA") else REPO.parent / "shared" / "data") \
    / "mnist"

# What every test run shrinks to, on top of the overrides a test names: the embedded data set,
# a small MLP, one epoch, no noise or pruning (tests of those turn them back on).
TINY = [
    "dataset=embedded", "dataset.train_subset=1000", "dataset.test_subset=500",
    "model.hidden=[64,64]", "train.epochs=1", "train.batch_size=100",
    "eval.noise=[]", "prune=none", "eval.train_mode_passes=0", "progress=off", "device=cpu",
]


def call_command(main: Callable, *argv: str) -> int:
    """The exit status of a command (``sparsebench.cli.main`` and the like) run in this process on ``argv``,
    as its console script runs it: the arguments in ``sys.argv``, the status returned or passed to
    ``sys.exit``. For what needs no process of its own (bad input refused in one line); capture its
    output with ``capsys``."""
    with mock.patch.object(sys, "argv", [main.__module__, *argv]):
        try:
            status = main()
        except SystemExit as exit:
            status = exit.code
    return 0 if status is None else status if isinstance(status, int) else 1


def compose_config(overrides: list[str]):
    with hydra_configs():
        return compose(overrides)


@pytest.fixture
def make_config(tmp_path):
    """make_config(*overrides) -> a validated RunConfig, tiny, writing under tmp_path."""

    def make(*overrides: str, tiny: bool = True) -> RunConfig:
        base = TINY if tiny else ["progress=off", "device=cpu"]
        return validate(compose_config([*base, f"results_dir={tmp_path / 'results'}", *overrides]))

    return make


@pytest.fixture
def mnist_dir() -> Path:
    if not (MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST files not found in {MNIST}")
    return MNIST


@pytest.fixture
def figures_not_rendered(monkeypatch) -> None:
    """Every figure is built but no file is rendered from it (``save_figure`` returns no path, as for a
    figure without data), for tests of what a report counts and says rather than what it draws: rendering
    PNG and PDF is most of a report's time (tests of the figures render them)."""
    from sparsebench.report import plots

    monkeypatch.setattr(plots, "save_figure", lambda *args, **kwargs: [])
