"""A finished run loaded back: its config, its record and its network with the trained weights.

    from sparsebench import load_run
    run = load_run("results/default/2d242791c53f")
    run.model(images)            # in eval mode: dropout off, the weights the record's test accuracy was measured on
    run.config.regularizer.p     # the validated config (sparsebench.schemas.RunConfig)
    run.record.metrics["test"]   # result.json (sparsebench.records.RunRecord)

The network is built as the run built it (``sparsebench.models.build_model`` with the run's regularizer,
input shape and head) and given the state dict of ``checkpoint.pt``, which the runner saves when a run
completes, after its measurements (which leave the weights as training ended).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import OmegaConf

from sparsebench.errors import SparsebenchError

if TYPE_CHECKING:  # imported when loading: `import sparsebench` stays light for the commands
    from sparsebench.records import RunRecord
    from sparsebench.schemas import RunConfig


@dataclass
class LoadedRun:
    config: RunConfig
    record: RunRecord
    model: torch.nn.Module  # in eval mode, on ``device``


def load_run(path: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """The completed run in the folder ``path`` (``<results_dir>/<experiment>/<run-id>``, the folder that
    holds its result.json, config.yaml and checkpoint.pt), its network on ``device`` in eval mode.

    Raises SparsebenchError, in one line, for a folder that holds no completed run that counts."""
    from sparsebench.models import build_model, place
    from sparsebench.records import CHECKPOINT, RESULT, RunRecord, read
    from sparsebench.regularizers import build_regularizer

    folder = Path(path).expanduser()
    found = read(folder / RESULT)
    if not isinstance(found, RunRecord):
        raise SparsebenchError(f"{folder}: no run to load ({found.reason}); give the folder of a completed run, "
                               "<results_dir>/<experiment>/<run-id>, the one holding its result.json")
    if found.status != "completed":
        raise SparsebenchError(f"{folder}: the run failed ({found.error['message']}), so it saved no weights; "
                               "give the folder of a completed run")
    if not (folder / CHECKPOINT).is_file():
        raise SparsebenchError(f"{folder}: {CHECKPOINT} is missing, so the trained weights cannot be loaded; "
                               "run the same config again (delete the folder first) to make it")
    # The record's config, not config.yaml beside it: read() checked the record's run id against it.
    cfg = run_config(found.config)
    head = cfg.continual.head_size(cfg.dataset) if cfg.continual is not None else cfg.dataset.num_classes
    model = build_model(cfg.model, build_regularizer(cfg.regularizer), tuple(cfg.dataset.shape), head)
    # weights_only: a checkpoint is tensors only, and a folder from elsewhere must not run code when read.
    model.load_state_dict(torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=True))
    model = place(model, torch.device(device), cfg.train.channels_last)
    return LoadedRun(config=cfg, record=found, model=model.eval())


def run_config(tree: dict) -> RunConfig:
    """A record's config (a plain tree, as result.json holds it) as the typed config the run had, each
    group read with its schema (keys that a record older than a field lacks take the field's default).
    Not validated again: the run was, and loading its weights must not need its trackers installed."""
    from sparsebench.data.tasks import SEQUENCES
    from sparsebench.models import MODELS
    from sparsebench.regularizers import REGULARIZERS
    from sparsebench.schemas import GROUP_SCHEMAS, RunConfig, TuneConfig
    from sparsebench.trackers import TRACKERS

    cfg = OmegaConf.create(tree)
    schemas = {**GROUP_SCHEMAS, "model": MODELS[cfg.model.name].Config,
               "regularizer": REGULARIZERS[cfg.regularizer.name].Config}
    if cfg.get("continual"):
        schemas["continual"] = SEQUENCES[cfg.continual.name]
    if cfg.get("tune"):
        schemas["tune"] = TuneConfig
    parts = {key: OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), cfg[key]))
             for key, schema in schemas.items()}
    # A tracker this sparsebench no longer has keeps its settings as they were: they change no number.
    parts["logger"] = {name: OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TRACKERS[name].Config), settings))
                       if name in TRACKERS else OmegaConf.to_container(settings)
                       for name, settings in (cfg.get("logger") or {}).items()}
    top = {f.name: tree[f.name] for f in dataclasses.fields(RunConfig) if f.name in tree and f.name not in parts}
    return RunConfig(**top, **parts)


__all__ = ["LoadedRun", "load_run", "run_config"]
