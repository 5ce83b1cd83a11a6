"""Each experiment folder's index of its runs, ``<results_dir>/<experiment>/runs.tsv``: which hash is which run.

Run folders are named by their hash, which records are reused by, so the names stay; the index says,
one row per run, what each is: its run id, status, seed and readable name (``records.naming``:
``regularizer=dropout,seed=1``), and when it was last written. A tab-separated file opens in a
spreadsheet, in pandas (``pandas.read_csv(path, sep="\\t")``), and reads with ``column -t``; a run's
folder is ``<experiment folder>/<run_id>``.

Chosen over a symbolic link per run (``dropout,seed=1 -> 2d242791c53f``): names built from overrides can
hold ``/`` and run long; runs of another version of the same overrides would fight over one link; and
no file of the results tree is opened through a link (``sparsebench.atomic``). Workers beside each other
update the index under the experiment's lock (``runs.tsv.lock``), each rewriting it whole and atomically,
so a reader never sees half a file and no row is lost. The index only helps people: nothing reads it to
decide anything, and a run missing from it (a record made before the index existed) is still a record.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
from pathlib import Path

from sparsebench.atomic import atomic_write_text, open_no_follow
from sparsebench.locking import exclusive

INDEX = "runs.tsv"
LOCK = "runs.tsv.lock"
COLUMNS = ("run_id", "status", "seed", "name", "written")


def read_index(experiment_dir: str | Path) -> dict[str, dict[str, str]]:
    """The index's rows by run id (empty when there is no index)."""
    path = Path(experiment_dir) / INDEX
    try:
        handle = open_no_follow(path, os.O_RDONLY)
    except FileNotFoundError:
        return {}
    with open(handle, newline="", encoding="utf-8") as stream:
        return {row["run_id"]: row for row in csv.DictReader(stream, delimiter="\t")}


def index_run(experiment_dir: str | Path, run_id: str, status: str, seed: int, name: str) -> None:
    """Add or update the run's row. A name that is only the run id (a run started with no overrides
    known, as through the Python API) does not replace a readable name written before."""
    folder = Path(experiment_dir)
    with exclusive(folder / LOCK, wait=True):
        rows = read_index(folder)
        earlier = rows.get(run_id, {}).get("name", "")
        if name == run_id and earlier:
            name = earlier
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        rows[run_id] = {"run_id": run_id, "status": status, "seed": str(seed), "name": name, "written": stamp}
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(rows.values(), key=lambda row: (row["name"], row["run_id"])))
        atomic_write_text(folder / INDEX, text.getvalue())


__all__ = ["COLUMNS", "INDEX", "index_run", "read_index"]
