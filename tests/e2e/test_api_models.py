"""The model registry through the server: ``Workspace.connect(url, token).models`` is the local registry
API over REST (uvicorn on 127.0.0.1), with the same permissions, checks, events and error classes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from mlharbor.api.app import create_app
from mlharbor.client import RestModels
from mlharbor.config import load_settings
from mlharbor.core.entities import ModelStage, RequestStatus
from mlharbor.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from mlharbor.registry import events
from mlharbor.tracking.hashing import hash_tree
from mlharbor.workspace import Services, Workspace

pytestmark = pytest.mark.e2e

MODEL = "dev.ml.churn"


@dataclass
class Registry:
    url: str
    services: Services
    tokens: dict[str, str]
    manifest: dict[str, str]

    def connect(self, who: str) -> Workspace:
        return Workspace.connect(self.url, token=self.tokens[who])

    def headers(self, who: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def _fitted(seed: int) -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.random((40, 3)), columns=["a", "b", "c"])
    return LogisticRegression().fit(x, (x["a"] > 0.5).astype(int)), x


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, serve_app: Any) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("models-api")
    (root / "mlharbor.toml").write_text("[policy]\nwebhook_allow_private = true\n")
    with Workspace.open(root) as local:  # artifacts are logged locally; the registry is used through the server
        for seed in (0, 1):
            model, x = _fitted(seed)
            local.models.log_model(model, MODEL, input_example=x.head(3), description=f"churn v{seed + 1}")
        manifest = local.models.get_version(MODEL, 1).manifest
    services = Services.build(load_settings(root, environ={}))
    admin = services.auth.bootstrap_admin()
    assert admin is not None
    with serve_app(create_app(services=services)) as url:
        tokens = {"admin": admin}
        with Workspace.connect(url, token=admin) as ws:
            for name, role in (("dana", "data_scientist"), ("mel", "ml_engineer"), ("vic", "viewer")):
                ws.access.create_principal(name)
                ws.access.grant(name, role)
                tokens[name] = ws.access.create_token("api", principal=name)[1]
        yield Registry(url, services, tokens, manifest)
    services.close()


def test_models_and_versions_read_and_update(registry: Registry) -> None:
    with registry.connect("dana") as ws:
        models = ws.models
        assert isinstance(models, RestModels)
        assert [m.name for m in models.list_models()] == [MODEL]
        assert models.list_models(catalog="prod") == []
        assert models.get_model(MODEL).name == MODEL
        listed = models.versions(MODEL)
        assert [(v.version, v.stage, v.description) for v in listed] == [
            (1, ModelStage.NONE, "churn v1"), (2, ModelStage.NONE, "churn v2")]
        assert all(v.manifest == {} for v in listed)  # the manifest only comes with a single version
        one = models.get_version(MODEL, 1)
        assert one.manifest == registry.manifest and one.flavor == "sklearn"
        assert one.tags["mlharbor.serialization"] == "skops"
        assert models.get_version(MODEL, "2").version == 2
        assert [v.version for v in models.versions(MODEL, stage="none")] == [1, 2]

        updated = models.update_model(MODEL, description="churn risk", tags={"team": "growth"})
        assert (updated.description, updated.tags) == ("churn risk", {"team": "growth"})
        assert models.get_model(MODEL).description == "churn risk"
        v2 = models.update_version(MODEL, 2, description="churn v2, tuned", tags={**listed[1].tags, "k": "v"})
        assert v2.description == "churn v2, tuned" and v2.tags["k"] == "v"
        with pytest.raises(InvalidArgument, match="evaluation"):
            models.update_version(MODEL, 2, evaluation={"blessed": True})  # written by the platform only
        with pytest.raises(InvalidArgument, match="unknown checks"):
            models.update_model(MODEL, checks={"no_such_check": {}})
        with pytest.raises(NotFound):
            models.get_version(MODEL, 99)
        with pytest.raises(NotFound):
            models.get_model("dev.ml.missing")
        with pytest.raises(InvalidArgument, match=r"catalog\.schema\.name"):
            models.get_model("churn")
    with registry.connect("vic") as viewer, pytest.raises(PermissionDenied):
        viewer.models.update_model(MODEL, description="mine now")


def test_promotion_workflow_through_the_server(registry: Registry) -> None:
    with registry.connect("dana") as dana, registry.connect("mel") as mel:
        ds, mle = dana.models, mel.models
        request = ds.request_transition(MODEL, 1, "Production", "ship it")
        assert (request.status, request.to_stage, request.requested_by) == (
            RequestStatus.PENDING, ModelStage.PRODUCTION, "dana")
        checks = ds.get_version(MODEL, 1).checks  # run by the server when the request was made
        assert checks is not None and checks["passed"] and checks["request_id"] == request.id
        assert {r["name"] for r in checks["results"]} >= {"loads_and_predicts", "artifact_hashes_valid"}
        assert [r.id for r in ds.requests(MODEL)] == [request.id]
        assert [r.id for r in mle.requests()] == [request.id]
        with pytest.raises(PermissionDenied):
            ds.approve(request.id)
        moved = mle.approve(request.id, "looks good")
        assert (moved.version, moved.stage) == (1, ModelStage.PRODUCTION)
        assert ds.get_version(MODEL, "champion").version == 1
        with pytest.raises(Conflict, match="already approved"):
            mle.approve(request.id)

        second = ds.request_transition(MODEL, 2, ModelStage.PRODUCTION)
        assert mle.approve(second.id).stage is ModelStage.PRODUCTION
        assert ds.get_version(MODEL, 1).stage is ModelStage.ARCHIVED
        assert ds.get_version(MODEL, "Production").version == 2
        history = ds.history(MODEL)
        assert [(c.version, c.from_stage, c.to_stage) for c in history] == [
            (1, ModelStage.NONE, ModelStage.PRODUCTION), (1, ModelStage.PRODUCTION, ModelStage.ARCHIVED),
            (2, ModelStage.NONE, ModelStage.PRODUCTION)]
        assert history[0].request_id == request.id and history[0].actor == "mel"
        assert [c.version for c in ds.history(MODEL, version=2)] == [2]

        with pytest.raises(PermissionDenied):
            ds.rollback(MODEL)
        back = mle.rollback(MODEL, "v2 misbehaves")
        assert (back.version, back.stage) == (1, ModelStage.PRODUCTION)
        assert ds.get_version(MODEL, "champion").version == 1
        assert ds.get_version(MODEL, 2).stage is ModelStage.ARCHIVED

        staged = ds.request_transition(MODEL, 2, "Staging", "try again")
        rejected = mle.reject(staged.id, "not yet")
        assert (rejected.status, rejected.decided_by, rejected.decision_comment) == (
            RequestStatus.REJECTED, "mel", "not yet")
        with pytest.raises(NotFound):
            ds.get_version(MODEL, "challenger")
        again = ds.request_transition(MODEL, 2, "Staging")
        assert ds.cancel(again.id).status is RequestStatus.CANCELLED
        with pytest.raises(Conflict):
            mle.approve(again.id)
        assert ds.requests(MODEL) == []
        assert len(ds.requests(MODEL, status=None)) == 4
        assert [r.id for r in ds.requests(MODEL, version=2, status="rejected")] == [staged.id]

        with pytest.raises(InvalidArgument, match="invalid stage"):
            ds.request_transition(MODEL, 2, "Prod")
        with pytest.raises(InvalidArgument, match="model name"):
            ds.request_transition("churn", 2, "Staging")
        with pytest.raises(Conflict, match="already in Production"):
            ds.request_transition(MODEL, 1, "Production")
        with pytest.raises(NotFound):
            mle.approve("0" * 32)
        with pytest.raises(NotFound):
            mle.reject("no_such_request")


def test_checks_card_and_comments(registry: Registry) -> None:
    with registry.connect("dana") as ws:
        report = ws.models.run_checks(MODEL, 2)
        assert report["passed"] and report["request_id"] is None
        assert ws.models.get_version(MODEL, 2).checks == report
        assert ws.models.run_checks(MODEL, "1")["passed"]
        info = ws.models.set_card_fields(MODEL, 2, intended_use="Rank churn risk.", limitations="Monthly plans.")
        assert info.tags["card.intended_use"] == "Rank churn risk."
        card = ws.models.card(MODEL, 2)
        assert "# Model card: dev.ml.churn v2" in card and "Rank churn risk." in card and "Monthly plans." in card
        assert "# Model card: dev.ml.churn v1" in ws.models.card(MODEL, 1)
        with pytest.raises(InvalidArgument, match="colour"):
            ws.models.set_card_fields(MODEL, 2, colour="red")
        added = ws.models.comment(MODEL, 2, "latency looks fine")
        assert (added.author, added.version, added.text) == ("dana", 2, "latency looks fine")
        assert [c.text for c in ws.models.comments(MODEL, 2)] == ["latency looks fine"]
        with pytest.raises(InvalidArgument):
            ws.models.comment(MODEL, 2, "")
        assert ws.models.comments(MODEL, 99) == []
    with registry.connect("vic") as viewer:
        assert "Rank churn risk." in viewer.models.card(MODEL, 2)
        with pytest.raises(PermissionDenied):
            viewer.models.comment(MODEL, 2, "a viewer only reads")


class _Receiver:
    """A webhook receiver on 127.0.0.1 answering 204."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_through_the_server(registry: Registry) -> None:
    with registry.connect("mel") as mel, registry.connect("dana") as dana, _Receiver() as receiver:
        hooks = mel.models.webhooks
        hook, secret = hooks.create("ci", receiver.url, [events.COMMENT_ADDED], MODEL)
        assert len(secret) >= 16 and (hook.model_name, hook.events, hook.created_by) == (
            MODEL, (events.COMMENT_ADDED,), "mel")
        assert hook.id in {h.id for h in hooks.list()}
        assert hooks.get(hook.id) == hook
        dana.models.comment(MODEL, 1, "ping the hook")
        registry.services.dispatcher().run_once()
        log = hooks.deliveries(hook.id)
        assert [(d.status, d.attempts, d.last_status_code) for d in log] == [("delivered", 1, 204)]
        assert hooks.deliveries(hook.id, status="failed") == []
        assert len(receiver.bodies) == 1
        assert json.loads(receiver.bodies[0])["kind"] == events.COMMENT_ADDED
        with pytest.raises(InvalidArgument, match="malformed"):
            hooks.create("bad", "http://[::1", model=MODEL)
        with pytest.raises(InvalidArgument, match="unknown event kinds"):
            hooks.create("bad", receiver.url, ["nope"], MODEL)
        with pytest.raises(PermissionDenied):  # a workspace-wide webhook needs manage everywhere
            hooks.create("all", receiver.url)
        hooks.delete(hook.id)
        with pytest.raises(NotFound):
            hooks.get(hook.id)
        with pytest.raises(NotFound):
            hooks.deliveries("0" * 32)
    with registry.connect("vic") as viewer, pytest.raises(PermissionDenied):
        viewer.models.webhooks.create("v", "http://127.0.0.1:9/x", model=MODEL)


def _stored(registry: Registry, source: str) -> Path:
    """Where the server keeps the files of a version's source."""
    if not source.startswith("mlflow-artifacts:/"):
        return Path(source)  # an experiment created on the server's machine, with its own folder
    return Path(registry.services.settings.current.artifact_root) / source.removeprefix("mlflow-artifacts:/")


def test_log_and_load_through_the_server(registry: Registry) -> None:
    model, x = _fitted(7)
    with registry.connect("dana") as ws:
        # a new experiment, created through the server: its artifacts go through the server's proxy
        info = ws.models.log_model(model, MODEL, input_example=x.head(3), description="logged remotely",
                                   tags={"via": "rest"}, experiment="remote-churn")
        assert (info.created_by, info.stage, info.flavor, info.description) == (
            "dana", ModelStage.NONE, "sklearn", "logged remotely")
        assert info.tags["via"] == "rest" and info.tags["mlharbor.serialization"] == "skops"
        assert info.source.startswith("mlflow-artifacts:/") and info.run_id
        stored = _stored(registry, info.source)
        assert info.manifest == hash_tree(stored) and "data/payload/mlharbor_model.json" in info.manifest
        assert ws.models.get_version(MODEL, info.version).manifest == info.manifest
        loaded = ws.models.load_model(MODEL, info.version)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        # versions logged on the server's machine load through the proxy too
        first = ws.models.load_model(f"models:/{MODEL}/1")
        np.testing.assert_array_equal(first.predict(x), _fitted(0)[0].predict(x))
        assert ws.models.run_checks(MODEL, info.version)["passed"]  # the server reads the same files


def test_log_with_a_training_set_records_lineage(registry: Registry) -> None:
    from mlharbor.features.definitions import FeatureLookup
    from mlharbor.registry.service import model_node

    t = datetime(2026, 2, 1, tzinfo=UTC)
    ts = pa.array([t] * 4, pa.timestamp("us", tz="UTC"))
    ids = pa.array([1, 2, 3, 4], pa.int64())
    with registry.connect("dana") as ws:
        ws.features.create_table("dev.features.remote_drivers", pa.table({"driver_id": ids, "ts": ts,
                                                                          "rate": [0.1, 0.9, 0.2, 0.8]}),
                                 primary_keys="driver_id", timestamp_keys="ts")
        labels = pa.table({"driver_id": ids, "ts": ts, "y": [0, 1, 0, 1]})
        training = ws.features.create_training_set(
            labels, [FeatureLookup("dev.features.remote_drivers", "driver_id", timestamp_lookup_key="ts")], label="y",
            exclude_columns=["driver_id", "ts"])
        frame = training.load_df().to_pandas()
        model = LogisticRegression().fit(frame[["rate"]], frame["y"])
        info = ws.models.log_model(model, MODEL, training_set=training, experiment="remote-training")
        assert info.feature_spec is not None and info.feature_spec["label"] == "y"
        assert "dev.features.remote_drivers" in ws.models.card(MODEL, info.version)
    upstream = registry.services.catalog.lineage.upstream(model_node(MODEL, info.version))
    read = str(training.table_versions["dev.features.remote_drivers"])
    assert ("dev.features.remote_drivers", read) in {(e.source.name, e.source.version) for e in upstream
                                                     if e.source.kind == "table"}
    assert info.run_id in {e.source.name for e in upstream if e.source.kind == "run"}


def test_a_viewer_cannot_log_and_tampering_is_refused(registry: Registry) -> None:
    model, x = _fitted(8)
    with registry.connect("vic") as viewer, pytest.raises(PermissionDenied):
        viewer.models.log_model(model, MODEL, input_example=x.head(3))
    with registry.connect("mel") as ws:
        info = ws.models.log_model(model, MODEL, input_example=x.head(3))
        card = _stored(registry, info.source) / "model_card.md"
        card.write_text(card.read_text() + "\nedited on the server's disk\n")
        with pytest.raises(PermissionDenied, match="SHA-256"):
            ws.models.load_model(MODEL, info.version)
        r = httpx.post(f"{registry.url}/api/v1/models/{MODEL}/versions", headers=registry.headers("vic"),
                       json={"run_id": info.run_id})  # the route checks WRITE in the model's environment too
        assert r.status_code == 403, r.text
        r = httpx.post(f"{registry.url}/api/v1/models/{MODEL}/versions", headers=registry.headers("mel"),
                       json={"run_id": info.run_id, "artifact_path": "../model"})
        assert r.status_code == 400, r.text


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "fragment"), [
    ("GET", "/models/nope", {}, 400, "catalog.schema.name"),
    ("GET", f"/models/{MODEL}/versions/%C2%B2", {}, 400, "invalid version"),
    ("GET", f"/models/{MODEL}/versions/99999999999999999999", {}, 400, "invalid version"),
    ("GET", f"/models/{MODEL}/versions/latest", {}, 400, "invalid stage"),
    ("GET", f"/models/{MODEL}/versions?stage=Prod", {}, 400, "invalid stage"),
    ("PATCH", f"/models/{MODEL}/versions/0", {"json": {}}, 400, "version"),
    ("PATCH", f"/models/{MODEL}/versions/1", {"json": {"checks": {"passed": True}}}, 400, "checks"),
    ("POST", f"/models/{MODEL}/versions/1/requests", {"json": {"stage": "Live"}}, 400, "invalid stage"),
    ("POST", f"/models/{MODEL}/versions/1/requests", {"json": {}}, 400, "stage"),
    ("POST", f"/models/{MODEL}/versions/7/requests", {"json": {"stage": "Staging"}}, 404, "does not exist"),
    ("GET", "/model-requests?status=open", {}, 400, "status"),
    ("POST", "/model-requests/a%20b/approve", {"json": {}}, 400, "request_id"),
    ("POST", "/model-requests/deadbeef/approve", {"json": {}}, 404, "does not exist"),
    ("POST", f"/models/{MODEL}/versions/1/card", {"json": {"colour": "red"}}, 400, "colour"),
    ("POST", "/webhooks", {"json": {"name": "x", "url": "ftp://example.com", "model": MODEL}}, 400, "http"),
    ("GET", "/webhooks/nope/deliveries?limit=0", {}, 400, "limit"),
    ("DELETE", "/webhooks/nope", {}, 404, "does not exist"),
])
def test_bad_input_is_a_4xx_with_a_message(registry: Registry, method: str, path: str, kwargs: dict[str, Any],
                                           status: int, fragment: str) -> None:
    r = httpx.request(method, registry.url + "/api/v1" + path, headers=registry.headers(), **kwargs)
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error_code", "message"} and fragment in body["message"], body


def test_card_is_markdown(registry: Registry) -> None:
    r = httpx.get(f"{registry.url}/api/v1/models/{MODEL}/versions/1/card", headers=registry.headers("vic"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert r.text.startswith("# Model card: dev.ml.churn v1")


def test_tracking_through_the_server(registry: Registry) -> None:
    from mlharbor.core.entities import LineageNode

    with registry.connect("dana") as ws:
        ws.tables.write("dev.raw.remote_inputs", pa.table({"x": [1, 2, 3]}))
        version = ws.tables.describe("dev.raw.remote_inputs").version
        with ws.tracking.start_run("remote-tracking", run_name="r1", tags={"team": "t"}) as run:
            run.log_params({"alpha": 0.1})
            for i in range(1500):
                run.log_metric("loss", 1 / (i + 1))
            run.log_table("dev.raw.remote_inputs", version)
        got = ws.tracking.get_run(run.run_id)
        assert got.status == "FINISHED" and got.params == {"alpha": "0.1"} and got.tags["mlharbor.principal"] == "dana"
        assert len(ws.tracking.metric_history(run.run_id, "loss")) == 1500
        assert [r.run_id for r in ws.tracking.search_runs("remote-tracking")] == [run.run_id]
        assert "remote-tracking" in ws.tracking.experiments()
        with pytest.raises(InvalidArgument, match="autologging"):
            ws.tracking.autolog()
    edges = registry.services.lineage.upstream(LineageNode("run", run.run_id))
    assert {str(e.source) for e in edges} == {f"table:dev.raw.remote_inputs@{version}"}  # recorded by the server
    with registry.connect("vic") as viewer, pytest.raises(PermissionDenied):
        viewer.tracking.start_run("remote-tracking")
