"""One run, from a validated config to its record: find or skip the record, train, measure, write.

Outcomes: ``completed``; ``skipped`` (a valid completed record exists); ``failed`` (recorded with its
reason: divergence, out of memory, a bug; or recorded so before, and ``retry_failed`` is off);
``busy`` (another process holds the run). A problem with the user's input or the machine (a missing
data set, a bad value, a full disk, Ctrl-C) raises and leaves no record, so that running the same
command again resumes. A record that does not count (``records.record.read``: invalid, of another
identity, or in another run's folder) is not a record: the run is done again.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from sparsebench import seeds
from sparsebench.atomic import environment_fault, open_no_follow
from sparsebench.continual.sequence import fit_sequence
from sparsebench.data import dataset_digest, load_splits
from sparsebench.errors import ConfigError, RunError, SparsebenchError
from sparsebench.identity import run_id
from sparsebench.measurements import Trained, kept_epochs, measure, weight_measurements
from sparsebench.models import build_model, place
from sparsebench.progress import progress_enabled, showing
from sparsebench.records import (
    CHECKPOINT,
    CONFIG,
    LOG,
    RunBusy,
    RunDir,
    RunRecord,
    atomic_torch_save,
    atomic_write_text,
    environment,
)
from sparsebench.records.index import index_run
from sparsebench.records.naming import run_name
from sparsebench.regularizers import build_regularizer
from sparsebench.schemas import RunConfig
from sparsebench.trackers import TrackedRun, Trackers
from sparsebench.train import fit

log = logging.getLogger("sparsebench")


@dataclass
class Outcome:
    status: str  # completed | skipped | failed | busy
    path: Path
    message: str = ""


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}[setting]
    if not available:
        raise ConfigError("device", setting, "no such device on this machine", "use device=auto or device=cpu")
    return torch.device(setting)


def run_dir_for(cfg: RunConfig, data_digest: str | None = None) -> RunDir:
    """The run's folder: its id hashes the result-relevant config and the content digest of its data
    (read, and cached, from the files when not given; raises DataError when they cannot be had)."""
    digest = data_digest or dataset_digest(cfg.dataset)
    folder = Path(cfg.results_dir).expanduser().resolve() / cfg.name / run_id(cfg, digest)
    return RunDir(folder, digest)


def run(cfg: RunConfig, device: str | None = None, overrides: Sequence[str] = (), sweep: str | None = None
        ) -> Outcome:
    """Run ``cfg`` unless its record says it is done; never raises for a failure of the run itself.

    ``device`` (e.g. ``cuda:1``) places the run on one device of several; it overrides ``cfg.device``
    and, like it, is not part of the run's identity. ``overrides``: the command-line overrides that made
    ``cfg`` (``regularizer=dropout``, ``seed=1``), from which its readable name comes (its trackers' run
    name, its row of the experiment's index, ``records.index``); ``sweep``: the name of the sweep it is
    one job of (trackers group its runs by it). Neither changes the run's identity."""
    run_dir = run_dir_for(cfg)
    config = OmegaConf.to_container(OmegaConf.structured(cfg))
    name = run_name(overrides, config, run_dir.path.name)
    try:
        with run_dir.lock():
            result, problem = run_dir.checked_result()
            if problem:
                log.warning("%s does not count as a record (%s); running this config again", run_dir.result_path,
                            problem)
            elif result is not None and result.status == "completed":
                return _said(Outcome("skipped", run_dir.path, "completed before"), cfg, name)
            elif result is not None and not cfg.retry_failed:
                reason = result.error["message"]
                return _said(Outcome("failed", run_dir.path,
                                     f"failed before ({reason}); pass retry_failed=true to run it again"), cfg, name)
            device_ = torch.device(device) if device else resolve_device(cfg.device)
            return _said(_execute(cfg, run_dir, device_, config, name, list(overrides), sweep), cfg, name)
    except RunBusy:
        return _said(Outcome("busy", run_dir.path, "another process is running this config now"))


def _said(outcome: Outcome, cfg: RunConfig | None = None, name: str = "") -> Outcome:
    """Log the outcome, and put the run's row into its experiment's index (not for a busy run: its
    holder will)."""
    text = f"{outcome.status}: {outcome.path}" + (f" ({outcome.message})" if outcome.message else "")
    (log.error if outcome.status == "failed" else log.info)(text)
    if cfg is not None:
        status = "completed" if outcome.status == "skipped" else outcome.status
        index_run(outcome.path.parent, outcome.path.name, status, cfg.seed, name)
    return outcome


def _execute(cfg: RunConfig, run_dir: RunDir, device: torch.device, config: dict, name: str,
             overrides: list[str], sweep: str | None) -> Outcome:
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    atomic_write_text(run_dir.path / CONFIG, OmegaConf.to_yaml(config))
    handler = _LogFile(run_dir.path / LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    # A worker process (claims, launchers) may start with logging at WARNING: run.log wants every line.
    level = log.level
    log.setLevel(min(log.getEffectiveLevel(), logging.INFO))
    record = RunRecord(status=None, run_id=run_dir.path.name, experiment=cfg.name, seed=cfg.seed, config=config,
                       data={"digest": run_dir.data_digest}, environment=environment(device))
    trackers = Trackers(cfg.logger)
    # Besides RunError, the errors the regularizer names (Regularizer.run_errors): an except clause reads its
    # tuple when an error arrives, so it sees them once the regularizer is built.
    run_errors: tuple[type[Exception], ...] = ()
    progress = progress_enabled(cfg.progress)
    shown = contextlib.ExitStack()
    shown.enter_context(showing(progress))
    try:
        data = load_splits(cfg.dataset, device)
        record.data.update(train_images=len(data.train), test_images=len(data.test),
                           val_images=len(data.val) if data.val is not None else 0)
        log.info("run %s: %s, %s, %s, seed %d on %s", run_dir.path.name, cfg.dataset.name, cfg.model.name,
                 cfg.regularizer.name, cfg.seed, device)
        torch.manual_seed(seeds.model(cfg.seed))
        regularizer = build_regularizer(cfg.regularizer)
        run_errors = regularizer.run_errors
        head = cfg.continual.head_size(cfg.dataset) if cfg.continual is not None else cfg.dataset.num_classes
        model = place(build_model(cfg.model, regularizer, tuple(cfg.dataset.shape), head),
                      device, cfg.train.channels_last)
        initial = weight_measurements(model, cfg)
        trained = torch.compile(model) if cfg.train.compile else model
        trackers.start(TrackedRun(run_dir.path.name, cfg.name, config, run_dir.path,
                                  Path(cfg.results_dir).expanduser().resolve(), name=name, overrides=overrides,
                                  sweep=sweep, git_commit=record.environment.get("git_commit")))
        training = dict(progress=progress, resume=run_dir.load_state(),
                        save_state=run_dir.save_state, keep=kept_epochs(cfg),
                        on_epoch=trackers.log_epoch)
        sequence = None
        if cfg.continual is None:
            fitted = fit(trained, regularizer, data, cfg.train, seed=cfg.seed, eval_batch_size=cfg.eval.batch_size,
                         test_curve=cfg.eval.test_curve, **training)
            history = fitted.history
        else:  # a task sequence: the record's scores and measurements are the last task's
            sequence = fit_sequence(trained, regularizer, data, cfg, **training)
            fitted, data, history = sequence.last_fit, sequence.last_task, sequence.history
        metrics = measure(Trained(model, regularizer, data, cfg, fitted, initial, sequence=sequence))
        if sequence is not None:
            metrics["speed"]["resumed_epochs"] = sequence.resumed_epochs
            # Each task trains for a set budget (the protocol), so the last task's few epochs say nothing
            # of convergence: not judged, rather than counted as not converged.
            metrics["convergence"] = {"converged": None, "reason": "a task sequence trains each task for a "
                                      f"set budget ({cfg.train.epochs} epoch(s) per task); convergence not judged"}
        atomic_torch_save(run_dir.path / CHECKPOINT, model.state_dict())
        record.status, record.metrics, record.history, record.error = "completed", metrics, history, None
        outcome = Outcome("completed", run_dir.path, f"test accuracy {metrics['test']['accuracy']:.2f}%")
    except (RunError, *run_errors) as error:  # the run itself cannot go on (diverged, over a memory budget)
        record.status = "failed"
        record.error = {"type": type(error).__name__, "message": str(error), "epoch": getattr(error, "epoch", None)}
        outcome = Outcome("failed", run_dir.path, str(error))
    except SparsebenchError:  # the user's input or the machine: no record, the message says what to fix
        raise
    except OSError as error:  # a full disk or a lost folder is the machine's fault, not the run's
        fault = environment_fault(error, Path(error.filename or run_dir.path))
        if fault is not None:
            raise fault from None
        record, outcome = _failure(run_dir, record, error)
    except Exception as error:  # a failure of this run (out of memory, a bug): record it, keep the sweep going
        record, outcome = _failure(run_dir, record, error)
    finally:
        shown.close()
        if record.status is None:  # stopped by the user's input or the machine (or Ctrl-C): no record
            trackers.finish(None, "interrupted", [])
        log.removeHandler(handler)
        log.setLevel(level)
        handler.close()
    finished = datetime.datetime.now(datetime.timezone.utc)
    record.timing = {"started": started.isoformat(), "finished": finished.isoformat(),
                     "wall_seconds": time.perf_counter() - clock}
    try:
        run_dir.write(record)
    except BaseException:
        trackers.finish(None, "interrupted", [])
        raise
    # After the record, so that trackers can attach it (config.yaml, result.json) as it stands.
    trackers.finish(record.metrics, record.status, [run_dir.path / CONFIG, run_dir.result_path])
    if record.status == "completed":
        run_dir.drop_state()
    return outcome


class _LogFile(logging.FileHandler):
    """run.log, appended to but never through a symbolic link planted in the run folder."""

    def _open(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        return open(open_no_follow(Path(self.baseFilename), flags), self.mode, encoding=self.encoding)


def _failure(run_dir: RunDir, record: RunRecord, error: Exception) -> tuple[RunRecord, Outcome]:
    atomic_write_text(run_dir.path / "error.log", traceback.format_exc())
    message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    record.status, record.error = "failed", {"type": type(error).__name__, "message": message, "epoch": None}
    return record, Outcome("failed", run_dir.path, f"{message} (traceback in error.log)")


__all__ = ["Outcome", "resolve_device", "run", "run_dir_for"]
