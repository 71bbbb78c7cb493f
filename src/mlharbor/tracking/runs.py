"""Lineage-aware tracking: ``ws.tracking.start_run(experiment)``.

A run records where it came from (git commit and dirty flag, Python and package versions), what it
read (training sets: their feature tables at the versions read, and the feature spec; any lake
table), and what it measured. Params, metrics and tags are buffered and sent in batches — one call
per 1,000 metric values instead of one per value — when the buffer fills, on ``flush()``, and when
the run ends. Reading a training set inside a run records lineage edges ``table@version → run``.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.core.entities import LineageNode
from mlharbor.core.recording import note_run
from mlharbor.errors import InvalidArgument
from mlharbor.lineage.service import LineageService, table_node
from mlharbor.tracking.environment import run_environment_tags
from mlharbor.tracking.mlflow_adapter import MAX_BATCH_METRICS, MlflowAdapter
from mlharbor.tracking.records import MetricPoint, RunRecord

if TYPE_CHECKING:
    from mlharbor.catalog.service import CatalogContext
    from mlharbor.core.actors import Actor

TRAINED_ON = "trained_on"
MAX_KEY = 250


def run_node(run_id: str) -> LineageNode:
    return LineageNode("run", run_id)


def _check_key(key: str, what: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise InvalidArgument(f"a {what} name must be a non-empty string of at most {MAX_KEY} characters")
    return key


def training_set_versions(training_set: Any) -> dict[str, int]:
    """Table → version a training set read (its input tables and feature tables); empty for None."""
    if training_set is None:
        return {}
    return {**dict(training_set.source_versions), **dict(training_set.table_versions)}


def training_set_inputs(training_set: Any, context: str = "training") -> list[dict[str, str]]:
    """A training set as MLflow dataset inputs: each table at the version read, and its feature spec."""
    spec_json: str = training_set.spec.to_json()
    datasets = [
        {"name": name, "digest": f"v{version}", "source_type": "delta",
         "source": json.dumps({"table": name, "version": version}), "context": context}
        for name, version in sorted(training_set_versions(training_set).items())
    ]
    datasets.append({"name": "feature_spec", "digest": hashlib.sha256(spec_json.encode()).hexdigest()[:16],
                     "source_type": "mlharbor_feature_spec", "source": spec_json, "context": context})
    return datasets


class RunHost(Protocol):
    """What an :class:`ActiveRun` needs from its tracking backend (local service or REST client)."""

    adapter: MlflowAdapter

    @property
    def autologging(self) -> bool: ...

    def record_inputs(self, run_id: str, versions: dict[str, int]) -> None: ...


class ActiveRun:
    """A run being recorded; use as a context manager (it ends FINISHED, or FAILED on an exception)."""

    def __init__(self, service: RunHost, record_: RunRecord) -> None:
        self._service = service
        self.info = record_
        self.run_id = record_.run_id
        self._metrics: list[MetricPoint] = []
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._steps: dict[str, int] = {}
        self._fluent: AbstractContextManager[None] | None = None
        self.ended = False

    # --- logging (buffered) --------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        self._params[_check_key(key, "param")] = str(value)

    def log_params(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            self.log_param(key, value)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one value; without ``step`` each key counts its own steps 0, 1, 2, …"""
        _check_key(key, "metric")
        if step is None:
            step = self._steps.get(key, -1) + 1
        self._steps[key] = max(step, self._steps.get(key, -1))
        self._metrics.append(MetricPoint(key, float(value), int(time.time() * 1000), int(step)))
        if len(self._metrics) >= MAX_BATCH_METRICS:
            self.flush()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def set_tag(self, key: str, value: Any) -> None:
        self._tags[_check_key(key, "tag")] = str(value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def flush(self) -> None:
        """Send everything buffered, in as few calls as possible."""
        if self._metrics or self._params or self._tags:
            metrics, params, tags = self._metrics, self._params, self._tags
            self._metrics, self._params, self._tags = [], {}, {}
            self._service.adapter.log_batch(self.run_id, metrics, params, tags)

    # --- inputs and artifacts ------------------------------------------------------------------

    def log_training_set(self, training_set: Any, context: str = "training") -> None:
        """Record a training set as run inputs: each feature table at the version read, the input
        table(s) it was built from, and the feature spec (artifact ``feature_spec.json``); and the
        lineage edges from those table versions to this run."""
        self._service.adapter.log_inputs(self.run_id, training_set_inputs(training_set, context))
        self._service.record_inputs(self.run_id, training_set_versions(training_set))
        self.log_text(training_set.spec.to_json(), "feature_spec.json")

    def log_table(self, name: str, version: int, context: str = "training") -> None:
        """Record one lake table version as an input (and its lineage edge)."""
        self._service.adapter.log_inputs(self.run_id, [
            {"name": name, "digest": f"v{version}", "source_type": "delta",
             "source": json.dumps({"table": name, "version": version}), "context": context}])
        self._service.record_inputs(self.run_id, {name: version})

    def log_text(self, text: str, artifact_file: str) -> None:
        """Write ``text`` as an artifact file of the run."""
        import tempfile
        from pathlib import Path

        from mlharbor.core.paths import check_relative_path

        parts = check_relative_path(artifact_file, "artifact file")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, *parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            self._service.adapter.client.log_artifact(self.run_id, str(path), "/".join(parts[:-1]) or None)

    # --- lifecycle -----------------------------------------------------------------------------

    def end(self, status: str = "FINISHED") -> None:
        if self.ended:
            return
        try:
            self.flush()
        finally:
            self._service.adapter.end_run(self.run_id, status)
            self.ended = True

    def __enter__(self) -> ActiveRun:
        if self._service.autologging:
            from mlharbor.tracking.mlflow_adapter import fluent_run

            self._fluent = fluent_run(self._service.adapter.tracking_uri, self.run_id)
            self._fluent.__enter__()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        fluent, self._fluent = self._fluent, None
        try:
            if fluent is not None:
                fluent.__exit__(None, None, None)
        finally:
            self.end("FAILED" if exc_type is not None else "FINISHED")


class TrackingService:
    """Runs in the workspace's MLflow store, checked and audited as one principal.

    Runs belong to the current target's environment: starting one needs WRITE there, reading READ.
    """

    def __init__(self, ctx: CatalogContext, actor: Actor, adapter: MlflowAdapter) -> None:
        self._ctx = ctx
        self._actor = actor
        self.adapter = adapter

    @property
    def autologging(self) -> bool:
        return bool(self.adapter.autolog_flavors)

    def autolog(self, flavors: tuple[str, ...] = ("sklearn", "xgboost", "lightgbm")) -> builtins.list[str]:
        """Log params and training metrics of scikit-learn, XGBoost and LightGBM fits made inside
        ``start_run`` blocks (the installed ones; models are not autologged: ``ws.models.log_model``
        packages them safely). Returns the flavors enabled."""
        from mlharbor.tracking.mlflow_adapter import AUTOLOG_FLAVORS, enable_autolog

        unknown = sorted(set(flavors) - set(AUTOLOG_FLAVORS))
        if unknown:
            raise InvalidArgument(f"no autologging for {unknown}; use {', '.join(AUTOLOG_FLAVORS)}")
        enabled = enable_autolog(flavors)
        self.adapter.autolog_flavors.update(enabled)
        return enabled

    @property
    def environment(self) -> Any:
        return self._ctx.settings.current.environment

    def _authorize(self, permission: Permission, action: str, resource: str) -> None:
        self._ctx.auth.authorize(self._actor, permission, self.environment, action, resource)

    def start_run(self, experiment: str, run_name: str | None = None, tags: dict[str, Any] | None = None) -> ActiveRun:
        """Start a run in ``experiment`` (created when missing); use as ``with ws.tracking.start_run(…) as run``."""
        if not isinstance(experiment, str) or not experiment.strip():
            raise InvalidArgument("an experiment needs a name")
        self._authorize(Permission.WRITE, "run.start", f"experiment:{experiment}")
        all_tags = {**run_environment_tags(self._ctx.settings.project_root),
                    "mlharbor.principal": self._actor.principal, "mlflow.user": self._actor.principal,
                    **{k: str(v) for k, v in (tags or {}).items()}}
        created = self.adapter.create_run(experiment, run_name, all_tags)
        note_run(created.run_id)
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "run.start", f"run:{created.run_id}", {"experiment": experiment})
        return ActiveRun(self, created)

    def record_inputs(self, run_id: str, versions: dict[str, int]) -> None:
        """Lineage edges from table versions into the run (idempotent)."""
        with self._ctx.store.transaction() as tx:
            LineageService.record(tx, self._actor, [table_node(n, v) for n, v in versions.items()],
                                  run_node(run_id), TRAINED_ON)

    def get_run(self, run_id: str) -> RunRecord:
        self._authorize(Permission.READ, "run.read", f"run:{run_id}")
        return self.adapter.get_run(run_id)

    def search_runs(self, experiment: str, filter_string: str = "", max_results: int = 100) -> builtins.list[RunRecord]:
        """Runs of ``experiment``, newest first (MLflow filter syntax: ``metrics.rmse < 3``)."""
        self._authorize(Permission.READ, "run.read", f"experiment:{experiment}")
        return self.adapter.search_runs(experiment, filter_string, max_results)

    def metric_history(self, run_id: str, key: str) -> builtins.list[MetricPoint]:
        self._authorize(Permission.READ, "run.read", f"run:{run_id}")
        return self.adapter.metric_history(run_id, key)

    def experiments(self) -> builtins.list[str]:
        self._authorize(Permission.READ, "run.read", "experiments")
        return self.adapter.experiments()

    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> bool:
        """Create experiment ``name`` (restoring a deleted one) with ``tags``; True when it was created."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument("an experiment needs a name")
        self._authorize(Permission.WRITE, "experiment.create", f"experiment:{name}")
        _, created = self.adapter.ensure_experiment(name, {str(k): str(v) for k, v in (tags or {}).items()})
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "experiment.create" if created else "experiment.update", f"experiment:{name}")
        return created

    def experiment_tags(self, name: str) -> dict[str, str] | None:
        """Tags of experiment ``name``, or None when it does not exist."""
        self._authorize(Permission.READ, "run.read", f"experiment:{name}")
        return self.adapter.experiment_tags(name)

    def delete_experiment(self, name: str) -> bool:
        """Delete experiment ``name`` with its runs (restorable by creating it again); False if absent."""
        self._authorize(Permission.WRITE, "experiment.delete", f"experiment:{name}")
        deleted = self.adapter.delete_experiment(name)
        if deleted:
            with self._ctx.store.transaction() as tx:
                record(tx, self._actor, "experiment.delete", f"experiment:{name}")
        return deleted
