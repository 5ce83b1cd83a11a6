"""A run's record (``result.json``) as one typed object, with its one reader and its one writer.

A record counts only where its identity names it: the file ``<experiment>/<run id>/result.json``, whose
run id is the hash of the record's own config and data digest (``sparsebench.identity``). The reader
checks the JSON Schema (``records.schema``), that identity and that folder together, so the runner (is
this run done?), the reporter and the claims report (which runs are there?) and search objectives
(which number did the run give?) count the same records. A record copied elsewhere (a backup folder,
another run's folder) is named, never counted.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsebench.atomic import atomic_write_json
from sparsebench.records import schema
from sparsebench.records.schema import identity_problem

RESULT = "result.json"
# The order of the keys in the file, as the runner has always written them (records stay byte-compatible).
_FIELDS = ("status", "run_id", "experiment", "seed", "config", "data", "environment", "metrics", "history", "error",
           "timing")


@dataclass
class RunRecord:
    status: str  # completed | failed
    run_id: str
    experiment: str
    seed: int
    config: dict
    data: dict  # {"digest": ..., "train_images": ..., ...}
    environment: dict
    metrics: dict | None = None  # a completed run's measurements (absent from a failed run's file)
    history: list | None = None  # a completed run's epochs (absent from a failed run's file)
    error: dict | None = None  # a failed run's {"type", "message", "epoch"}; null in a completed run's file
    timing: dict | None = None
    extra: dict = field(default_factory=dict)  # keys of the file beyond these (another version's), kept as read

    @property
    def identity(self) -> tuple[str, str]:
        return self.experiment, self.run_id

    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is None and name in ("metrics", "history"):
                continue
            out[name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict) -> RunRecord:
        """The record of a JSON object that validates against ``records.schema`` (unchecked here), in
        today's layout (``upgraded``)."""
        known = {name: data.get(name) for name in _FIELDS}
        known["metrics"], known["history"] = upgraded(known["metrics"], known["history"])
        return cls(**known, extra={k: v for k, v in data.items() if k not in _FIELDS})


# Keys that older records spelled otherwise: the validation split was ``val`` (metrics ``val/accuracy``,
# history ``val_accuracy``) before it was ``validation``.
_RENAMED_METRICS = {"val": "validation"}
_RENAMED_HISTORY = {"val_accuracy": "validation_accuracy", "val_loss": "validation_loss"}


def upgraded(metrics: dict | None, history: list | None) -> tuple[dict | None, list | None]:
    """A record's metrics and history with the keys of older versions renamed to today's, in their
    places (the one place where an old record's spelling is read)."""
    def renamed(tree: Any, names: dict[str, str]) -> Any:
        if not isinstance(tree, dict) or not any(old in tree for old in names):
            return tree
        return {names.get(key, key) if names.get(key, key) not in tree else key: value for key, value in tree.items()}

    metrics = renamed(metrics, _RENAMED_METRICS)
    if isinstance(history, list):
        history = [renamed(entry, _RENAMED_HISTORY) for entry in history]
    return metrics, history


@dataclass(frozen=True)
class Problem:
    """A ``result.json`` that does not count, and why. ``record``: the record, for one that is valid in
    itself but lies outside the folder its identity names (a copy)."""

    path: Path
    reason: str
    kind: str  # missing | unreadable | invalid | identity | folder
    record: RunRecord | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _read_bytes(path: Path) -> bytes:
    # Never through a link: a link in a shared or unpacked results folder may point anywhere.
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(handle, "rb") as stream:
        return stream.read()


def read(path: str | Path) -> RunRecord | Problem:
    """The record in ``path`` when it counts: it validates against the schema, its run id is the hash of
    its own config and data, and it lies in ``<its experiment>/<its run id>/``. Else why not."""
    path = Path(path)
    try:
        raw = _read_bytes(path)
    except FileNotFoundError:
        return Problem(path, "no record", "missing")
    except OSError as error:
        if error.errno == errno.ELOOP:
            return Problem(path, f"a symbolic link (to {os.readlink(path)}), not followed", "unreadable")
        return Problem(path, f"unreadable ({error.strerror or error})", "unreadable")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Problem(path, "not a text file (binary content)", "unreadable")
    if not text.strip():
        return Problem(path, "empty file", "unreadable")
    try:
        data = json.loads(text)
    except ValueError as error:
        return Problem(path, f"not valid JSON ({error})", "unreadable")
    if not isinstance(data, dict):
        return Problem(path, f"not a run record (a JSON {type(data).__name__}, not an object)", "invalid")
    if data.get("status") not in ("completed", "failed"):
        return Problem(path, f"not completed (status {data.get('status')!r})", "invalid")
    found = schema.problem(data)
    if found:
        return Problem(path, f"not a valid record: {found}", "invalid")
    found = identity_problem(data)
    if found:
        return Problem(path, found, "identity")
    record = RunRecord.from_json(data)
    folder = path.parent
    if folder.name != record.run_id:
        return Problem(path, f"in another run's folder: its run id is {record.run_id}, its folder's name "
                             f"{folder.name}", "folder", record)
    if folder.parent.name != record.experiment:
        return Problem(path, f"outside its experiment's folder: it is in {folder.parent.name}/{folder.name}, a record "
                             f"of experiment {record.experiment} counts only in {record.experiment}/{record.run_id}",
                       "folder", record)
    return record


def write(folder: str | Path, record: RunRecord) -> Path:
    """Write ``record`` atomically as ``folder/result.json``; ``folder`` must be the one it counts in."""
    folder = Path(folder)
    if (folder.parent.name, folder.name) != record.identity:
        raise ValueError(f"the record of {record.experiment}/{record.run_id} cannot be written in {folder}")
    return atomic_write_json(folder / RESULT, record.to_json())


__all__ = ["RESULT", "Problem", "RunRecord", "identity_problem", "read", "upgraded", "write"]
