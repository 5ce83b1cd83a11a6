"""The commands of README and its docs pages work as written: every ``sparsebench`` and
``sparsebench-claims`` line of their bash blocks is checked as the command would check it before any
work (``sparsebench``: every job composed and validated; ``sparsebench-claims``: planned with
``run=false``), with the placeholder data folder replaced by the real MNIST files. Lines that need
what only a user has (their own files, a config folder, a cluster) are left out, by a rule written
below, not by hand."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sparsebench.claims import cli as claims_cli
from sparsebench.cli import preflight

pytestmark = pytest.mark.system  # the claims lines plan whole profiles (about a minute in all)

README = Path(__file__).resolve().parents[1] / "README.md"
# README's tour sends the long material to pages under docs/, whose commands must work as written too.
PAGES = [README, *sorted((README.parent / "docs").glob("*.md"))]
# A user's own files or folders, a cluster's scheduler, or "..." for "the rest as above".
NEEDS_THE_USER = re.compile(r"/path/to/yours|--config-dir|hydra/launcher=(slurm|ray)|\.\.\.|hydra\.launcher\.ray")


def readme_commands(program: str) -> list[list[str]]:
    """The arguments of each ``program`` line in the bash blocks of README and its docs pages
    (continuation lines joined, comments dropped), placeholders as written."""
    blocks = [block for page in PAGES for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S)]
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    commands = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words and words[0] == program and not NEEDS_THE_USER.search(line):
            commands.append(words[1:])
    return commands


def with_data(args: list[str], mnist: Path, results: Path) -> list[str]:
    return [f"dataset.root={mnist}" if a == "dataset.root=/path/to/mnist" else a for a in args] + \
        [f"results_dir={results}"]


def test_readme_has_the_commands_this_test_reads():
    # By count from README and docs/*.md as written: the run, sweep, continual and launcher lines; the
    # profiles' lines.
    assert len(readme_commands("sparsebench")) >= 6
    assert len(readme_commands("sparsebench-claims")) >= 5


@pytest.fixture(autouse=True)
def data_where_readme_looks(mnist_dir, monkeypatch):
    # README's lines without dataset.root read the default folder; a fresh machine (CI) has nothing in the
    # user cache, so point the default at the real files, as README tells a user to.
    monkeypatch.setenv("SPARSEBENCH_DATA", str(mnist_dir.parent))


@pytest.mark.parametrize("args", readme_commands("sparsebench"), ids=" ".join)
def test_a_readme_sparsebench_line_composes_and_validates(args, mnist_dir, tmp_path):
    multirun = args[:1] == ["-m"]
    given = with_data(args[1:] if multirun else args, mnist_dir, tmp_path)
    assert preflight(given, multirun=multirun) >= 1


@pytest.mark.parametrize("args", readme_commands("sparsebench-claims"), ids=" ".join)
def test_a_readme_claims_line_plans(args, mnist_dir, tmp_path, capsys):
    status = claims_cli.main([*with_data(args, mnist_dir, tmp_path), "run=false"])
    out, err = capsys.readouterr()
    # run=false reports claims not run (exit 1 when some are); a bad line would stop before the report.
    assert status in (0, 1) and "report:" in out + err, err[-500:]


def test_plain_pytest_collects_from_the_checkout_root(tmp_path):
    # README's fast lane is plain `pytest` (the console script, not `python -m pytest`, which puts the
    # working folder on the path by itself): every test module must import, ``tests.conftest`` included.
    script = Path(sys.executable).with_name("pytest")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(script), "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=README.parent,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "error" not in done.stdout.splitlines()[-1]
