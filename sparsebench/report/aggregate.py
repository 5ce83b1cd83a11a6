"""Run records -> one pandas DataFrame, one row per completed run.

Column conventions:

- identity: ``run_id``, ``experiment``, ``seed``, ``path`` (the run's folder), ``group`` (a 12-hex-digit
  hash of the run's result-relevant config without the seed: the runs of one group differ only in
  their seed) and ``label`` (a short readable name of the group, made of the config values that vary
  between the groups of this DataFrame, e.g. ``regularizer=dropout p=0.5``).
- config: the full resolved config flattened with dots, exactly as Hydra override keys
  (``regularizer.name``, ``regularizer.p``, ``train.lr``, ``model.hidden``, ``seed``, ...). A key that a
  record lacks (another regularizer's parameter) is missing (NaN) in that row.
- metrics: the record's ``metrics`` flattened with ``/`` (``test/accuracy``, ``generalization_gap``,
  ``weights/final/global/abs_0.001``, ``noise/pixels/score``, ``activations/hidden1/hoyer``, ...).
  Added here: ``weights/change/<layer>/<key>`` = final minus init of each near-zero fraction (per run,
  so its interval over seeds is that of a paired difference). A ``prune/largest_within_margin/*`` that
  the record holds as null (no tested fraction stayed within the margin) is 0.0.
- ``environment/...`` and ``timing/...`` flattened the same way; ``history``: the per-epoch list of dicts.

List values (curves, histograms, levels, ``model.hidden``, ``history``) stay Python lists in object cells.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsebench.identity import config_hash, result_relevant
from sparsebench.measurements import derived_columns
from sparsebench.records.paths import flatten, is_number
from sparsebench.records.record import RESULT, Problem, RunRecord, read

IDENTITY = ["run_id", "experiment", "seed", "group", "label", "path"]
# Hydra's own bookkeeping under a sweep folder; the MLflow store and W&B run folders, whose copies of
# a run's result.json (attached as artifacts) are mirrors, not records.
SKIPPED_FOLDERS = ("_hydra", "_mlflow", "wandb")
ATTRS = "sparsebench"  # df.attrs[ATTRS]: which columns are config, result-relevant config, metrics


@dataclass(frozen=True)
class Skipped:
    """A ``result.json`` that was not read into the DataFrame, and why."""

    path: Path
    reason: str
    identity: tuple[str, str] | None = None  # (experiment, run id) of the record the file holds, when it is one

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# ----------------------------------------------------------------------------------------------------
# Values


def plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def is_missing(value: Any) -> bool:
    value = plain(value)
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def canonical(value: Any) -> str:
    """A string that is equal for equal config values (None and NaN both read ``null``)."""
    if is_missing(value):
        return "null"
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def display(value: Any) -> str:
    """A config value as it is written on a Hydra command line."""
    value = plain(value)
    if is_missing(value):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


# ----------------------------------------------------------------------------------------------------
# Identity of a group


def relevant_config(config: Mapping) -> dict:
    """The result-relevant part of a stored config without the seed (what a group shares).

    Goes through ``sparsebench.identity.result_relevant`` so that the reporter drops exactly what the
    runner's run ids ignore. A config that it cannot handle (a foreign or older layout) is kept whole
    but for ``name`` and ``seed``: grouping by more keys never merges runs of different settings.
    """
    from omegaconf import OmegaConf


    try:
        tree = result_relevant(OmegaConf.create(copy.deepcopy(dict(config))))
    except Exception:  # noqa: BLE001 - any failure falls back to the whole config
        tree = copy.deepcopy(dict(config))
        tree.pop("name", None)
    tree.pop("seed", None)
    return tree


def group_id(relevant: Mapping) -> str:
    """A short hash of a result-relevant config (the formula of the runner's run ids)."""

    return config_hash(dict(relevant))


# ----------------------------------------------------------------------------------------------------
# Reading records


def find_records(folder: Path) -> list[Path]:
    """Every ``result.json`` file under ``folder`` (any depth; not in ``_hydra`` or hidden folders)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS and not d.startswith("."))
        if RESULT in files:
            found.append(Path(root) / RESULT)
    return sorted(found)


def _metric_columns(metrics: Mapping) -> dict[str, Any]:
    flat = {k: v for k, v in flatten(metrics, "/").items() if v is not None and v != {}}
    flat.update(derived_columns(metrics))
    return flat


def record_row(record: RunRecord, path: Path) -> tuple[dict, list[str], list[str], list[str]]:
    """One DataFrame row: (row, config columns, relevant config columns, metric columns)."""
    config = record.config
    relevant = relevant_config(config)
    config_flat = flatten(config, ".")
    config_flat.pop("seed", None)
    metrics = _metric_columns(record.metrics)
    row: dict[str, Any] = {"run_id": record.run_id, "experiment": record.experiment, "seed": record.seed,
                           "group": group_id(relevant), "label": None, "path": str(path.parent)}
    row.update(config_flat)
    row.update(metrics)
    for part in ("environment", "timing"):
        if isinstance(getattr(record, part), dict):
            row.update({f"{part}/{k}": v for k, v in flatten(getattr(record, part), "/").items() if v is not None})
    if isinstance(record.history, list):
        row["history"] = record.history
    relevant_columns = [k for k in flatten(relevant, ".")]
    return row, list(config_flat), relevant_columns, list(metrics)


def counted_records(folder: Path) -> tuple[list[tuple[Path, RunRecord]], list[Skipped]]:
    """The records under ``folder`` that count (``records.record.read``: valid, of their own identity,
    in ``<experiment>/<run id>/``), each once, and every other ``result.json`` with why it does not:
    a copy of a counted record (a backup folder, another run's folder) is named as such."""
    found = [(path, read(path)) for path in find_records(folder)]
    counted: dict[tuple[str, str], Path] = {}
    records: list[tuple[Path, RunRecord]] = []
    skipped: list[Skipped] = []
    # Nearest the top first: a results folder holding an archive of itself counts its own records.
    for path, record in sorted(found, key=lambda item: (len(item[0].parts), item[0])):
        if isinstance(record, RunRecord):
            if record.identity in counted:
                skipped.append(Skipped(path, f"a copy of {counted[record.identity]} (the same run, counted once)",
                                       record.identity))
                continue
            counted[record.identity] = path
            records.append((path, record))
    for path, problem in found:
        if isinstance(problem, Problem):
            identity = problem.record.identity if problem.record is not None else None
            original = counted.get(identity)
            skipped.append(Skipped(path, f"a copy of {original}, {problem.reason}" if original else problem.reason,
                                   identity))
    return sorted(records, key=lambda item: item[0]), sorted(skipped, key=lambda item: item.path)


def load_records(folder: str | Path, *, deduplicate: bool = True) -> tuple[pd.DataFrame, list[Skipped]]:
    """Every completed run record under ``folder`` that counts as one DataFrame (see the module docstring
    for the columns), and the result.json files not used with their reasons. Never raises for a bad file.

    A record counts once, only in the folder its identity names (``counted_records``). With
    ``deduplicate``, a run whose group and seed were already read (the same config and seed in two
    experiments) is skipped too: counting it twice would shrink intervals.
    """
    folder = Path(folder)
    rows: list[dict] = []
    config_cols: dict[str, None] = {}
    relevant_cols: dict[str, None] = {}
    metric_cols: dict[str, None] = {}
    seen: dict[tuple[str, int], str] = {}
    records, skipped = counted_records(folder)
    for path, record in records:
        if record.status != "completed":
            message = (record.error or {}).get("message")
            skipped.append(Skipped(path, "failed run" + (f" ({message})" if message else ""), record.identity))
            continue
        try:
            row, configs, relevants, metrics = record_row(record, path)
        except Exception as error:  # noqa: BLE001 - a record of an unexpected shape is skipped, not fatal
            skipped.append(Skipped(path, f"unexpected layout ({type(error).__name__}: {error})", record.identity))
            continue
        key = (row["group"], row["seed"])
        if deduplicate and key in seen:
            skipped.append(Skipped(path, f"duplicate of {seen[key]} (same config and seed in another experiment)",
                                   record.identity))
            continue
        seen[key] = row["path"]
        rows.append(row)
        config_cols.update(dict.fromkeys(configs))
        relevant_cols.update(dict.fromkeys(relevants))
        metric_cols.update(dict.fromkeys(metrics))
    skipped.sort(key=lambda item: item.path)
    if not rows:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in IDENTITY})
        df.attrs[ATTRS] = {"config": [], "relevant": [], "metrics": []}
        return df, skipped
    extra = [c for c in dict.fromkeys(c for row in rows for c in row) if c not in IDENTITY
             and c not in config_cols and c not in metric_cols]
    order = IDENTITY + list(config_cols) + list(metric_cols) + extra
    df = pd.DataFrame.from_records(rows, columns=order)
    df.attrs[ATTRS] = {"config": list(config_cols), "relevant": [c for c in relevant_cols if c in config_cols],
                       "metrics": list(metric_cols)}
    df["label"] = make_labels(df)
    df = df.sort_values(["label", "seed", "path"], key=_sort_key, kind="stable").reset_index(drop=True)
    return df, skipped


# ----------------------------------------------------------------------------------------------------
# Column kinds


def _attrs(df: pd.DataFrame) -> dict | None:
    info = df.attrs.get(ATTRS)
    return info if isinstance(info, dict) else None


def config_columns(df: pd.DataFrame) -> list[str]:
    """The flattened config columns of ``df`` (all of them, result-relevant or not)."""
    info = _attrs(df)
    if info is not None:
        return [c for c in info["config"] if c in df.columns]
    return [c for c in df.columns if "/" not in c and "." in c]


def relevant_columns(df: pd.DataFrame) -> list[str]:
    """The config columns that can change a run's numbers (what groups differ in), seed excluded."""
    info = _attrs(df)
    if info is not None:
        return [c for c in info["relevant"] if c in df.columns]
    return config_columns(df)


def metric_columns(df: pd.DataFrame, numeric: bool = True) -> list[str]:
    """The metric columns; with ``numeric``, only those holding numbers (not lists, not booleans)."""
    info = _attrs(df)
    if info is not None:
        names = [c for c in info["metrics"] if c in df.columns]
    else:
        names = [c for c in df.columns if "/" in c and not c.startswith(("environment/", "timing/"))]
    if numeric:
        names = [c for c in names if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    return names


def varies(df: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` exists and takes two or more distinct non-missing values in ``df``."""
    if column not in df.columns:
        return False
    return len({canonical(v) for v in df[column] if not is_missing(v)}) > 1


# ----------------------------------------------------------------------------------------------------
# Labels


def _short_names(columns: list[str]) -> dict[str, str]:
    leaves = [c.rsplit(".", 1)[-1] for c in columns if not c.endswith(".name")]
    names = {}
    for column in columns:
        if column.endswith(".name"):
            names[column] = column[: -len(".name")]
        else:
            leaf = column.rsplit(".", 1)[-1]
            names[column] = leaf if leaves.count(leaf) == 1 else column
    return names


def _group_values(df: pd.DataFrame, keys: pd.Series, exclude: Iterable[str]):
    """The columns a label may use, each group's first row, its key, and each column's canonical value and
    presence per group."""
    exclude = set(exclude) | {"seed", "name"}
    columns = [c for c in relevant_columns(df) if c not in exclude]
    first = df.groupby(keys, sort=False).head(1)
    values = {c: [canonical(v) for v in first[c]] for c in columns}
    present = {c: [v != "null" for v in values[c]] for c in columns}
    return columns, first, list(keys.loc[first.index]), values, present


def varying_columns(df: pd.DataFrame, keys: pd.Series | None = None, exclude: Iterable[str] = ()) -> list[str]:
    """The columns whose values differ between the groups of ``df`` where they are present (what
    ``make_labels`` names)."""
    if df.empty:
        return []
    columns, _, _, values, present = _group_values(df, df["group"] if keys is None else keys, exclude)
    return [c for c in columns if _distinct(values[c], present[c]) > 1]


def _distinct(values: list, present: list[bool]) -> int:
    """How many values a column takes over the groups where it is present."""
    return len({value for value, here in zip(values, present) if here})


def make_labels(df: pd.DataFrame, keys: pd.Series | None = None, exclude: Iterable[str] = (),
                include: Iterable[str] = ()) -> pd.Series:
    """A readable label per row, equal within a group (``keys``, default the ``group`` column) and
    distinct between groups: the config values that vary between the groups of ``df``, in config order,
    with ``section.name`` written ``section=value`` (e.g. ``regularizer=dropout p=0.5``).

    A column counts as varying when the groups where it is present hold two or more values, so a
    regularizer's own parameter appears only when it was swept. ``exclude``: columns never used;
    ``include``: columns named wherever present even if they do not vary here (a subset of runs labelled
    as the whole they came from names, say, the dropout rate each arm chose).
    """
    if df.empty:
        return pd.Series([], index=df.index, dtype=object)
    keys = df["group"] if keys is None else keys
    columns, first, first_keys, values, present = _group_values(df, keys, exclude)
    include = set(include)
    chosen = [c for c in columns if _distinct(values[c], present[c]) > (0 if c in include else 1)]

    def render(chosen: list[str]) -> list[str]:
        names = _short_names(chosen)
        out = []
        for i in range(len(first_keys)):
            row = first.iloc[i]
            parts = [f"{names[c]}={display(row[c])}" for c in chosen if present[c][i]]
            out.append(" ".join(parts))
        return out

    labels = render(chosen)
    # Two groups with one label (one holds a key the other lacks): add the keys that tell them apart.
    for column in columns:
        if len(set(labels)) == len(labels):
            break
        if column in chosen:
            continue
        clashing = [i for i, label in enumerate(labels) if labels.count(label) > 1]
        if len({values[column][i] for i in clashing}) > 1:
            chosen = [c for c in columns if c in chosen or c == column]
            labels = render(chosen)
    if len(first_keys) == 1 and not labels[0]:
        names = [c for c in columns if c.endswith(".name") and present[c][0]]
        labels = render(names) if names else ["all runs"]
    labels = [label or "(default)" for label in labels]
    if len(set(labels)) < len(labels):
        labels = [f"{label} [{str(key)[:6]}]" if labels.count(label) > 1 else label
                  for label, key in zip(labels, first_keys)]
    mapping = dict(zip(first_keys, labels))
    return keys.map(mapping).astype(object)


def natural_key(text: Any) -> tuple:
    """Sort key that orders the numbers inside labels by value (p=0.05 before p=0.2 before p=0.5)."""
    parts = re.split(r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", str(text))
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p != "")


def _sort_key(column: pd.Series) -> pd.Series:
    if column.name == "label":
        return column.map(natural_key)
    return column


def ordered_groups(df: pd.DataFrame, label: str = "label", key: str = "group") -> list[tuple[str, str, pd.DataFrame]]:
    """(group, label, rows) for each group of ``df``, in natural label order."""
    out = [(g, str(rows[label].iloc[0]), rows) for g, rows in df.groupby(key, sort=False)]
    return sorted(out, key=lambda item: natural_key(item[1]))


def select(df: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``df`` whose columns hold the given values.

    A number matches numerically (relative tolerance 1e-9, so 0.5 read from YAML matches 0.5 in a record);
    ``None`` matches a missing value; a list matches a list-valued cell equal to it, and otherwise any of
    its elements. Raises KeyError naming a column that ``df`` does not have.
    """
    mask = pd.Series(True, index=df.index)
    for column, wanted in where.items():
        if column not in df.columns:
            raise KeyError(f"no column {column!r} in the results")
        cells = df[column]
        if isinstance(wanted, (list, tuple, set, frozenset)) and not any(isinstance(plain(v), list) for v in cells):
            options = list(wanted)
        else:
            options = [list(wanted) if isinstance(wanted, tuple) else wanted]
        mask &= cells.map(lambda cell: any(_matches(cell, option) for option in options)).astype(bool)
    return df[mask]


def _matches(cell: Any, wanted: Any) -> bool:
    cell = plain(cell)
    if wanted is None or is_missing(wanted):
        return is_missing(cell)
    if is_missing(cell):
        return False
    if is_number(wanted) and is_number(cell):
        return math.isclose(cell, wanted, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(wanted, bool) or isinstance(cell, bool):
        return isinstance(wanted, bool) and isinstance(cell, bool) and wanted == cell
    return canonical(cell) == canonical(wanted)


__all__ = ["IDENTITY", "Skipped", "canonical", "config_columns", "counted_records", "display", "find_records",
           "flatten", "group_id", "is_missing", "load_records", "make_labels", "metric_columns", "natural_key",
           "ordered_groups", "plain", "relevant_columns", "relevant_config", "select", "varies"]
