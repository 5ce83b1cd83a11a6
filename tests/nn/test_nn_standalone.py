"""sparsebench.nn ships alone: importing it loads torch, the standard library and itself, no part of the app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NN_MODULES = {"sparsebench", "sparsebench.nn", "sparsebench.nn.dropconnect", "sparsebench.nn.dropout",
              "sparsebench.nn.kwinners", "sparsebench.nn.masks", "sparsebench.nn.sparse_weights",
              "sparsebench.nn.sparseout"}

# In a fresh interpreter: torch first, then sparsebench.nn; what the second import adds, by top-level package.
PROBE = """
import json, sys
import torch
before = set(sys.modules)
import sparsebench.nn
added = set(sys.modules) - before
print(json.dumps({"sparsebench": sorted(m for m in sys.modules if m.split(".")[0] == "sparsebench"),
                  "others": sorted({m.split(".")[0] for m in added} - {"sparsebench"})}))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_sparsebench_nn_loads_no_module_of_the_app(probe):
    assert set(probe["sparsebench"]) == NN_MODULES


def test_sparsebench_nn_needs_only_torch_and_the_standard_library(probe):
    # (omegaconf, hydra, scipy or pandas, which the app uses, would show here)
    assert [name for name in probe["others"] if name not in sys.stdlib_module_names] == []
