"""The scripts in examples/ run as written (each on a small share of the data), and what the package
ships beside the code: py.typed, the licences, layer reprs without float32 noise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sparsebench.runner import run
from tests.conftest import REPO


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_layers_example_trains_both_networks_past_chance(capsys):
    """Two epochs on 2,000 images: each network well above chance (10%) on the 1,000 test images."""
    scores = example("layers_in_a_plain_loop").main(["--epochs", "2", "--train", "2000"])
    assert set(scores) == {"sparse (SparseWeights + KWinners)", "dropout"}
    assert all(score > 40 for score in scores.values()), scores
    out = capsys.readouterr().out
    assert "KWinners(n=256, percent_on=0.1, boost_strength=0.81," in out  # 1.0 decayed twice by 0.9


def test_the_load_a_run_example_scores_the_record(make_config, capsys):
    cfg = make_config()
    outcome = run(cfg)
    accuracy = example("load_a_run").main([str(outcome.path)])
    record = __import__("json").loads((outcome.path / "result.json").read_text())
    assert accuracy == pytest.approx(record["metrics"]["test"]["accuracy"], abs=1e-4)
    assert f"test accuracy {accuracy:.2f}% (the record says" in capsys.readouterr().out


def test_a_kwinners_repr_shows_its_boost_strength_as_given():
    """boost_strength is held in a float32 buffer (1.4 is 1.39999997615814... there): shown to six digits."""
    from sparsebench.nn import KWinners, KWinners2d

    assert "boost_strength=1.4," in repr(KWinners(n=100, percent_on=0.1, boost_strength=1.4))
    assert "boost_strength=0.3," in repr(KWinners2d(channels=4, percent_on=0.25, boost_strength=0.3))


@pytest.mark.system
def test_the_wheel_ships_the_type_marker_and_the_licences(tmp_path):
    """The built wheel holds py.typed (PEP 561), the code's LICENSE and the embedded data's README, which
    gives the MNIST subset's licence (CC BY-SA 3.0)."""
    pytest.importorskip("setuptools")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = tmp_path.glob("sparsebench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sparsebench/py.typed" in names
    [license_file] = [n for n in names if n.endswith("LICENSE")]
    text = zipfile.ZipFile(wheel).read(license_file).decode()
    assert text.startswith("MIT License") and "CC BY-SA 3.0" in text
    readme = zipfile.ZipFile(wheel).read("sparsebench/data/embedded/README.md").decode()
    assert "CC BY-SA 3.0" in readme
    assert Path(REPO / "LICENSE").read_text() == text
