"""Workspace: wires stores to services. ``Workspace.open`` (direct) and ``Workspace.connect``
(through a ``mlharbor server``) give the same API; the facade stays thin."""

from __future__ import annotations

import getpass
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlharbor.auth.access import Access, LocalAccess
from mlharbor.auth.service import AuthService
from mlharbor.catalog.functions import FunctionService
from mlharbor.catalog.service import CatalogContext, TableService
from mlharbor.catalog.tables import Tables
from mlharbor.config import Settings, load_settings
from mlharbor.core.actors import Actor
from mlharbor.errors import InvalidArgument, Unauthenticated
from mlharbor.features.publish import LocalOnline
from mlharbor.features.store import FeatureStore
from mlharbor.lineage.service import LineageService

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.client.jobs import RestJobs
    from mlharbor.client.models import RestModels
    from mlharbor.client.tracking import RestTracking
    from mlharbor.evaluation import EvaluationResult
    from mlharbor.features.online import OnlineStore
    from mlharbor.jobs.service import JobService
    from mlharbor.lake.base import TableStore
    from mlharbor.meta import MetadataStore
    from mlharbor.registry.delivery import EventDispatcher
    from mlharbor.registry.models import ModelStore
    from mlharbor.tracking.mlflow_adapter import MlflowAdapter
    from mlharbor.tracking.runs import TrackingService


@dataclass(frozen=True)
class Services:
    """Everything the local backends share; built once per process (the server builds one too)."""

    settings: Settings
    store: MetadataStore
    auth: AuthService
    lineage: LineageService
    catalog: CatalogContext
    _online: dict[str, OnlineStore] = field(default_factory=dict)
    _online_lock: threading.Lock = field(default_factory=threading.Lock)
    _engines: dict[str, MlflowAdapter] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        from mlharbor._plugins import table_store_for
        from mlharbor.meta import MetadataStore

        store = MetadataStore(settings.current.metadata_url)
        store.upgrade()
        auth = AuthService(store, settings.server.token_ttl_days)
        lineage = LineageService(store)
        stores: dict[str, TableStore] = {}

        def table_store(catalog: str) -> TableStore:
            if catalog not in stores:
                target = settings.target_for_catalog(catalog)
                if target is None:
                    raise InvalidArgument(f"unknown catalog {catalog!r}")
                stores[catalog] = table_store_for(target.lake_uri, target.storage_options)
            return stores[catalog]

        catalog = CatalogContext(settings, store, auth, lineage, table_store)
        return cls(settings, store, auth, lineage, catalog)

    def online_store(self, catalog: str) -> OnlineStore:
        """The online store of ``catalog``'s target, opened once and shared (stores are thread-safe)."""
        from mlharbor.features.online import online_store_for

        target = self.settings.target_for_catalog(catalog)
        if target is None:
            raise InvalidArgument(f"unknown catalog {catalog!r}")
        key = f"{target.online_store} {sorted(target.online_store_options.items())}"
        with self._online_lock:
            if key not in self._online:
                self._online[key] = online_store_for(target.online_store, **target.online_store_options)
            return self._online[key]

    def tracking_engine(self) -> MlflowAdapter:
        """The MLflow store of the current target (opened lazily: MLflow is imported on first use)."""
        from mlharbor.tracking.mlflow_adapter import MlflowAdapter

        target = self.settings.current
        key = f"{target.tracking_uri} {target.artifact_root}"
        with self._online_lock:
            if key not in self._engines:
                self._engines[key] = MlflowAdapter(target.tracking_uri, target.artifact_root)
            return self._engines[key]

    def tracking(self, actor: Actor) -> TrackingService:
        from mlharbor.tracking.runs import TrackingService

        return TrackingService(self.catalog, actor, self.tracking_engine())

    def models(self, actor: Actor) -> ModelStore:
        from mlharbor.registry.models import ModelStore

        return ModelStore(self.catalog, actor, self.tracking_engine(), self.tracking(actor))

    def jobs(self, actor: Actor) -> JobService:
        from mlharbor.jobs.service import JobService
        from mlharbor.task_runtime import run_invocation

        return JobService(self.catalog, actor, invoke=run_invocation)

    def dispatcher(self) -> EventDispatcher:
        """Delivers outbox events to webhooks and internal subscribers (``run_once``, ``run_forever``)."""
        from mlharbor.registry.delivery import EventDispatcher

        return EventDispatcher(self.store, self.settings)

    def features(self, tables: Tables, actor: Actor) -> FeatureStore:
        """A feature store acting as ``actor`` over these services."""
        return FeatureStore(tables, FunctionService(self.catalog, actor),
                            LocalOnline(self.catalog, tables, actor, self.online_store))

    def close(self) -> None:
        with self._online_lock:
            stores = list(self._online.values())
            self._online.clear()
        for online in stores:
            online.close()
        self.store.dispose()


class Workspace:
    """An mlharbor workspace: ``ws.tables``, ``ws.sql()``, ``ws.features`` (feature tables, training
    sets), ``ws.tracking`` (MLflow runs with lineage), ``ws.models`` (logging, loading, registry
    workflow), ``ws.jobs`` (job definitions and runs), ``ws.access`` (principals, grants, tokens, audit)."""

    def __init__(self, tables: Tables, access: Access, features: FeatureStore, settings: Settings | None = None,
                 services: Services | None = None, actor: Actor | None = None,
                 url: str | None = None, on_close: Callable[[], None] | None = None,
                 models: RestModels | None = None, tracking: RestTracking | None = None,
                 jobs: RestJobs | None = None) -> None:
        self.tables = tables
        self.access = access
        self.features = features
        self.settings = settings
        self._services = services
        self.actor = actor
        self.url = url
        self._on_close = on_close
        self._models = models
        self._tracking = tracking
        self._jobs = jobs

    @classmethod
    def open(cls, path: str | Path | None = None, target: str | None = None,
             principal: str | None = None) -> Workspace:
        """Open the workspace of the project at or above ``path`` (default: the working directory).

        With no ``mlharbor.toml`` this is the embedded default under ``./.mlharbor/``. On an embedded
        (SQLite) metadata store the workspace acts as a local admin unless ``principal`` (or
        ``$MLHARBOR_PRINCIPAL``) names a principal whose grants then apply. A shared store (PostgreSQL)
        needs a principal: there nobody is an admin by default — and the server, not direct access,
        is where a team's permissions are enforced against people who hold the database password.
        """
        settings = load_settings(path, target)
        principal = principal or os.environ.get("MLHARBOR_PRINCIPAL") or None
        if principal is None and not settings.current.metadata_url.startswith("sqlite"):
            raise Unauthenticated(
                f"target {settings.target!r} uses a shared metadata store: open it with principal=NAME "
                "(or MLHARBOR_PRINCIPAL), or go through the server with Workspace.connect(url, token=...)"
            )
        services = Services.build(settings)
        actor = Actor.local_admin(_os_user()) if principal is None else Actor(principal=principal)
        services.auth.ensure_local_admin(actor)
        tables = Tables(TableService(services.catalog, actor))
        return cls(tables, LocalAccess(services.auth, actor), services.features(tables, actor), settings, services,
                   actor)

    @classmethod
    def connect(cls, url: str, token: str | None = None, timeout: float = 60.0) -> Workspace:
        """Use a ``mlharbor server`` at ``url`` with an API token (default: ``$MLHARBOR_TOKEN``)."""
        from mlharbor.client import RestAccess, RestClient, RestFunctions, RestJobs, RestModels, RestOnline, RestTables
        from mlharbor.client.tracking import RestTracking

        client = RestClient(url, token=token, timeout=timeout)
        tables = Tables(RestTables(client))
        features = FeatureStore(tables, RestFunctions(client), RestOnline(client))
        return cls(tables, RestAccess(client), features, url=url, on_close=client.close, models=RestModels(client),
                   tracking=RestTracking(client), jobs=RestJobs(client))

    @property
    def services(self) -> Services:
        if self._services is None:
            raise InvalidArgument("this workspace is connected to a server; local services are not available")
        return self._services

    @property
    def tracking(self) -> TrackingService | RestTracking:
        """MLflow runs with lineage: ``with ws.tracking.start_run("exp") as run: ...``."""
        if self._tracking is not None:
            return self._tracking
        return self.services.tracking(self._local_actor())

    @property
    def jobs(self) -> JobService | RestJobs:
        """Job definitions and runs: deploy, run, runs, logs, repair (see :mod:`mlharbor.jobs`); on a
        connected workspace the server drives the runs."""
        if self._jobs is not None:
            return self._jobs
        return self.services.jobs(self._local_actor())

    @property
    def models(self) -> ModelStore | RestModels:
        """Log and load models; versions, stages, transition requests, approvals, rollback (through the
        server's registry routes and MLflow API on a connected workspace)."""
        if self._models is not None:
            return self._models
        return self.services.models(self._local_actor())

    def evaluate(self, model_uri: str, data: Any, label: str, problem_type: str, *,
                 version: int | str | None = None, slices: Any = None, thresholds: Any = None,
                 baseline: str | None = "champion", custom_metrics: Any = None,
                 sensitive_columns: list[str] | None = None, min_slice_rows: int = 20,
                 store: bool = True) -> EvaluationResult:
        """Evaluate a registered model version on ``data`` (DataFrame, Arrow, table name or SQL) against
        ``baseline`` (default the champion): metrics overall and per slice, value and change
        ``thresholds`` (``{"roc_auc": Threshold(min_value=0.75, min_absolute_change=0.0)}``), the
        ``blessed`` decision with reasons, fairness gaps across ``sensitive_columns``. Logged to
        MLflow and stored on the version. See :mod:`mlharbor.registry.evaluate`."""
        from mlharbor.registry.evaluate import evaluate_model

        models = self.services.models(self._local_actor())
        return evaluate_model(models, self.features, self.tables, model_uri, data, label, problem_type,
                              version=version, slices=slices, thresholds=thresholds, baseline=baseline,
                              custom_metrics=custom_metrics, sensitive_columns=sensitive_columns,
                              min_slice_rows=min_slice_rows, store=store)

    def _local_actor(self) -> Actor:
        if self.actor is None:
            raise InvalidArgument("evaluation is not available through Workspace.connect yet; "
                                  "open the workspace directly (Workspace.open) or use MLflow's own client")
        return self.actor

    @property
    def auth(self) -> AuthService:
        """The AuthService itself (local workspaces); prefer ``ws.access``, bound to your principal."""
        return self.services.auth

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run DuckDB SQL over lake tables named ``catalog.schema.table``; returns Arrow.

        The result remembers which table versions it read: writing it with ``ws.tables.write``
        records lineage from those versions automatically.
        """
        return self.tables.sql(query, params)

    def close(self) -> None:
        """Release connections (database pools, HTTP clients)."""
        if self._services is not None:
            self._services.close()
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _os_user() -> str:
    """The OS user as a valid principal name (``John.Doe`` → ``john_doe``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    name = re.sub(r"[^a-z0-9_]", "_", user.lower())[:64]
    return name if re.match(r"^[a-z_]", name) else f"u_{name}"[:64] if name else "local"
