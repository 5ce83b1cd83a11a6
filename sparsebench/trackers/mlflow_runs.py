"""MLflow runs, through MLflow's own client (needs mlflow-skinny, or mlflow)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sparsebench.trackers.base import (
    TRACKERS,
    TrackedRun,
    Tracker,
    TrackerConfig,
    epoch_scalars,
    measurements,
)

RUN_TAG = "sparsebench.run_id"
STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
# MLflow's per-request limits (log_batch): split longer lists.
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000


@dataclass
class MlflowConfig(TrackerConfig):
    # Where runs are stored: null: a file store in <results_dir>/_mlflow (``mlflow ui --backend-store-uri
    # <that folder>`` shows it); or any MLflow tracking URI (sqlite:///..., http://server:5000).
    tracking_uri: Optional[str] = None
    experiment_name: Optional[str] = None  # null: the run's experiment name


@TRACKERS.register("mlflow")
class MlflowTracker(Tracker):
    """One MLflow run per sparsebench run, named by its readable name (``regularizer=dropout,seed=1``) and
    tagged with its run id, experiment, sweep (``sparsebench.sweep``: group by it in the runs table) and
    git commit (``mlflow.source.git.commit``); its params are the chosen settings
    (``TrackedRun.hyperparameters``), its metrics the per-epoch history (``epoch/<key>`` at step =
    epoch) and the final measurements by their record path; config.yaml and result.json are its
    artifacts. A resumed run continues its interrupted MLflow run."""

    Config = MlflowConfig
    name = "mlflow"
    requires = "mlflow"
    extra = "mlflow"

    def start(self, run: TrackedRun) -> None:
        uri = self.cfg.tracking_uri or (run.results_dir / "_mlflow").as_uri()
        if uri.startswith("file:"):
            # MLflow 3 keeps its file store in maintenance mode and refuses it unless told otherwise; it
            # is the store that needs no database and no server, which is what a local default should be.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        name = self.cfg.experiment_name or run.experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(name)
            except MlflowException:  # created meanwhile by a run beside this one
                experiment_id = self.client.get_experiment_by_name(name).experiment_id
        else:
            experiment_id = experiment.experiment_id
        earlier = self.client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run.run_id}'",
                                          order_by=["attributes.start_time DESC"], max_results=1)
        if earlier and earlier[0].info.status != "FINISHED":
            self.run_id = earlier[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = dict(run.tags)
        if run.git_commit:
            tags["mlflow.source.git.commit"] = run.git_commit.removesuffix("+dirty")
        self.run_id = self.client.create_run(experiment_id, run_name=run.name or run.run_id, tags=tags).info.run_id
        params = [Param(key, str(value)) for key, value in run.hyperparameters.items()]
        for first in range(0, len(params), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[first:first + PARAMS_PER_BATCH])

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in values.items()]
        for first in range(0, len(metrics), METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[first:first + METRICS_PER_BATCH])

    def log_epoch(self, entry: dict) -> None:
        self._log({f"epoch/{key}": value for key, value in epoch_scalars(entry).items()}, entry["epoch"])
        self.last_epoch = entry["epoch"]

    def finish(self, metrics: dict | None, status: str, files: list[Path]) -> None:
        if metrics:
            self._log(measurements(metrics), getattr(self, "last_epoch", 0))
        for path in files:
            self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, STATUS[status])
