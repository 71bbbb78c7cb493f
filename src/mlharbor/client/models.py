"""``RestModels`` and ``RestWebhooks``: the model registry through a server's ``/api/v1/models`` routes.

The same method names and return types as :class:`~mlharbor.registry.models.ModelStore`; the server
runs every call as the token's principal, so permissions, audit, events and compliance checks are the
local ones, and errors come back as the same mlharbor classes. Versions listed (``versions``, and the
version returned by ``approve``, ``rollback``, ``update_version``) carry no manifest; ``get_version``
does.

``log_model`` packages the model here, logs it to a run through the server's MLflow API (runs and
the artifact proxy, with the same token) and asks the server to register it; the server hashes the
files it stored itself. ``load_model`` downloads a version through the proxy and verifies it against
the manifest the server recorded before deserialising anything.
"""

from __future__ import annotations

import builtins
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlharbor.core.entities import (
    EventDelivery,
    ModelComment,
    ModelStage,
    ModelVersionInfo,
    RegisteredModelInfo,
    RequestStatus,
    StageChange,
    TransitionRequest,
    Webhook,
)
from mlharbor.errors import InvalidArgument, PermissionDenied
from mlharbor.registry.models import (
    MODEL_ARTIFACT,
    manifest_mismatch,
    model_reference,
    package_logged_model,
)
from mlharbor.tracking.loader import load_payload
from mlharbor.tracking.packaging import PAYLOAD
from mlharbor.tracking.runs import training_set_inputs, training_set_versions

if TYPE_CHECKING:
    from mlharbor.client.http import RestClient
    from mlharbor.tracking.loader import PackagedModel
    from mlharbor.tracking.mlflow_adapter import MlflowAdapter


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _name(name: str) -> str:
    return quote(str(name), safe="")


def _number(version: int | str) -> int:
    try:
        return int(version)
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid version {version!r}: a version number is required here") from None


def _model(d: dict[str, Any]) -> RegisteredModelInfo:
    return RegisteredModelInfo(
        name=d["name"], owner=d["owner"], description=d["description"], tags=d["tags"], created_by=d["created_by"],
        created_at=datetime.fromisoformat(d["created_at"]), updated_at=datetime.fromisoformat(d["updated_at"]),
        checks=d["checks"],
    )


def _version(d: dict[str, Any]) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=d["name"], version=d["version"], stage=ModelStage(d["stage"]), source=d["source"], run_id=d["run_id"],
        description=d["description"], manifest=d.get("manifest") or {}, feature_spec=d["feature_spec"],
        flavor=d["flavor"], created_by=d["created_by"], created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]), tags=d["tags"], evaluation=d["evaluation"],
        checks=d["checks"],
    )


def _request(d: dict[str, Any]) -> TransitionRequest:
    return TransitionRequest(
        id=d["id"], name=d["name"], version=d["version"], to_stage=ModelStage(d["to_stage"]),
        status=RequestStatus(d["status"]), requested_by=d["requested_by"],
        requested_at=datetime.fromisoformat(d["requested_at"]), comment=d["comment"], decided_by=d["decided_by"],
        decided_at=_dt(d["decided_at"]), decision_comment=d["decision_comment"],
    )


def _change(d: dict[str, Any]) -> StageChange:
    return StageChange(d["name"], d["version"], ModelStage(d["from_stage"]), ModelStage(d["to_stage"]), d["actor"],
                       datetime.fromisoformat(d["time"]), d["comment"], d["request_id"])


def _comment(d: dict[str, Any]) -> ModelComment:
    return ModelComment(d["id"], d["name"], d["version"], d["author"], datetime.fromisoformat(d["time"]), d["text"])


def _webhook(d: dict[str, Any]) -> Webhook:
    return Webhook(d["id"], d["name"], d["url"], tuple(d["events"]), d["model"], d["active"], d["created_by"],
                   datetime.fromisoformat(d["created_at"]))


def _delivery(d: dict[str, Any]) -> EventDelivery:
    return EventDelivery(
        id=d["id"], subscriber=d["subscriber"], event_id=d["event_id"], status=d["status"], attempts=d["attempts"],
        next_attempt_at=datetime.fromisoformat(d["next_attempt_at"]), last_error=d["last_error"],
        last_status_code=d["last_status_code"], created_at=datetime.fromisoformat(d["created_at"]),
        delivered_at=_dt(d["delivered_at"]),
    )


class RestWebhooks:
    """Webhooks through ``/api/v1/webhooks`` (the methods of :class:`~mlharbor.registry.webhooks.WebhookService`)."""

    def __init__(self, client: RestClient) -> None:
        self._c = client

    def create(self, name: str, url: str, events_: builtins.list[str] | None = None, model: str | None = None,
               secret: str | None = None) -> tuple[Webhook, str]:
        """Register a webhook; returns it and its signing secret (shown only now)."""
        body = {"name": name, "url": url, "events": list(events_ or ()), "model": model, "secret": secret}
        d = self._c.json("POST", "/api/v1/webhooks", json=body)
        return _webhook(d), str(d["secret"])

    def list(self) -> builtins.list[Webhook]:
        """Webhooks of models you may write, and workspace-wide ones if you manage everything."""
        return [_webhook(d) for d in self._c.json("GET", "/api/v1/webhooks")]

    def get(self, hook_id: str) -> Webhook:
        return _webhook(self._c.json("GET", f"/api/v1/webhooks/{_name(hook_id)}"))

    def delete(self, hook_id: str) -> None:
        self._c.request("DELETE", f"/api/v1/webhooks/{_name(hook_id)}")

    def deliveries(self, hook_id: str, status: str | None = None, limit: int = 100) -> builtins.list[EventDelivery]:
        """The delivery log of a webhook, newest event first."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        return [_delivery(d) for d in self._c.json("GET", f"/api/v1/webhooks/{_name(hook_id)}/deliveries",
                                                   params=params)]


class RestModels:
    """``ws.models`` of a connected workspace: the registry workflow through the server."""

    def __init__(self, client: RestClient) -> None:
        self._c = client

    @staticmethod
    def _path(name: str, suffix: str = "") -> str:
        return f"/api/v1/models/{_name(name)}{suffix}"

    @property
    def webhooks(self) -> RestWebhooks:
        """Webhooks receiving registry events (create, list, delete, delivery log)."""
        return RestWebhooks(self._c)

    # --- artifacts: MLflow's API on the server, registered by the server ---------------------------

    def _mlflow(self) -> MlflowAdapter:
        from mlharbor.tracking.mlflow_adapter import MlflowAdapter

        return MlflowAdapter(self._c.url, "", token=self._c.token)  # the server chooses artifact locations

    def log_model(self, model: Any, name: str, *, training_set: Any = None, input_example: Any = None,
                  run: Any = None, experiment: str | None = None, description: str = "",
                  tags: dict[str, str] | None = None, method: str = "predict") -> ModelVersionInfo:
        """Package ``model`` here and register it through the server as the next version of ``name``.

        ``run`` is a run id (or an object with ``run_id``) to log into; without one a run is started
        in ``experiment`` (default: the model name) and ended. ``training_set`` gives the feature
        spec, the input example when none is given, the run's dataset inputs and the lineage (which
        the server records). Pickle-based formats are refused here. Returns the new version (stage
        None, with the manifest the server computed from the files it stored).
        """
        mlflow = self._mlflow()
        run_id = None if run is None else str(getattr(run, "run_id", run))
        own = run_id is None
        if run_id is None:
            from mlharbor.tracking.environment import run_environment_tags

            principal = str(self._c.json("GET", "/api/v1/whoami")["principal"])
            run_tags = {**run_environment_tags(Path.cwd()), "mlharbor.principal": principal, "mlflow.user": principal}
            run_id = mlflow.create_run(experiment or name, f"log {name}", run_tags).run_id
        try:
            if training_set is not None:
                mlflow.log_inputs(run_id, training_set_inputs(training_set))
            with tempfile.TemporaryDirectory(prefix="mlharbor-log-") as tmp:
                packaged = package_logged_model(
                    model, Path(tmp) / MODEL_ARTIFACT, name, record=mlflow.get_run(run_id), training_set=training_set,
                    input_example=input_example, description=description, tags=tags, allow_pickle=False,
                    method=method)
                mlflow.log_artifacts(run_id, packaged.path, MODEL_ARTIFACT)
        except BaseException:
            if own:
                mlflow.end_run(run_id, "FAILED")
            raise
        if own:
            mlflow.end_run(run_id)
        body = {"run_id": run_id, "artifact_path": MODEL_ARTIFACT, "description": description,
                "tags": {str(k): str(v) for k, v in (tags or {}).items()}, "flavor": packaged.flavor,
                "trained_on": training_set_versions(training_set)}
        return _version(self._c.json("POST", self._path(name, "/versions"), json=body))

    def load_model(self, uri_or_name: str, version: int | str | None = None) -> PackagedModel:
        """Load ``models:/name@alias`` / ``models:/name/3``, or ``name`` with ``version`` (number, alias or
        stage; default champion): download it through the server, verify every file against the
        SHA-256 manifest the server recorded (PermissionDenied on any difference), then deserialise it
        (pickle-based formats refused)."""
        info = self.get_version(*model_reference(uri_or_name, version))
        source = info.source
        if not source.startswith(("mlflow-artifacts:", "runs:/")) and info.run_id:
            source = f"runs:/{info.run_id}/{MODEL_ARTIFACT}"  # a version logged on the server's machine
        with tempfile.TemporaryDirectory(prefix="mlharbor-load-") as tmp:
            local = self._mlflow().download(source, Path(tmp) / MODEL_ARTIFACT)
            mismatch = manifest_mismatch(local, info)
            if mismatch:
                raise PermissionDenied(mismatch)
            return load_payload(local / "data" / PAYLOAD, False)

    # --- models and versions -------------------------------------------------------------------

    def list_models(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[RegisteredModelInfo]:
        """Registered models you may read, by name."""
        params = {k: v for k, v in {"catalog": catalog, "schema": schema}.items() if v is not None}
        return [_model(d) for d in self._c.json("GET", "/api/v1/models", params=params)]

    def get_model(self, name: str) -> RegisteredModelInfo:
        return _model(self._c.json("GET", self._path(name)))

    def update_model(self, name: str, description: str | None = None, tags: dict[str, str] | None = None,
                     checks: dict[str, Any] | None = None) -> RegisteredModelInfo:
        """Change a model's description, tags or compliance-check configuration."""
        body = {k: v for k, v in {"description": description, "tags": tags, "checks": checks}.items()
                if v is not None}
        return _model(self._c.json("PATCH", self._path(name), json=body))

    def versions(self, name: str, stage: ModelStage | str | None = None) -> builtins.list[ModelVersionInfo]:
        """The model's versions, oldest first (without manifests; ``get_version`` has them)."""
        params = {} if stage is None else {"stage": str(stage)}
        return [_version(d) for d in self._c.json("GET", self._path(name, "/versions"), params=params)]

    def get_version(self, name: str, version: int | str) -> ModelVersionInfo:
        """A version by number, or by alias (``champion``, ``challenger``) or stage name."""
        return _version(self._c.json("GET", self._path(name, f"/versions/{_name(str(version))}")))

    def update_version(self, name: str, version: int, **fields: Any) -> ModelVersionInfo:
        """Set a version's description or tags (evaluation and checks reports are the platform's)."""
        return _version(self._c.json("PATCH", self._path(name, f"/versions/{_number(version)}"), json=fields))

    def history(self, name: str, version: int | None = None) -> builtins.list[StageChange]:
        params = {} if version is None else {"version": version}
        return [_change(d) for d in self._c.json("GET", self._path(name, "/history"), params=params)]

    def rollback(self, name: str, comment: str = "") -> ModelVersionInfo:
        """Return Production to the version that held it before the current one (which is archived)."""
        return _version(self._c.json("POST", self._path(name, "/rollback"), json={"comment": comment}))

    # --- transition requests -------------------------------------------------------------------

    def request_transition(self, name: str, version: int, stage: ModelStage | str,
                           comment: str = "") -> TransitionRequest:
        """Ask for ``version`` to move to ``stage``; the server runs the compliance checks on it."""
        body = {"stage": str(stage), "comment": comment}
        return _request(self._c.json("POST", self._path(name, f"/versions/{_number(version)}/requests"), json=body))

    def requests(self, name: str | None = None, version: int | None = None,
                 status: RequestStatus | str | None = RequestStatus.PENDING) -> builtins.list[TransitionRequest]:
        """Transition requests (default: pending ones) of one model, or of every model you may read."""
        params: dict[str, Any] = {"status": "all" if status is None else str(status)}
        if name is not None:
            params["name"] = name
        if version is not None:
            params["version"] = version
        return [_request(d) for d in self._c.json("GET", "/api/v1/model-requests", params=params)]

    def _decide(self, request_id: str, verb: str, body: dict[str, Any]) -> Any:
        if not isinstance(request_id, str) or not request_id:
            raise InvalidArgument("a transition request id is required")
        return self._c.json("POST", f"/api/v1/model-requests/{_name(request_id)}/{verb}", json=body)

    def approve(self, request_id: str, comment: str = "", override_reason: str | None = None) -> ModelVersionInfo:
        """Approve a pending request and carry it out; returns the moved version."""
        return _version(self._decide(request_id, "approve", {"comment": comment, "override_reason": override_reason}))

    def reject(self, request_id: str, comment: str = "") -> TransitionRequest:
        return _request(self._decide(request_id, "reject", {"comment": comment}))

    def cancel(self, request_id: str, comment: str = "") -> TransitionRequest:
        return _request(self._decide(request_id, "cancel", {"comment": comment}))

    # --- checks, card, comments ----------------------------------------------------------------

    def run_checks(self, name: str, version: int | str, request_id: str | None = None) -> dict[str, Any]:
        """Run the model's compliance checks on a version (on the server) and store the report on it."""
        number = version if isinstance(version, int) else self.get_version(name, version).version  # alias
        report: dict[str, Any] = self._c.json("POST", self._path(name, f"/versions/{number}/checks"),
                                              json={"request_id": request_id})
        return report

    def card(self, name: str, version: int | str) -> str:
        """The model card of a version as markdown."""
        return self._c.request("GET", self._path(name, f"/versions/{_name(str(version))}/card")).text

    def set_card_fields(self, name: str, version: int, **fields: str) -> ModelVersionInfo:
        """Fill the card's human-written fields (``intended_use``, ``limitations``,
        ``ethical_considerations``, ``out_of_scope_use``)."""
        return _version(self._c.json("POST", self._path(name, f"/versions/{_number(version)}/card"), json=fields))

    def comment(self, name: str, version: int, text: str) -> ModelComment:
        return _comment(self._c.json("POST", self._path(name, f"/versions/{_number(version)}/comments"),
                                     json={"text": text}))

    def comments(self, name: str, version: int) -> builtins.list[ModelComment]:
        return [_comment(d) for d in self._c.json("GET", self._path(name, f"/versions/{_number(version)}/comments"))]
