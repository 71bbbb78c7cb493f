"""ws.tables end to end: catalog, data, permissions, audit, lineage.

Every test runs on the embedded default (SQLite metadata) and with the metadata store on the real
PostgreSQL (``metadata_url`` is parametrised in tests/conftest.py), through ``MLHARBOR_METADATA_URL``.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from mlharbor.core.entities import Decision, Role
from mlharbor.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from mlharbor.lineage import table_node
from mlharbor.workspace import Workspace

TRIPS = pa.table({"trip_id": pa.array([1, 2, 3], pa.int64()), "fare": [10.0, 12.5, 7.0], "zone": ["a", "b", "a"]})


@pytest.fixture
def ws(tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("MLHARBOR_METADATA_URL", metadata_url)
    principal = None
    if not metadata_url.startswith("sqlite"):  # a shared store has no local admin: bootstrap one
        from mlharbor.config import load_settings
        from mlharbor.workspace import Services

        services = Services.build(load_settings(tmp_path))
        assert services.auth.bootstrap_admin() is not None
        services.close()
        principal = "admin"
    with Workspace.open(tmp_path, principal=principal) as w:
        yield w


def test_a_shared_store_has_no_local_admin(tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLHARBOR_METADATA_URL", metadata_url)
    if metadata_url.startswith("sqlite"):
        with Workspace.open(tmp_path) as w:
            assert w.actor is not None and w.actor.is_local_admin
    else:
        with pytest.raises(Unauthenticated, match="principal"):
            Workspace.open(tmp_path)


def test_create_list_describe_drop(ws: Workspace) -> None:
    info = ws.tables.create("dev.raw.trips", TRIPS.schema, comment="taxi trips", tags={"team": "pricing"})
    assert info.owner == ws.actor.principal and info.tags == {"team": "pricing"}
    with pytest.raises(AlreadyExists):
        ws.tables.create("dev.raw.trips", TRIPS.schema)
    assert ws.tables.create("dev.raw.trips", TRIPS.schema, if_not_exists=True).name == "dev.raw.trips"
    ws.tables.create("dev.raw.zones", data=pa.table({"zone": ["a"]}))
    ws.tables.create("prod.raw.zones", data=pa.table({"zone": ["a"]}))
    assert [t.name for t in ws.tables.list(catalog="dev")] == ["dev.raw.trips", "dev.raw.zones"]
    d = ws.tables.describe("dev.raw.trips")
    assert d.schema.names == ["trip_id", "fare", "zone"] and d.version == 0 and d.environment == "dev"
    assert d.info.comment == "taxi trips"
    ws.tables.update("dev.raw.trips", comment="trips v2", tags={"team": "ml"})
    assert ws.tables.describe("dev.raw.trips").info.tags == {"team": "ml"}
    location = ws.tables.describe("dev.raw.trips").info.location
    ws.tables.drop("dev.raw.trips")
    with pytest.raises(NotFound):
        ws.tables.describe("dev.raw.trips")
    assert not Path(location).exists()
    with pytest.raises(InvalidArgument, match="unknown catalog"):
        ws.tables.create("qa.raw.trips", TRIPS.schema)


def test_write_read_inputs_and_modes(ws: Workspace) -> None:
    r = ws.tables.write("dev.raw.trips", TRIPS)  # created from the data's schema
    assert r.applied and r.num_rows == 3
    ws.tables.write("dev.raw.trips", TRIPS.to_pandas().assign(trip_id=[4, 5, 6]))
    ws.tables.write("dev.raw.trips", pl.DataFrame({"trip_id": [7], "fare": [1.0], "zone": ["c"]}))
    reader = pa.RecordBatchReader.from_batches(TRIPS.schema, TRIPS.to_batches())
    ws.tables.write("dev.raw.trips", reader)
    assert ws.tables.read("dev.raw.trips").num_rows == 10
    assert ws.tables.read("dev.raw.trips", columns=["fare"], filter="zone = 'a'").column_names == ["fare"]
    assert ws.tables.read("dev.raw.trips", filter="zone = 'a'").num_rows == 6
    assert ws.tables.head("dev.raw.trips", 2).num_rows == 2
    assert sum(b.num_rows for b in ws.tables.scan("dev.raw.trips", filter="fare > 9")) == 6
    ws.tables.write("dev.raw.trips", TRIPS, mode="overwrite")
    assert ws.tables.read("dev.raw.trips").num_rows == 3
    ws.tables.write("dev.raw.trips", pa.table({"trip_id": [3, 9], "fare": [70.0, 9.0], "zone": ["a", "z"]}),
                    mode="merge", keys=["trip_id"])
    rows = {r["trip_id"]: r["fare"] for r in ws.tables.read("dev.raw.trips").to_pylist()}
    assert rows == {1: 10.0, 2: 12.5, 3: 70.0, 9: 9.0}
    with pytest.raises(InvalidArgument):
        ws.tables.write("dev.raw.trips", TRIPS, mode="merge")  # no keys
    with pytest.raises(InvalidArgument):
        ws.tables.write("dev.raw.trips", TRIPS, mode="upsert")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        ws.tables.write("dev.raw.trips", {"not": "a table"})
    assert isinstance(ws.tables.read("dev.raw.trips").to_pandas(), pd.DataFrame)


def test_txn_id_applies_once(ws: Workspace) -> None:
    first = ws.tables.write("dev.raw.trips", TRIPS, txn_id="load-2026-01-01")
    again = ws.tables.write("dev.raw.trips", TRIPS, txn_id="load-2026-01-01")
    assert first.applied and not again.applied and again.version == first.version
    assert ws.tables.read("dev.raw.trips").num_rows == 3
    assert ws.tables.history("dev.raw.trips")[0].txn_id == "load-2026-01-01"


def test_schema_evolution_is_opt_in_and_refusal_writes_nothing(ws: Workspace) -> None:
    ws.tables.write("dev.raw.trips", TRIPS)
    wider = TRIPS.append_column("tip", pa.array([1.0, 2.0, 3.0]))
    with pytest.raises(InvalidArgument, match="tip"):
        ws.tables.write("dev.raw.trips", wider)
    assert ws.tables.describe("dev.raw.trips").version == 1
    ws.tables.write("dev.raw.trips", wider, schema_evolution=True)
    assert "tip" in ws.tables.describe("dev.raw.trips").schema.names


def test_time_travel_history_changes_optimize_vacuum(ws: Workspace) -> None:
    ws.tables.write("dev.raw.trips", TRIPS)
    between = datetime.now(UTC)
    ws.tables.write("dev.raw.trips", pa.table({"trip_id": [1], "fare": [99.0], "zone": ["a"]}),
                    mode="merge", keys=["trip_id"])
    assert ws.tables.read("dev.raw.trips", version=1).num_rows == 3
    v_at = ws.tables.read("dev.raw.trips", timestamp=between)
    assert sorted(v_at.column("fare").to_pylist()) == [7.0, 10.0, 12.5]
    hist = ws.tables.history("dev.raw.trips")
    assert [h.version for h in hist] == [2, 1, 0] and hist[0].actor == ws.actor.principal
    changes = ws.tables.changes("dev.raw.trips", 1)
    kinds = sorted(changes.column("_change_type").to_pylist())
    assert kinds == ["update_postimage", "update_preimage"]
    for i in range(4):
        ws.tables.write("dev.raw.trips", pa.table({"trip_id": [10 + i], "fare": [1.0], "zone": ["q"]}))
    before = ws.tables.describe("dev.raw.trips")
    ws.tables.optimize("dev.raw.trips")
    after = ws.tables.describe("dev.raw.trips")
    assert after.num_files < before.num_files
    assert ws.tables.read("dev.raw.trips").num_rows == 7
    assert ws.tables.vacuum("dev.raw.trips", retain_hours=0, dry_run=True)
    ws.tables.vacuum("dev.raw.trips", retain_hours=0)
    assert ws.tables.read("dev.raw.trips").num_rows == 7
    with pytest.raises(NotFound, match="vacuum"):
        ws.tables.read("dev.raw.trips", version=1)
    with pytest.raises(InvalidArgument):
        ws.tables.read("dev.raw.trips", version=1, timestamp=between)


def test_sql_and_automatic_lineage(ws: Workspace) -> None:
    ws.tables.write("dev.raw.trips", TRIPS)
    ws.tables.write("prod.ref.zones", pa.table({"zone": ["a", "b"], "borough": ["x", "y"]}))
    result = ws.sql(
        "SELECT z.borough, sum(t.fare) AS fare FROM dev.raw.trips t JOIN prod.ref.zones z USING (zone) "
        "GROUP BY ALL ORDER BY 1"
    )
    assert result.to_pylist() == [{"borough": "x", "fare": 17.0}, {"borough": "y", "fare": 12.5}]
    w = ws.tables.write("dev.features.borough_fares", result)
    edges = ws.services.lineage.upstream(table_node("dev.features.borough_fares", w.version))
    assert {(e.source.name, e.source.version) for e in edges} == {("dev.raw.trips", "1"), ("prod.ref.zones", "1")}
    # lineage metadata is not written into the table
    assert b"mlharbor.sources" not in (ws.tables.describe("dev.features.borough_fares").schema.metadata or {})
    # explicit sources, and read() results carry their source too
    copy = ws.tables.read("dev.raw.trips")
    w2 = ws.tables.write("dev.raw.trips_copy", copy)
    assert [e.source.name for e in ws.services.lineage.upstream(table_node("dev.raw.trips_copy", w2.version))] == [
        "dev.raw.trips"
    ]
    names = {(e.source.name, e.target.name) for e in ws.tables.lineage("dev.raw.trips")}
    assert names == {("dev.raw.trips", "dev.features.borough_fares"), ("dev.raw.trips", "dev.raw.trips_copy")}
    with pytest.raises(InvalidArgument):
        ws.sql("SELECT * FROM trips")
    with pytest.raises(NotFound):
        ws.sql("SELECT * FROM dev.raw.missing")


def test_permissions_follow_roles_and_are_audited(ws: Workspace, tmp_path: Path) -> None:
    ws.tables.write("prod.raw.trips", TRIPS)
    ws.auth.create_principal(ws.actor, "alice")
    ws.auth.grant(ws.actor, "alice", Role.DATA_SCIENTIST)
    with Workspace.open(tmp_path, principal="alice") as alice:
        alice.tables.write("dev.raw.mine", TRIPS)  # data scientists write in dev
        assert alice.tables.read("prod.raw.trips").num_rows == 3  # and read prod
        with pytest.raises(PermissionDenied):
            alice.tables.write("prod.raw.trips", TRIPS)
        with pytest.raises(PermissionDenied):
            alice.tables.drop("prod.raw.trips")
        alice.tables.vacuum("dev.raw.mine", retain_hours=168)
        with pytest.raises(PermissionDenied):  # short retention ends time travel: admins only
            alice.tables.vacuum("dev.raw.mine", retain_hours=0)
    with Workspace.open(tmp_path, principal="nobody") as nobody:
        assert nobody.tables.list() == []
        with pytest.raises(PermissionDenied):
            nobody.tables.read("dev.raw.mine")
        with pytest.raises(PermissionDenied):
            nobody.sql("SELECT count(*) FROM dev.raw.mine")
        with pytest.raises(PermissionDenied):  # no table named, still only for readers
            nobody.sql("SELECT sum(range) FROM range(10)")
    denied = ws.auth.audit_log(ws.actor, decision=Decision.DENIED)
    assert {(e.actor, e.action) for e in denied} >= {("alice", "table.append"), ("alice", "table.drop"),
                                                     ("nobody", "table.read"), ("nobody", "table.sql")}
    written = ws.auth.audit_log(ws.actor, principal="alice", action="table.append", decision=Decision.ALLOWED)
    assert written[0].resource == "table:dev.raw.mine" and written[0].details["version"] == 1


def test_user_paths_never_escape_the_lake(ws: Workspace) -> None:
    for bad in ["dev.raw.../../x", "dev..raw.x", "dev.raw.%2e%2e", "dev.raw.a/b", "../dev.raw.x", "dev.raw.x\\y"]:
        with pytest.raises(InvalidArgument):
            ws.tables.write(bad, TRIPS)
    lake = ws.services.settings.home / "lake"
    assert not lake.exists() or all(p.resolve().is_relative_to(lake.resolve()) for p in lake.rglob("*"))


def test_creating_a_table_never_touches_existing_data(ws: Workspace) -> None:
    ws.tables.write("dev.raw.trips", TRIPS)
    old = ws.tables.describe("dev.raw.trips").info.location
    with ws.services.store.transaction() as tx:  # the row is gone (a crash, or another store owns it)
        tx.tables.delete("dev.raw.trips")
    new = ws.tables.create("dev.raw.trips", pa.schema([("x", pa.int64())])).location
    assert new != old and ws.tables.read("dev.raw.trips").num_rows == 0
    from mlharbor.lake.delta import DeltaTableStore

    assert DeltaTableStore().dataset(old).count_rows() == 3  # the other table's data is intact


def test_concurrent_first_writes_create_the_table_once(ws: Workspace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: ws.tables.write("dev.raw.burst", TRIPS, txn_id=f"b{i}"), range(6)))
    assert all(r.applied for r in results)
    assert ws.tables.read("dev.raw.burst").num_rows == 18


def test_catalogs_of_another_metadata_store_are_refused(tmp_path: Path) -> None:
    (tmp_path / "mlharbor.toml").write_text('[targets.prod]\nmetadata_url = "sqlite:///prod-meta.db"\n')
    with Workspace.open(tmp_path, target="prod") as prod:
        prod.tables.write("prod.raw.t", TRIPS)
    with Workspace.open(tmp_path) as dev:  # the dev target keeps its own store
        dev.tables.write("dev.raw.t", TRIPS)
        with pytest.raises(InvalidArgument, match="another metadata store"):
            dev.tables.write("prod.raw.t", TRIPS)
        assert [t.name for t in dev.tables.list()] == ["dev.raw.t"]
    with Workspace.open(tmp_path, target="prod") as prod:
        assert prod.tables.read("prod.raw.t").num_rows == 3


def test_lineage_sources_must_exist_at_that_version(ws: Workspace) -> None:
    ws.tables.write("dev.raw.trips", TRIPS)
    with pytest.raises(InvalidArgument, match="no version 7"):
        ws.tables.write("dev.raw.copy", TRIPS, sources={"dev.raw.trips": 7})
    with pytest.raises(NotFound):
        ws.tables.write("dev.raw.copy", TRIPS, sources={"dev.raw.nothing": 0})
    ws.tables.write("dev.raw.copy", TRIPS, sources={"dev.raw.trips": 1})


def test_timestamps_outside_utc_range_are_bad_input(ws: Workspace) -> None:
    from datetime import timedelta, timezone

    ws.tables.write("dev.raw.trips", TRIPS)
    with pytest.raises(InvalidArgument, match="UTC"):
        ws.tables.read("dev.raw.trips", timestamp=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))))


def test_kinds_and_properties(ws: Workspace) -> None:
    ws.tables.create("dev.f.driver", TRIPS.schema, kind="feature_table", properties={"primary_keys": ["trip_id"]})
    ws.tables.create("dev.raw.plain", TRIPS.schema)
    assert [t.name for t in ws.tables.list(kind="feature_table")] == ["dev.f.driver"]
    assert ws.tables.describe("dev.f.driver").info.properties == {"primary_keys": ["trip_id"]}
    ws.tables.update("dev.f.driver", properties={"primary_keys": ["trip_id"], "ttl": 60})
    assert ws.tables.describe("dev.f.driver").info.properties["ttl"] == 60
    with pytest.raises(InvalidArgument, match="kind"):
        ws.tables.create("dev.raw.bad", TRIPS.schema, kind="view")
    with pytest.raises(InvalidArgument, match="JSON"):
        ws.tables.update("dev.f.driver", properties={"x": object()})
