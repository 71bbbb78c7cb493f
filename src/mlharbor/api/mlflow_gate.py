"""MLflow's own tracking, registry and artifact REST API, served by ``mlharbor server`` behind
mlharbor's token auth and permissions.

A plain ``mlflow`` client with ``MLFLOW_TRACKING_URI=http://server`` and ``MLFLOW_TRACKING_TOKEN=<an
mlharbor API token>`` works unchanged. Requests to MLflow's paths are authenticated by the same
middleware as every other route, then checked here before MLflow's app (``mlflow.server``) sees them:

* **reads** (GET, and MLflow's POST searches) need ``read``; everything else needs ``write`` — in the
  environment of the registered model named in the request (names are ``catalog.schema.model``), or
  the server target's environment for experiments, runs and artifacts; deletions of registered models
  and versions need ``manage``;
* the registry workflow cannot be bypassed: MLflow stage transitions and the ``champion`` /
  ``challenger`` aliases are refused (they follow approvals, ``mlharbor models …``);
* artifact paths and model-version sources are checked for traversal (``..`` segments, absolute
  paths, backslashes, encoded or double-encoded separators, local ``file:`` sources: the shapes of
  MLflow's past path-traversal CVEs) before MLflow's own checks;
* writes are audited (``mlflow.<METHOD> <path>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from starlette.concurrency import run_in_threadpool

from mlharbor.api.middleware import ASGIApp, Receive, Scope, Send, send_error
from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.catalog.service import catalog_environment
from mlharbor.core.actors import Actor
from mlharbor.core.names import parse_name
from mlharbor.errors import InvalidArgument, MlharborError, PermissionDenied, Unauthenticated

if TYPE_CHECKING:
    from mlharbor.workspace import Services

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow",
                   "/get-artifact", "/model-versions/get-artifact")
RESERVED_ALIASES = frozenset({"champion", "challenger"})
MAX_JSON_BODY = 16 * 1024 * 1024
_READ_SUFFIXES = ("/search", "/get", "/get-by-name", "/get-history", "/get-bulk", "/get-latest-versions",
                  "/get-download-uri", "/list", "/get-batch", "/alias")
_PATH_KEYS = ("path", "artifact_path", "file_path")
_ENCODED = re.compile(r"%(2e|2f|5c|00|25)", re.IGNORECASE)


def check_artifact_path(value: str, what: str = "artifact path") -> None:
    """InvalidArgument for a path that could leave its root."""
    decoded = unquote(value)
    if _ENCODED.search(decoded) or "\x00" in decoded:
        raise InvalidArgument(f"{what} {value!r} is encoded more than once")
    if "\\" in decoded or decoded.startswith("/") or re.match(r"^[A-Za-z]:", decoded):
        raise InvalidArgument(f"{what} {value!r} must be relative, with '/' separators")
    if any(part == ".." for part in decoded.split("/")):
        raise InvalidArgument(f"{what} {value!r} must not contain '..'")


def check_model_source(source: str) -> None:
    """A model version's source must be an MLflow URI or an object store, not a local path."""
    lowered = source.strip().lower()
    if not lowered or lowered.startswith(("file:", "/", "\\", ".")) or re.match(r"^[a-z]:[\\/]", lowered):
        raise InvalidArgument(f"model version source {source!r} must be runs:/, models:/, mlflow-artifacts:/ or "
                              "an object store URI, not a local path")
    for part in re.split(r"[/\\]", unquote(unquote(lowered))):
        if part == "..":
            raise InvalidArgument(f"model version source {source!r} must not contain '..'")
    if "#" in lowered or "?" in lowered:
        raise InvalidArgument(f"model version source {source!r} must not carry a query or fragment")


def required_permission(method: str, path: str) -> Permission:
    """What a request to MLflow's API needs (before looking at model names)."""
    if method in ("GET", "HEAD"):
        return Permission.READ
    if method == "POST" and path.rstrip("/").endswith(_READ_SUFFIXES) and "/alias" not in path:
        return Permission.READ
    if method == "DELETE" and ("/registered-models/delete" in path or "/model-versions/delete" in path):
        return Permission.MANAGE
    return Permission.WRITE


def _model_name(body: dict[str, Any], query: dict[str, str]) -> str | None:
    for source in (body, query):
        name = source.get("name") or source.get("model_name")
        if isinstance(name, str) and name:
            return name
    return None


class MlflowGate:
    """Pure ASGI: MLflow's paths go to MLflow's app after the checks above; the rest to ``app``."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        self._mlflow: ASGIApp | None = None

    def _mlflow_app(self) -> ASGIApp:
        if self._mlflow is None:
            from mlharbor.tracking.mlflow_adapter import mlflow_server_app

            engine = self.services.tracking_engine()
            self._mlflow = mlflow_server_app(engine)
        return self._mlflow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(MLFLOW_PREFIXES):
            await self.app(scope, receive, send)
            return
        request_id = str(scope.get("state", {}).get("request_id", ""))
        actor = scope.get("state", {}).get("actor")
        try:
            if not isinstance(actor, Actor):
                raise Unauthenticated("missing API token: set MLFLOW_TRACKING_TOKEN to an mlharbor token")
            body, receive = await _buffer_json(scope, receive)
            await run_in_threadpool(self._authorize, actor, scope, body)
            app = await run_in_threadpool(self._mlflow_app)
        except MlharborError as exc:
            await send_error(send, exc, request_id)
            return
        await app(scope, receive, send)

    def _authorize(self, actor: Actor, scope: Scope, body: dict[str, Any]) -> None:
        method, path = str(scope["method"]), str(scope["path"])
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        for key in _PATH_KEYS:
            for source in (query, body):
                value = source.get(key)
                if isinstance(value, str) and value:
                    check_artifact_path(value, key)
        if "/mlflow-artifacts/artifacts/" in path:
            check_artifact_path(path.split("/mlflow-artifacts/artifacts/", 1)[1], "artifact path")
        if "/model-versions/transition-stage" in path:
            raise PermissionDenied("MLflow stage transitions are managed by mlharbor's workflow: "
                                   "use mlharbor models request / approve")
        alias = body.get("alias") or query.get("alias")
        if "/registered-models/alias" in path and method != "GET" and str(alias).lower() in RESERVED_ALIASES:
            raise PermissionDenied(f"alias {alias!r} follows the Production/Staging stages; it is set by approvals")
        if "/model-versions/create" in path:
            check_model_source(str(body.get("source", "")))
        permission = required_permission(method, path)
        name = _model_name(body, query) if "registered-models" in path or "model-versions" in path else None
        settings = self.services.settings
        env = settings.current.environment
        if name is not None:
            env = catalog_environment(settings, parse_name(name, "registered model name"))
        resource = f"model:{name}" if name else f"mlflow:{path}"
        self.services.auth.authorize(actor, permission, env, f"mlflow.{method}", resource)
        if permission is not Permission.READ:
            with self.services.store.transaction() as tx:
                record(tx, actor, f"mlflow.{method}", resource, {"path": path})
                if path.endswith("/runs/log-inputs"):
                    _record_input_lineage(tx, actor, body)


async def _buffer_json(scope: Scope, receive: Receive) -> tuple[dict[str, Any], Receive]:
    """Read a JSON body (to look at names and paths) and replay it to the app; other bodies stream."""
    headers = dict(scope.get("headers") or [])
    if b"json" not in headers.get(b"content-type", b"") or scope["method"] in ("GET", "HEAD"):
        return {}, receive
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise InvalidArgument(f"JSON request bodies are limited to {MAX_JSON_BODY // (1024 * 1024)} MB")
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    raw = b"".join(chunks)
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        raise InvalidArgument("the request body is not valid JSON") from None
    replayed = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return (parsed if isinstance(parsed, dict) else {}), replay


def _record_input_lineage(tx: Any, actor: Actor, body: dict[str, Any]) -> None:
    """Lineage ``table@version → run`` for each ``delta`` dataset input a client logs (as mlharbor's own
    runs do), so runs tracked through the server are in the lineage graph too."""
    from mlharbor.lineage.service import LineageService, table_node
    from mlharbor.tracking.runs import TRAINED_ON, run_node

    run_id = body.get("run_id")
    sources = []
    for item in body.get("datasets") or []:
        dataset = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(dataset, dict) or dataset.get("source_type") != "delta":
            continue
        try:
            source = json.loads(str(dataset.get("source", "")))
            sources.append(table_node(str(parse_name(str(source["table"]))), int(source["version"])))
        except (ValueError, KeyError, TypeError, MlharborError):
            continue  # not one of ours: MLflow keeps it, lineage does not
    if isinstance(run_id, str) and run_id and sources:
        LineageService.record(tx, actor, sources, run_node(run_id), TRAINED_ON)
