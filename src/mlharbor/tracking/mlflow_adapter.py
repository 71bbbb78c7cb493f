"""The only module that imports MLflow.

mlharbor keeps MLflow as its tracking and registry engine: experiments, runs, metrics, artifacts,
registered models, versions and aliases live in MLflow's own store (a SQLite file in the embedded
default, PostgreSQL for a team), so a plain ``mlflow`` client sees everything. This adapter wraps
an ``MlflowClient`` bound to one tracking URI — never MLflow's process-global fluent state — and
converts MLflow's entities to :mod:`mlharbor.tracking.records`.

Through a ``mlharbor server`` the tracking URI is the server's URL and ``token`` an mlharbor API
token: every MLflow call then carries ``Authorization: Bearer <token>`` (see :func:`_bearer`).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlharbor.core.paths import join_uri
from mlharbor.errors import BackendUnavailable, InvalidArgument, MlharborError, NotFound, error_for_code
from mlharbor.tracking.records import MetricPoint, RunRecord

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

MAX_BATCH_METRICS = 1000  # MLflow's log_batch limit
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100


def mlflow_version() -> str:
    import mlflow

    return str(mlflow.__version__)


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _server_error(exc: Exception, what: str) -> MlharborError | None:
    """The mlharbor error a server answered with (its JSON body has an mlharbor ``error_code``), from
    MLflow's REST store (``RestException.json``) or its artifact client (``requests.HTTPError``)."""
    body = getattr(exc, "json", None)
    response = getattr(exc, "response", None)
    if not isinstance(body, dict) and response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
    if not isinstance(body, dict) or not isinstance(body.get("error_code"), str):
        return None
    error = error_for_code(body["error_code"], f"{what}: {body.get('message', '')}")
    return None if type(error) is MlharborError else error


def _translate(exc: Exception, what: str) -> Exception:
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlharborError):
        return exc
    if (answered := _server_error(exc, what)) is not None:
        return answered
    if isinstance(exc, MlflowException):
        code = getattr(exc, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return NotFound(f"{what}: {exc.message}")
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE", "RESOURCE_ALREADY_EXISTS"):
            return InvalidArgument(f"{what}: {exc.message}")
    return BackendUnavailable(f"{what}: the tracking store failed: {exc}")


# MLflow's REST stores and its HTTP artifact repositories read the bearer token from the environment
# (``mlflow.utils.credentials.get_default_host_creds`` reads ``MLFLOW_TRACKING_TOKEN`` on every
# request, including in the artifact repositories' worker threads), and offer no per-client hook. So
# an adapter talking HTTP sets the variable to its own token for the duration of each call, under
# this lock, and restores it; adapters without a token take the lock too, so they never see another
# adapter's token. SQL-backed adapters never read it and never wait.
_TOKEN_ENV = "MLFLOW_TRACKING_TOKEN"
_TOKEN_LOCK = threading.RLock()


@contextmanager
def _bearer(token: str | None) -> Iterator[None]:
    with _TOKEN_LOCK:
        previous = os.environ.get(_TOKEN_ENV)
        if token is not None:
            os.environ[_TOKEN_ENV] = token
        try:
            yield
        finally:
            if token is not None:
                if previous is None:
                    os.environ.pop(_TOKEN_ENV, None)
                else:
                    os.environ[_TOKEN_ENV] = previous


class _BearerClient:
    """An ``MlflowClient`` whose every method call runs inside :func:`_bearer`."""

    def __init__(self, client: MlflowClient, token: str | None) -> None:
        self._client = client
        self._token = token

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with _bearer(self._token):
                return attr(*args, **kwargs)

        return call


class MlflowAdapter:
    """Experiments, runs, artifacts and registered models in one MLflow store.

    ``tracking_uri`` is a SQLAlchemy URL (``sqlite:///…``, ``postgresql+psycopg://…``) or the URL
    of an MLflow-compatible server (``http(s)://``, e.g. a ``mlharbor server``, with ``token`` its
    bearer token); ``artifact_root`` is where new experiments put their artifacts (a local folder or
    an object store URI; empty: the server chooses, e.g. ``mlflow-artifacts:/``).
    """

    def __init__(self, tracking_uri: str, artifact_root: str, token: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self._token = token
        self._http = tracking_uri.startswith(("http://", "https://"))
        self._client: MlflowClient | None = None
        self._lock = threading.Lock()
        self.autolog_flavors: set[str] = set()  # enabled by TrackingService.autolog

    @property
    def client(self) -> MlflowClient:
        with self._lock:
            if self._client is None:
                from mlflow import MlflowClient

                if self.tracking_uri.startswith("sqlite:///"):
                    _prepare_sqlite(Path(self.tracking_uri.removeprefix("sqlite:///")), self.artifact_root)
                client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
                # typed as the client it wraps: the same methods, each called with this adapter's token
                self._client = cast("MlflowClient", _BearerClient(client, self._token)) if self._http else client
            return self._client

    def _credentials(self) -> contextlib.AbstractContextManager[None]:
        """What MLflow calls made outside ``client`` (artifact downloads) run inside."""
        return _bearer(self._token) if self._http else contextlib.nullcontext()

    # --- experiments and runs ------------------------------------------------------------------

    def experiment_id(self, name: str, create: bool = True) -> str:
        """The id of experiment ``name``, created (with its own artifact folder) when missing."""
        try:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            if not create:
                raise NotFound(f"experiment {name} does not exist")
            slug = re.sub(r"[^a-zA-Z0-9_.-]", "_", name)[:80]
            location = join_uri(self.artifact_root, f"{slug}-{uuid.uuid4().hex[:8]}") if self.artifact_root else None
            return str(self.client.create_experiment(name, artifact_location=location))
        except NotFound:
            raise
        except Exception as exc:
            # two processes creating the same experiment: the loser finds the winner's
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            raise _translate(exc, f"experiment {name}") from exc

    def ensure_experiment(self, name: str, tags: dict[str, str]) -> tuple[str, bool]:
        """Create experiment ``name`` (or restore it when deleted) and set ``tags``; (id, created)."""
        found = self.client.get_experiment_by_name(name)
        created = found is None
        if found is not None and found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
            created = True
        experiment_id = self.experiment_id(name)
        for key, value in tags.items():
            self.client.set_experiment_tag(experiment_id, key, value)
        return experiment_id, created

    def experiment_tags(self, name: str) -> dict[str, str] | None:
        """The tags of an active experiment ``name``; None when there is none."""
        found = self.client.get_experiment_by_name(name)
        if found is None or found.lifecycle_stage == "deleted":
            return None
        return dict(found.tags)

    def delete_experiment(self, name: str) -> bool:
        """Delete experiment ``name`` (MLflow keeps it restorable); False when there was none."""
        found = self.client.get_experiment_by_name(name)
        if found is None or found.lifecycle_stage == "deleted":
            return False
        self.client.delete_experiment(found.experiment_id)
        return True

    def delete_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model(name)
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" not in str(getattr(exc, "error_code", "")):
                raise _translate(exc, f"registered model {name}") from exc

    def create_run(self, experiment: str, run_name: str | None, tags: dict[str, str]) -> RunRecord:
        try:
            run = self.client.create_run(self.experiment_id(experiment), run_name=run_name, tags=tags)
        except (NotFound, InvalidArgument):
            raise
        except Exception as exc:
            raise _translate(exc, f"run in {experiment}") from exc
        return self._record(run, experiment)

    def log_batch(self, run_id: str, metrics: Sequence[MetricPoint] = (), params: dict[str, str] | None = None,
                  tags: dict[str, str] | None = None) -> None:
        """Log everything in as few calls as MLflow's batch limits allow (1,000 metrics a call)."""
        from mlflow.entities import Metric, Param, RunTag

        params_l = [Param(k, str(v)) for k, v in (params or {}).items()]
        tags_l = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        metrics_l = [Metric(m.key, m.value, m.timestamp_ms, m.step) for m in metrics]
        try:
            while metrics_l or params_l or tags_l:
                self.client.log_batch(run_id, metrics=metrics_l[:MAX_BATCH_METRICS],
                                      params=params_l[:MAX_BATCH_PARAMS], tags=tags_l[:MAX_BATCH_TAGS])
                metrics_l = metrics_l[MAX_BATCH_METRICS:]
                params_l, tags_l = params_l[MAX_BATCH_PARAMS:], tags_l[MAX_BATCH_TAGS:]
        except Exception as exc:
            raise _translate(exc, f"run {run_id}") from exc

    def log_inputs(self, run_id: str, datasets: Iterable[dict[str, str]]) -> None:
        """Record datasets (``name``, ``digest``, ``source_type``, ``source``, ``context``) as run inputs."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(Dataset(name=d["name"], digest=d["digest"], source_type=d["source_type"],
                                 source=d["source"], schema=d.get("schema"), profile=d.get("profile")),
                         tags=[InputTag("mlflow.data.context", d.get("context", "training"))])
            for d in datasets
        ]
        if inputs:
            self.client.log_inputs(run_id, datasets=inputs)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str) -> str:
        """Upload a folder under the run's artifacts; returns its artifact URI."""
        try:
            self.client.log_artifacts(run_id, str(local_dir), artifact_path)
        except Exception as exc:
            raise _translate(exc, f"artifacts of run {run_id}") from exc
        return join_uri(self.get_run(run_id).artifact_uri, artifact_path)

    def download(self, artifact_uri: str, dst: str | Path) -> Path:
        """Copy the artifacts at ``artifact_uri`` (a path, an object-store URI, ``runs:/…`` or
        ``mlflow-artifacts:/…``) into ``dst``; returns the local path.

        Over a SQL store, ``mlflow-artifacts:/p`` (what MLflow's server records for runs created
        through it) is read where that server keeps it: ``<artifact_root>/p``.
        """
        from mlflow.artifacts import download_artifacts

        uri = artifact_uri
        if not self._http and uri.startswith("runs:/"):
            run_id, _, path = uri.removeprefix("runs:/").partition("/")
            uri = self.get_run(run_id).artifact_uri
            uri = join_uri(uri, path) if path else uri
        if not self._http and uri.startswith("mlflow-artifacts:"):
            uri = join_uri(self.artifact_root, uri.removeprefix("mlflow-artifacts:").lstrip("/"))
        try:
            with self._credentials():
                return Path(download_artifacts(artifact_uri=uri, dst_path=str(dst), tracking_uri=self.tracking_uri))
        except Exception as exc:
            raise _translate(exc, f"artifacts at {artifact_uri}") from exc

    def get_run(self, run_id: str) -> RunRecord:
        try:
            run = self.client.get_run(run_id)
        except Exception as exc:
            raise _translate(exc, f"run {run_id}") from exc
        experiment = self.client.get_experiment(run.info.experiment_id)
        return self._record(run, experiment.name)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        return [MetricPoint(m.key, m.value, m.timestamp, m.step) for m in self.client.get_metric_history(run_id, key)]

    def search_runs(self, experiment: str, filter_string: str = "", max_results: int = 100) -> list[RunRecord]:
        """Runs of ``experiment``, newest first."""
        eid = self.experiment_id(experiment, create=False)
        try:
            runs = self.client.search_runs([eid], filter_string=filter_string, max_results=max_results,
                                           order_by=["attributes.start_time DESC"])
        except Exception as exc:
            raise _translate(exc, f"runs of {experiment}") from exc
        return [self._record(r, experiment) for r in runs]

    def experiments(self) -> list[str]:
        return sorted(e.name for e in self.client.search_experiments())

    @staticmethod
    def _record(run: Run, experiment: str) -> RunRecord:
        info, data = run.info, run.data
        inputs = [
            {"name": d.dataset.name, "source": d.dataset.source, "digest": d.dataset.digest,
             "source_type": d.dataset.source_type,
             "context": next((t.value for t in d.tags if t.key == "mlflow.data.context"), "")}
            for d in (run.inputs.dataset_inputs if run.inputs else [])
        ]
        return RunRecord(
            run_id=info.run_id, experiment=experiment, name=info.run_name or "", status=info.status,
            start_time=_time(info.start_time), end_time=_time(info.end_time), artifact_uri=info.artifact_uri,
            params=dict(data.params), metrics=dict(data.metrics), tags=dict(data.tags), inputs=inputs,
        )

    # --- registered models ---------------------------------------------------------------------

    def ensure_registered_model(self, name: str, description: str = "") -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(name, description=description or None)
            except MlflowException:
                self.client.get_registered_model(name)  # created concurrently: fine

    def create_model_version(self, name: str, source: str, run_id: str | None, description: str,
                             tags: dict[str, str]) -> int:
        try:
            mv = self.client.create_model_version(name, source=source, run_id=run_id, tags=tags,
                                                  description=description or None)
        except Exception as exc:
            raise _translate(exc, f"model {name}") from exc
        return int(mv.version)

    def set_alias(self, name: str, alias: str, version: int | None) -> None:
        """Point ``alias`` at ``version``, or remove it when ``version`` is None (idempotent)."""
        from mlflow.exceptions import MlflowException

        if version is not None:
            self.client.set_registered_model_alias(name, alias, str(version))
            return
        with contextlib.suppress(MlflowException):  # no such alias: already in the wanted state
            self.client.delete_registered_model_alias(name, alias)

    def aliases(self, name: str) -> dict[str, int]:
        model = self.client.get_registered_model(name)
        return {alias: int(version) for alias, version in (model.aliases or {}).items()}

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, str(version), key, value)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes (``flock``)."""
    import fcntl

    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def mlflow_server_app(engine: MlflowAdapter) -> Any:
    """MLflow's own server (an ASGI app: tracking, registry and artifact-proxy REST API) over this
    engine's stores. mlflow.server reads its stores from process environment variables, as the
    ``mlflow server`` command sets them, so one process serves one tracking store."""
    engine.client  # noqa: B018 - creates the database (from the template) before MLflow opens it
    os.environ["_MLFLOW_SERVER_FILE_STORE"] = engine.tracking_uri
    os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = engine.tracking_uri
    os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "true"
    os.environ["_MLFLOW_SERVER_ARTIFACT_DESTINATION"] = engine.artifact_root
    os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = "mlflow-artifacts:/"
    os.environ.setdefault("MLFLOW_SERVER_ALLOWED_HOSTS", "*")  # mlharbor's token auth guards every request
    import warnings

    with warnings.catch_warnings():
        # MLflow's app wraps its Flask app with starlette's WSGI middleware, which starlette deprecates
        warnings.filterwarnings("ignore", message=r"starlette\.middleware\.wsgi is deprecated")
        from mlflow.server.fastapi_app import create_fastapi_app

    return create_fastapi_app()


def _template_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mlharbor" / f"mlflow-{mlflow_version()}-tracking.db"


def _prepare_sqlite(path: Path, artifact_root: str) -> None:
    """Create a new SQLite tracking database from a migrated template.

    MLflow builds a new database by running its ~50 Alembic migrations, which takes several seconds;
    mlharbor does it once per MLflow version into a cached template and copies that (the copy is
    the same schema MLflow would have made). The default experiment's artifact folder is pointed
    at this workspace's artifact root.
    """
    import shutil
    import sqlite3

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    template = _template_path()
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(Path(str(template) + ".lock")):
            if not template.exists():
                from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

                building = template.with_suffix(f".{os.getpid()}.tmp")
                store = SqlAlchemyStore(f"sqlite:///{building}", str(template.parent / "mlruns-unused"))  # type: ignore[no-untyped-call]
                store.engine.dispose()
                os.replace(building, template)
            with _file_lock(Path(str(path) + ".lock")):
                if path.exists():
                    return
                partial = path.with_suffix(f".{os.getpid()}.tmp")
                shutil.copyfile(template, partial)
                with sqlite3.connect(partial) as conn:
                    conn.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                                 (join_uri(artifact_root, "0"),))
                conn.close()
                os.replace(partial, path)
    except OSError:
        return  # no writable cache: MLflow creates the database itself, only slower


AUTOLOG_FLAVORS = ("sklearn", "xgboost", "lightgbm")


def enable_autolog(flavors: Sequence[str]) -> list[str]:
    """Turn on MLflow autologging (params, metrics, no model artifacts: mlharbor logs models itself,
    safely) for the given flavors that are installed; returns the flavors enabled."""
    import importlib

    enabled = []
    for flavor in flavors:
        framework = {"sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm"}[flavor]
        try:
            importlib.import_module(framework)
            module = importlib.import_module(f"mlflow.{flavor}")
        except ImportError:
            continue
        with _quiet():
            module.autolog(log_models=False, log_datasets=False, silent=True)
        enabled.append(flavor)
    return enabled


@contextmanager
def fluent_run(tracking_uri: str, run_id: str) -> Iterator[None]:
    """Make ``run_id`` MLflow's active run (what autologging writes to) for the block; mlharbor then
    sets the run's final status itself."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.start_run(run_id=run_id)
    try:
        yield
    finally:
        mlflow.end_run()
        mlflow.set_tracking_uri(previous)


def save_pyfunc(path: Path, loader_module: str, data_path: Path, pip_requirements: list[str],
                input_example: Any, output_example: Any, metadata: dict[str, Any]) -> None:
    """Write an MLflow pyfunc model folder whose ``loader_module`` loads ``data_path``.

    Requirements are given explicitly, so MLflow does not infer them in a subprocess; the signature
    comes from the input example and the model's output on it.
    """
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    with _quiet():
        try:
            signature = infer_signature(input_example, output_example) if input_example is not None else None
            mlflow.pyfunc.save_model(
                str(path), loader_module=loader_module, data_path=str(data_path), pip_requirements=pip_requirements,
                signature=signature, input_example=input_example, metadata=metadata,
            )
        except MlflowException as exc:  # e.g. an input example that does not match the signature it implies
            raise InvalidArgument(f"cannot package the model with this input example: {exc.message} (pass a "
                                  "DataFrame, or a 2-D array, of a few rows of the model's input)") from None


@contextmanager
def _quiet() -> Iterator[None]:
    """Hide MLflow's progress chatter (INFO logs) and its schema hints while mlharbor packages a model;
    the signature it writes is unchanged."""
    import logging
    import warnings

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer column",
                                    category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


def load_pyfunc(path: Path) -> Any:
    """Load a pyfunc model folder (already verified by the caller)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path))
