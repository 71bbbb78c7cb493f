"""The control-plane server for real (uvicorn on 127.0.0.1) and Workspace.connect through it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi.routing import APIRoute

from mlharbor.api.app import create_app
from mlharbor.config import load_settings
from mlharbor.core.entities import Role
from mlharbor.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from mlharbor.lineage import table_node
from mlharbor.workspace import Services, Workspace

pytestmark = pytest.mark.e2e

TRIPS = pa.table({"trip_id": pa.array([1, 2, 3], pa.int64()), "fare": [10.0, 12.5, 7.0], "zone": ["a", "b", "a"]})


@dataclass
class Server:
    url: str
    admin_token: str
    services: Services
    app: object


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, serve_app: Any) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("server")
    services = Services.build(load_settings(root, environ={}))
    token = services.auth.bootstrap_admin()
    assert token is not None
    app = create_app(services=services)
    with serve_app(app) as url:
        yield Server(url, token, services, app)
    services.close()


def _routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) the app serves: from its OpenAPI paths and its route table."""
    found = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    stack = list(app.routes)
    while stack:
        route = stack.pop()
        if isinstance(route, APIRoute):
            found |= {(m, route.path) for m in route.methods}
        stack.extend(getattr(route, "routes", []))
    return sorted(found)


def test_every_route_but_health_fails_closed(server: Server) -> None:
    routes = _routes(server.app)
    assert len(routes) >= 20
    checked = 0
    for method, route_path in routes:
        path = re.sub(r"\{[^}]+\}", "dev.raw.x", route_path)
        for headers in ({}, {"Authorization": "Bearer mlh_not_a_token"}, {"Authorization": "Basic abc"}):
            r = httpx.request(method, server.url + path, headers=headers, json={})
            if route_path == "/health":
                assert r.status_code == 200
            else:
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.json()["error_code"] == "UNAUTHENTICATED"
                checked += 1
    for extra in ("/openapi.json", "/docs", "/no/such/route"):
        assert httpx.get(server.url + extra).status_code == 401
    assert checked >= 60


def test_openapi_and_errors_are_json_4xx(server: Server) -> None:
    h = {"Authorization": f"Bearer {server.admin_token}"}
    spec = httpx.get(server.url + "/openapi.json", headers=h).json()
    assert "/api/v1/tables/{name}/rows" in spec["paths"]
    cases = [
        ("POST", "/api/v1/tables", {"json": {"name": "dev.raw.t"}}, 400, "exactly one of"),
        ("POST", "/api/v1/tables", {"json": {"name": 3}}, 400, "name"),
        ("POST", "/api/v1/tables", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, ""),
        ("POST", "/api/v1/tables", {"json": {"name": "dev.raw.t", "columns": [{"name": "a", "type": "int99"}]}},
         400, "unknown column type"),
        ("POST", "/api/v1/tables", {"json": {"name": "nope", "columns": [{"name": "a", "type": "int64"}]}},
         400, "catalog.schema.name"),
        ("GET", "/api/v1/tables/dev.raw.missing", {}, 404, "does not exist"),
        ("GET", "/api/v1/tables/dev.raw.missing/rows?version=-1", {}, 400, "version"),
        ("POST", "/api/v1/tables/dev.raw.x/rows", {"content": b"garbage", "headers": {
            "content-type": "application/vnd.apache.arrow.stream"}}, 400, "Arrow IPC"),
        ("POST", "/api/v1/tables/dev.raw.x/rows", {"content": b"x", "headers": {"content-type": "text/plain"}},
         400, "send rows as"),
        ("POST", "/api/v1/sql", {"json": {"query": "SELEC 1"}}, 400, ""),
        ("PUT", "/api/v1/grants", {"json": {"principal": "x", "role": "owner"}}, 400, "role"),
        ("DELETE", "/api/v1/tokens/nope", {}, 404, ""),
        ("GET", "/api/v1/nothing-here", {}, 404, ""),
    ]
    for method, path, kwargs, status, fragment in cases:
        r = httpx.request(method, server.url + path, headers={**h, **kwargs.pop("headers", {})}, **kwargs)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        body = r.json()
        assert set(body) == {"error_code", "message"} and fragment in body["message"], body
        assert r.headers["x-request-id"]


def test_connect_gives_the_same_tables_api(server: Server) -> None:
    with Workspace.connect(server.url, token=server.admin_token) as ws:
        _round_trip(ws, server)
    with pytest.raises(Unauthenticated), Workspace.connect(server.url, token="mlh_wrong") as bad:
        bad.tables.list()


def _round_trip(ws: Workspace, server: Server) -> None:
    info = ws.tables.create("dev.raw.trips", TRIPS.schema, comment="via REST", tags={"a": "b"})
    assert info.owner == "admin"
    with pytest.raises(AlreadyExists):
        ws.tables.create("dev.raw.trips", TRIPS.schema)
    r1 = ws.tables.write("dev.raw.trips", TRIPS, txn_id="t1")
    r2 = ws.tables.write("dev.raw.trips", TRIPS, txn_id="t1")
    assert r1.applied and not r2.applied
    ws.tables.write("dev.raw.trips", TRIPS.to_pandas().assign(fare=1.0), mode="merge", keys=["trip_id"])
    assert ws.tables.read("dev.raw.trips").column("fare").to_pylist() == [1.0, 1.0, 1.0]
    assert ws.tables.read("dev.raw.trips", version=1, filter="zone = 'a'", columns=["trip_id"]).num_rows == 2
    batches = list(ws.tables.scan("dev.raw.trips"))
    assert sum(b.num_rows for b in batches) == 3
    assert [t.name for t in ws.tables.list(catalog="dev")] == ["dev.raw.trips"]
    d = ws.tables.describe("dev.raw.trips")
    assert d.schema == TRIPS.schema and d.version == 2 and d.info.comment == "via REST"
    assert [c.version for c in ws.tables.history("dev.raw.trips")] == [2, 1, 0]
    assert ws.tables.changes("dev.raw.trips", 1).num_rows == 6
    agg = ws.sql("SELECT zone, count(*) AS n FROM dev.raw.trips GROUP BY zone ORDER BY zone")
    assert agg.to_pylist() == [{"zone": "a", "n": 2}, {"zone": "b", "n": 1}]
    w = ws.tables.write("dev.agg.zones", agg)
    edges = server.services.lineage.upstream(table_node("dev.agg.zones", w.version))
    assert [(e.source.name, e.source.version) for e in edges] == [("dev.raw.trips", "2")]
    assert [str(e.source) for e in ws.tables.lineage("dev.agg.zones")] == ["table:dev.raw.trips@2"]
    copy = ws.tables.write("dev.agg.trips_copy", ws.tables.read("dev.raw.trips", version=1))  # reads carry lineage
    edges = server.services.lineage.upstream(table_node("dev.agg.trips_copy", copy.version))
    assert [(e.source.name, e.source.version) for e in edges] == [("dev.raw.trips", "1")]
    ws.tables.optimize("dev.raw.trips")
    ws.tables.vacuum("dev.raw.trips", retain_hours=0, dry_run=True)
    ws.tables.update("dev.raw.trips", comment="changed")
    ws.tables.create("dev.feat.t", TRIPS.schema, kind="feature_table", properties={"primary_keys": ["trip_id"]})
    assert [t.properties for t in ws.tables.list(kind="feature_table")] == [{"primary_keys": ["trip_id"]}]
    ws.tables.update("dev.feat.t", properties={"primary_keys": ["zone"]})
    assert ws.tables.describe("dev.feat.t").info.properties == {"primary_keys": ["zone"]}
    with pytest.raises(NotFound):
        ws.tables.read("dev.raw.missing")
    with pytest.raises(InvalidArgument):
        ws.tables.write("dev.raw.trips", TRIPS, mode="merge")
    ws.tables.drop("dev.agg.zones")
    with pytest.raises(NotFound):
        ws.tables.describe("dev.agg.zones")


def test_roles_apply_through_the_server(server: Server) -> None:
    with Workspace.connect(server.url, token=server.admin_token) as admin:
        admin.tables.write("prod.raw.p", TRIPS)
    auth = server.services.auth
    h = {"Authorization": f"Bearer {server.admin_token}"}
    assert httpx.post(server.url + "/api/v1/principals", json={"name": "dana"}, headers=h).status_code == 201
    r = httpx.put(server.url + "/api/v1/grants", json={"principal": "dana", "role": Role.DATA_SCIENTIST.value},
                  headers=h)
    assert r.status_code == 200 and len(r.json()) == 3
    created = httpx.post(server.url + "/api/v1/tokens", json={"name": "nb", "principal": "dana"}, headers=h).json()
    with Workspace.connect(server.url, token=created["token"]) as dana:
        assert dana.tables.read("prod.raw.p").num_rows == 3
        with pytest.raises(PermissionDenied):
            dana.tables.write("prod.raw.p", TRIPS)
    dh = {"Authorization": f"Bearer {created['token']}"}
    assert httpx.get(server.url + "/api/v1/audit", headers=dh).status_code == 403
    assert httpx.get(server.url + "/api/v1/whoami", headers=dh).json()["roles"]["prod"] == "data_scientist"
    mine = httpx.get(server.url + "/api/v1/tokens", headers=dh).json()
    assert [t["name"] for t in mine] == ["nb"] and all("token" not in t for t in mine)
    audit = httpx.get(server.url + "/api/v1/audit", params={"decision": "denied", "principal": "dana"}, headers=h)
    assert audit.json()[0]["action"] == "audit.list" and audit.json()[1]["action"] == "table.append"
    assert httpx.delete(server.url + f"/api/v1/tokens/{created['id']}", headers=h).status_code == 200
    with pytest.raises(Unauthenticated), Workspace.connect(server.url, token=created["token"]) as dana:
        dana.tables.list()
    assert {g.environment.value for g in auth.list_grants(auth.authenticate(server.admin_token), "dana")} == {
        "dev", "staging", "prod"}


def test_preview_rows_json(server: Server) -> None:
    h = {"Authorization": f"Bearer {server.admin_token}"}
    with Workspace.connect(server.url, token=server.admin_token) as ws:
        ws.tables.write("dev.raw.preview", TRIPS)
    body = httpx.get(server.url + "/api/v1/tables/dev.raw.preview/rows", params={"limit": 2}, headers=h).json()
    assert body["num_rows"] == 2 and body["truncated"] and body["rows"][0]["trip_id"] == 1
    sql = httpx.post(server.url + "/api/v1/sql", json={"query": "SELECT 1 AS one"}, headers=h).json()
    assert sql["rows"] == [{"one": 1}]
    dup = httpx.post(server.url + "/api/v1/sql", json={"query": "SELECT 1 AS a, 2 AS a"}, headers=h)
    assert dup.status_code == 400 and "distinct aliases" in dup.json()["message"]
    rows = [{"trip_id": 9, "fare": 1.5, "zone": "q"}]
    w = httpx.post(server.url + "/api/v1/tables/dev.raw.preview/rows", json=rows, headers=h)
    assert w.status_code == 200 and w.json()["num_rows"] == 1


def test_path_names_from_the_api_cannot_escape(server: Server, tmp_path: Path) -> None:
    h = {"Authorization": f"Bearer {server.admin_token}"}
    for name in ["dev.raw.%2e%2e", "..%2f..%2fetc.raw.x", "dev.raw.x%2f..%2f..", "dev.raw.a%5cb"]:
        r = httpx.post(server.url + f"/api/v1/tables/{name}/rows", json=[{"a": 1}], headers=h)
        assert r.status_code in (400, 404), (name, r.status_code)


def test_access_api_is_the_same_locally_and_through_the_server(server: Server) -> None:
    with Workspace.connect(server.url, token=server.admin_token) as ws:
        assert ws.access.whoami()["roles"]["prod"] == "admin"
        p = ws.access.create_principal("svc_etl", kind="service", display_name="ETL")
        assert p.kind.value == "service"
        with pytest.raises(AlreadyExists):
            ws.access.create_principal("svc_etl")
        grants = ws.access.grant("svc_etl", "ml_engineer", ["staging", "prod"])
        assert sorted(g.environment.value for g in grants) == ["prod", "staging"]
        token, secret = ws.access.create_token("nightly", principal="svc_etl", ttl_days=7)
        assert secret.startswith("mlh_") and token.principal == "svc_etl"
        assert "svc_etl" in [t.principal for t in ws.access.list_tokens("*")]
        with Workspace.connect(server.url, token=secret) as etl:
            assert etl.access.whoami() == {"principal": "svc_etl", "roles": {"staging": "ml_engineer",
                                                                             "prod": "ml_engineer"}}
            with pytest.raises(PermissionDenied):
                etl.access.create_principal("x")
            assert [t.name for t in etl.access.list_tokens()] == ["nightly"]
        ws.access.revoke_grant("svc_etl", "staging")
        assert [g.environment.value for g in ws.access.list_grants("svc_etl")] == ["prod"]
        assert ws.access.revoke_token(token.id).revoked_at is not None
        ws.access.set_active("svc_etl", False)
        entries = ws.access.audit_log(principal="admin", action="principal.deactivate")
        assert entries and entries[0].resource == "principal:svc_etl"
        denied = ws.access.audit_log(decision="denied", principal="svc_etl", limit=5)
        assert denied[0].action == "principal.create"


def test_features_online_and_functions_through_the_server(server: Server) -> None:
    from datetime import UTC, datetime

    from mlharbor.features.definitions import FeatureFunction, FeatureLookup

    t = datetime(2026, 2, 1, tzinfo=UTC)
    stats = pa.table({"driver_id": pa.array([1, 2], pa.int64()), "ts": pa.array([t, t], pa.timestamp("us", tz="UTC")),
                      "rate": [1.5, 2.5]})
    with Workspace.connect(server.url, token=server.admin_token) as ws:
        ws.features.create_table("dev.features.api_drivers", stats, primary_keys="driver_id", timestamp_keys="ts")
        info = ws.features.register_function(source="def double(x):\n    return None if x is None else 2 * x\n",
                                             entry_point="double", name="dev.features.api_double", return_type="double")
        assert info.version == 1 and ws.features.get_function("dev.features.api_double").sha256 == info.sha256
        assert "dev.features.api_double" in {f.name for f in ws.features.list_functions()}
        result = ws.features.publish("dev.features.api_drivers")
        assert result.mode == "snapshot" and result.rows_written == 2
        status = ws.features.online_status("dev.features.api_drivers")
        assert status.published_version == result.version and status.behind == 0
        rows = ws.features.read_online("dev.features.api_drivers", {"driver_id": [2, 9]})
        assert rows.column("rate").to_pylist() == [2.5, None] and rows.schema.field("ts").type.tz == "UTC"
        labels = pa.table({"driver_id": pa.array([1], pa.int64()), "ts": pa.array([t], pa.timestamp("us", tz="UTC")),
                           "y": [1]})
        spec = ws.features.create_training_set(labels, [
            FeatureLookup("dev.features.api_drivers", "driver_id", timestamp_lookup_key="ts"),
            FeatureFunction("dev.features.api_double", {"x": "rate"}, "rate2")], label="y").spec
        online = ws.features.lookup_online(spec, {"driver_id": [1, 2]})
        assert online.column("rate2").to_pylist() == [3.0, 5.0]
        ws.features.unpublish("dev.features.api_drivers")
        with pytest.raises(NotFound, match="not published"):
            ws.features.read_online("dev.features.api_drivers", {"driver_id": [1]})
        with pytest.raises(InvalidArgument, match="does not parse"):
            ws.features.register_function(source="def f(:", entry_point="f", name="dev.features.bad",
                                          return_type="double")
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    bad = [
        ("POST", "/api/v1/features/online/read", {"requests": [{"table": "dev.features.api_drivers",
                                                                "keys": {"driver_id": [1], "x": [1, 2]}}]}),
        ("POST", "/api/v1/features/online/read", {"requests": []}),
        ("POST", "/api/v1/features/dev.features.api_drivers/publish", {"mode": "full"}),
        ("POST", "/api/v1/functions", {"name": "dev.features.f", "source": "x = 1", "entry_point": "f",
                                       "return_type": "double"}),
    ]
    for method, path, body in bad:
        response = httpx.request(method, server.url + path, json=body, headers=headers)
        assert 400 <= response.status_code < 500, (path, response.text)
        assert response.json()["error_code"] and response.json()["message"]
