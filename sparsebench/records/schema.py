"""What a run record (``result.json``) must hold to count: its JSON Schema, and the check of a record
against it and against its folder.

A record counts as completed only when it validates: a damaged file, a truncated one or one written by
hand (``{"status": "completed"}``) is not a completed run. The runner runs such a config again; the
reporter and the claims report name the file and why it was not used. ``records.record.read`` is the
one reader of a record file: this schema, the record's identity and its folder.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from sparsebench.identity import config_hash, result_relevant

NUMBER = {"type": "number"}
SCORE = {"type": "object", "required": ["accuracy", "loss"], "properties": {"accuracy": NUMBER, "loss": NUMBER}}
SECTIONS = ("dataset", "model", "regularizer", "train", "eval", "prune")

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sparsebench run record",
    "type": "object",
    "required": ["status", "run_id", "experiment", "seed", "config", "data", "environment", "timing"],
    "properties": {
        "status": {"enum": ["completed", "failed"]},
        "run_id": {"type": "string", "minLength": 1},
        "experiment": {"type": "string", "minLength": 1},
        "seed": {"type": "integer", "minimum": 0},
        "config": {"type": "object", "required": list(SECTIONS),
                   "properties": {name: {"type": "object"} for name in SECTIONS}},
        "data": {"type": "object", "required": ["digest"], "properties": {"digest": {"type": "string", "minLength": 1}}},
        "environment": {"type": "object"},
        "timing": {"type": "object", "required": ["started", "finished", "wall_seconds"],
                   "properties": {"wall_seconds": NUMBER}},
    },
    "allOf": [
        {"if": {"properties": {"status": {"const": "completed"}}},
         "then": {
             "required": ["metrics", "history"],
             "properties": {
                 "metrics": {"type": "object",
                             "required": ["test", "train", "selection", "speed", "weights", "activations", "convergence"],
                             "properties": {"test": SCORE, "train": SCORE,
                                            "selection": {"type": "object", "required": ["rule", "epoch"]},
                                            "convergence": {"type": "object", "required": ["converged"],
                                                            "properties": {"converged": {"type": ["boolean", "null"]}}}}},
                 "history": {"type": "array", "minItems": 1,
                             "items": {"type": "object", "required": ["epoch", "train_loss", "train_accuracy", "seconds"]}},
             }}},
        {"if": {"properties": {"status": {"const": "failed"}}},
         "then": {"required": ["error"],
                  "properties": {"error": {"type": "object", "required": ["message"],
                                           "properties": {"message": {"type": "string"}}}}}},
    ],
}

_VALIDATOR = Draft202012Validator(SCHEMA)


def _where(error) -> str:
    path = "/".join(str(part) for part in error.absolute_path)
    return f"{path}: " if path else ""


def problems(record: Any, folder_name: str | None = None) -> list[str]:
    """Why ``record`` is not a valid run record ([] when it is). With ``folder_name``, the record's
    run id must also be that name and the hash of its own config and data (``identity_problem``)."""
    found = [f"{_where(e)}{e.message}" for e in sorted(_VALIDATOR.iter_errors(record), key=lambda e: list(e.path))]
    if found or folder_name is None:
        return found
    if record["run_id"] != folder_name:
        return [f"its run id {record['run_id']} is not its folder's name {folder_name}"]
    found_identity = identity_problem(record)
    return [found_identity] if found_identity else []


def identity_problem(data: dict) -> str | None:
    """Why the run id of a schema-valid record is not the hash of its own config and data (None when it is)."""
    try:
        expected = config_hash(result_relevant(data["config"], data["data"]["digest"]))
    except Exception as error:  # noqa: BLE001 - a config of another layout cannot be checked, so it does not count
        return f"its config cannot be read ({type(error).__name__}: {error})"
    if expected != data["run_id"]:
        return f"its run id {data['run_id']} is not the hash of its own config and data ({expected}): edited by hand " \
               f"or made by another version"
    return None


def problem(record: Any, folder_name: str | None = None) -> str | None:
    """The first few problems of ``record`` in one line, or None for a valid record."""
    found = problems(record, folder_name)
    if not found:
        return None
    return "; ".join(found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")


__all__ = ["SCHEMA", "identity_problem", "problem", "problems"]
