"""Run records: one folder per run, ``<results_dir>/<experiment>/<run-id>/``.

The folder holds ``config.yaml`` (the resolved config), ``result.json`` (status, metrics, history,
environment, timings; written last and atomically) and ``checkpoint.pt`` (the final weights). While a
run trains it also holds ``state.pt`` (the last completed epoch, for resuming, marked with the run's id)
and ``run.lock``. A run whose ``result.json`` says completed is done; a folder without one was interrupted.
``records.record`` reads and writes ``result.json``; no file of a run folder is opened through a symbolic
link (files are replaced by rename, appended through O_NOFOLLOW, and a folder holding a link is refused).
"""

from __future__ import annotations

import datetime
import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sparsebench.atomic import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    open_no_follow,
    refuse_link,
)
from sparsebench.locking import Busy, exclusive, held
from sparsebench.records.environment import environment
from sparsebench.records.record import RESULT, Problem, RunRecord, read, write

log = logging.getLogger("sparsebench")

CONFIG = "config.yaml"
CHECKPOINT = "checkpoint.pt"
STATE = "state.pt"
LOCK = "run.lock"
LOG = "run.log"
STATE_ID = "run_id"  # the key of state.pt that names the run it was saved by


def atomic_torch_save(path: Path, obj: Any) -> None:
    atomic_write(path, lambda stream: torch.save(obj, stream))


RunBusy = Busy  # another process holds the run's lock


@dataclass
class RunDir:
    path: Path
    data_digest: str = ""  # the content digest of the data the run's id was made with

    @property
    def result_path(self) -> Path:
        return self.path / RESULT

    def record(self) -> RunRecord | Problem:
        """The run's record when it counts (``records.record.read``), else why not (kind ``missing``: none)."""
        return read(self.result_path)

    def checked_result(self) -> tuple[RunRecord | None, str | None]:
        """(the record, None) for a record that counts; (None, why it does not count) for a file that is not
        one (unreadable, not JSON, not valid against ``records.schema``, of another run); (None, None)
        when there is no record."""
        found = self.record()
        if isinstance(found, RunRecord):
            return found, None
        return None, (None if found.kind == "missing" else found.reason)

    def status(self) -> str | None:
        """completed or failed for a valid record; None otherwise (never finished, or a record that
        does not count)."""
        record, _ = self.checked_result()
        return record.status if record else None

    def write(self, record: RunRecord) -> Path:
        return write(self.path, record)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run exclusively (``sparsebench.locking``): the OS releases the lock when the process dies,
        even by SIGKILL, so a killed run never blocks its rerun. Raises RunBusy when another process holds
        it, and a one-line EnvironmentFault for a link in the run's folder (never followed). The holder's
        PID is written into run.lock, for people (and tests) looking for the process of a run."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.refuse_links()
        with exclusive(self.path / LOCK, wait=False):
            handle = open_no_follow(self.path / LOCK, os.O_WRONLY)
            try:
                os.ftruncate(handle, 0)
                os.write(handle, f"{os.getpid()}\n".encode())
            finally:
                os.close(handle)
            yield

    def refuse_links(self) -> None:
        """A run folder holds no symbolic links: one planted there (run.lock -> a file elsewhere) would make
        the run write through it. Refused in one line, before any work."""
        with os.scandir(self.path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_symlink():
                    refuse_link(Path(entry.path), " in a run folder")

    def held(self) -> bool:
        """Whether another process holds the run now; looks without keeping the run."""
        return held(self.path / LOCK)

    def load_state(self) -> dict | None:
        """The resumable training state of an interrupted attempt of this run, or None. A state saved by
        another run (its run id is not this folder's name), one without a run id (saved before states
        carried one: its seed and config cannot be told) and a damaged one (truncated, unreadable) are
        moved aside as ``state.pt.foreign-<time>`` / ``state.pt.damaged-<time>`` with one warning, and
        the run starts afresh: resuming any of them would record another run's numbers, or fail."""
        path = self.path / STATE
        try:
            handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        with os.fdopen(handle, "rb") as stream:
            raw = stream.read()
        try:
            state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - truncated, damaged, or not a torch file at all
            first_line = str(error).splitlines()[0] if str(error) else ""
            self._set_aside("damaged", f"cannot be read ({type(error).__name__}: {first_line})")
            return None
        if not isinstance(state, dict) or "model" not in state:
            self._set_aside("damaged", "is not a training state")
            return None
        owner = state.pop(STATE_ID, None)
        if owner is None:
            self._set_aside("foreign", "names no run (saved by an older version, or not by sparsebench)")
            return None
        if owner != self.path.name:
            self._set_aside("foreign", f"was saved by run {owner}, not by this run")
            return None
        return state

    def _set_aside(self, kind: str, why: str) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        aside = self.path / f"{STATE}.{kind}-{stamp}"
        os.replace(self.path / STATE, aside)
        log.warning("%s %s; moved aside to %s, the run starts afresh", self.path / STATE, why, aside.name)

    def save_state(self, state: dict) -> None:
        atomic_torch_save(self.path / STATE, {**state, STATE_ID: self.path.name})

    def drop_state(self) -> None:
        (self.path / STATE).unlink(missing_ok=True)


__all__ = ["CHECKPOINT", "CONFIG", "LOG", "RESULT", "Problem", "RunBusy", "RunDir", "RunRecord", "atomic_torch_save",
           "atomic_write_json", "atomic_write_text", "environment", "read", "write"]
