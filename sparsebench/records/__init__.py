"""Run records: one folder per run, ``<results_dir>/<experiment>/<run-id>/``.

The folder holds ``config.yaml`` (the resolved config), ``result.json`` (status, metrics, history,
environment, timings; written last and atomically) and ``checkpoint.pt`` (the final weights). While a
run trains it also holds ``state.pt`` (the last completed epoch, for resuming) and ``run.lock``.
A run whose ``result.json`` says completed is done; a folder without one was interrupted.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sparsebench.atomic import atomic_write, atomic_write_json, atomic_write_text
from sparsebench.records import schema
from sparsebench.records.environment import environment

RESULT = "result.json"
CONFIG = "config.yaml"
CHECKPOINT = "checkpoint.pt"
STATE = "state.pt"
LOCK = "run.lock"


def atomic_torch_save(path: Path, obj: Any) -> None:
    atomic_write(path, lambda stream: torch.save(obj, stream))


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class RunBusy(Exception):
    """Another process holds the run's lock."""


@dataclass
class RunDir:
    path: Path
    data_digest: str = ""  # the content digest of the data the run's id was made with

    @property
    def result_path(self) -> Path:
        return self.path / RESULT

    def checked_result(self) -> tuple[dict | None, str | None]:
        """(the record, None) for a valid record; (None, why it does not count) for a file that is not
        one (unreadable, not JSON, not valid against ``records.schema``, of another run); (None, None)
        when there is no record."""
        if not self.result_path.exists():
            return None, None
        try:
            record = json.loads(self.result_path.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as error:
            return None, f"unreadable: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        problem = schema.problem(record, self.path.name)
        return (None, problem) if problem else (record, None)

    def status(self) -> str | None:
        """completed or failed for a valid record; None otherwise (never finished, or a record that
        does not count)."""
        record, _ = self.checked_result()
        return record["status"] if record else None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run exclusively. The OS releases the lock when the process dies, even by SIGKILL,
        so a killed run never blocks its rerun. Raises RunBusy when another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunBusy(str(self.path)) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def held(self) -> bool:
        """Whether another process holds the run now; looks without taking the run (a shared lock is
        refused while an exclusive one is held)."""
        path = self.path / LOCK
        if not path.exists():
            return False
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def load_state(self) -> dict | None:
        """The resumable training state of an interrupted run, or None."""
        path = self.path / STATE
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # a state written by an older version or damaged: start afresh
            return None

    def save_state(self, state: dict) -> None:
        atomic_torch_save(self.path / STATE, state)

    def drop_state(self) -> None:
        (self.path / STATE).unlink(missing_ok=True)


__all__ = ["RunBusy", "RunDir", "atomic_torch_save", "atomic_write_json", "atomic_write_text", "environment",
           "read_json"]
