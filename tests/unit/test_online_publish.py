"""ws.features.publish / read_online / lookup_online on SQLite (embedded default) and real Redis."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mlharbor.catalog.functions import FunctionService
from mlharbor.core.entities import Role
from mlharbor.errors import BackendUnavailable, InvalidArgument, NotFound, PermissionDenied
from mlharbor.features.definitions import FeatureLookup
from mlharbor.features.online import OnlineStore
from mlharbor.features.publish import LocalOnline
from mlharbor.features.store import FeatureStore
from mlharbor.workspace import Workspace

T0 = datetime(2026, 3, 1, tzinfo=UTC)
REDIS = "redis://127.0.0.1:6379/0"


def ts(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def stats(rows: list[tuple[int, int, float, int]]) -> pa.Table:
    ids, hours, rates, trips = zip(*rows, strict=True)
    return pa.table({
        "driver_id": pa.array(ids, pa.int64()),
        "ts": pa.array([ts(h) for h in hours], pa.timestamp("us", tz="UTC")),
        "rate": pa.array(rates, pa.float64()),
        "trips": pa.array(trips, pa.int64()),
    })


BASE = stats([(1, 0, 1.0, 10), (1, 5, 1.5, 11), (2, 0, 2.0, 20), (3, 1, 3.0, 30), (3, 0, 2.9, 29)])


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    prefix = None
    if request.param == "redis":
        prefix = f"mlhtest-{secrets.token_hex(6)}"
        (tmp_path / "mlharbor.toml").write_text(
            f'[targets.dev]\nonline_store = "{REDIS}"\nonline_store_options = {{prefix = "{prefix}"}}\n')
    with Workspace.open(tmp_path) as w:
        yield w
    if prefix is not None:
        import redis

        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _create(ws: Workspace, data: pa.Table = BASE) -> str:
    ws.features.create_table("dev.features.drivers", data, primary_keys="driver_id", timestamp_keys="ts")
    return "dev.features.drivers"


def _online(ws: Workspace, ids: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ws.features.read_online("dev.features.drivers", {"driver_id": ids}).to_pylist()
    return rows


def test_snapshot_publishes_the_latest_row_per_key(ws: Workspace) -> None:
    name = _create(ws)
    with pytest.raises(NotFound, match="not published online"):
        _online(ws, [1])
    result = ws.features.publish(name, progress=False)
    assert result.mode == "snapshot" and result.rows_written == 3 and result.version == 1
    rows = _online(ws, [3, 1, 9, 1])
    assert [(r["rate"], r["trips"]) for r in rows] == [(3.0, 30), (1.5, 11), (None, None), (1.5, 11)]
    assert rows[0]["ts"] == ts(1)
    status = ws.features.online_status(name)
    assert status.published_version == 1 and status.behind == 0 and status.published_at == result.published_at
    described = ws.features.get_table(name)
    assert described.online is not None and described.online["version"] == 1
    assert any(e.action == "features.publish" for e in ws.access.audit_log(limit=20))


def test_incremental_publishes_only_changed_keys_and_removes_deleted_ones(ws: Workspace) -> None:
    name = _create(ws)
    ws.features.publish(name, progress=False)
    assert ws.features.publish(name, progress=False).rows_written == 0  # nothing changed
    ws.features.write_table(name, stats([(2, 9, 2.5, 21), (4, 0, 4.0, 40), (1, 1, 0.5, 5)]))  # (1, 1h) is older
    result = ws.features.publish(name, progress=False)
    assert result.mode == "incremental" and result.from_version == 1
    assert result.rows_written == 2  # driver 1 got an older row only: its online row stays
    rows = _online(ws, [1, 2, 4])
    assert [r["rate"] for r in rows] == [1.5, 2.5, 4.0]  # driver 1 keeps its latest row (5h)
    # delete driver 3 entirely (overwrite without it): incremental removes the key online
    remaining = ws.tables.read(name, filter="driver_id <> 3")
    ws.tables.write(name, remaining, mode="overwrite")
    result = ws.features.publish(name, progress=False)
    assert result.keys_deleted == 1 and _online(ws, [3])[0]["rate"] is None
    assert ws.features.online_status(name).published_version == ws.tables.describe(name).version


def test_snapshot_over_an_earlier_publish_removes_deleted_keys(ws: Workspace) -> None:
    name = _create(ws)
    ws.features.publish(name, progress=False)
    ws.tables.write(name, ws.tables.read(name, filter="driver_id <> 2"), mode="overwrite")
    result = ws.features.publish(name, "snapshot", progress=False)
    assert result.mode == "snapshot" and result.keys_deleted == 1 and _online(ws, [2])[0]["rate"] is None


class _CrashingStore:
    """Delegates to a real store but fails the n-th write call."""

    def __init__(self, inner: OnlineStore, fail_at: int) -> None:
        self.inner, self.fail_at, self.writes = inner, fail_at, 0

    def write(self, table: str, rows: Any, batch_size: int = 10_000) -> int:
        self.writes += 1
        if self.writes == self.fail_at:
            raise BackendUnavailable("simulated crash")
        return self.inner.write(table, rows, batch_size)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


def test_a_crashed_snapshot_resumes_after_the_rows_written(ws: Workspace) -> None:
    rows = [(i, 0, float(i), i) for i in range(1, 101)]
    name = _create(ws, stats(rows))
    services = ws.services
    real = services.online_store("dev")
    crashing = _CrashingStore(real, fail_at=4)
    assert ws.actor is not None
    online = LocalOnline(services.catalog, ws.tables, ws.actor, lambda catalog: crashing)  # type: ignore[arg-type,return-value]
    ws_features = FeatureStore(ws.tables, FunctionService(services.catalog, ws.actor), online)
    with pytest.raises(BackendUnavailable, match="simulated"):
        ws_features.publish(name, "snapshot", batch_size=10, progress=False)
    assert ws_features.online_status(name).published_version is None  # not recorded as published
    result = ws_features.publish(name, "snapshot", batch_size=10, progress=False)
    assert result.resumed_rows == 30 and result.rows_written == 70
    got = ws_features.read_online(name, {"driver_id": list(range(1, 101))})
    assert got.column("rate").to_pylist() == [float(i) for i in range(1, 101)]


def test_ttl_is_kept_and_schema_changes_republish_everything(ws: Workspace) -> None:
    name = _create(ws)
    ws.features.publish(name, ttl_seconds=3600, progress=False)
    ws.features.write_table(name, stats([(5, 0, 5.0, 50)]))
    ws.features.publish(name, progress=False)
    assert ws.features.online_status(name).ttl_seconds == 3600
    wider = BASE.append_column("bonus", pa.array([1.0] * BASE.num_rows))
    ws.tables.write(name, wider, mode="overwrite", schema_evolution=True)
    result = ws.features.publish(name, progress=False)  # incremental asked, layout changed: snapshot
    assert result.mode == "snapshot" and _online(ws, [1])[0]["bonus"] == 1.0
    with pytest.raises(InvalidArgument, match="mode"):
        ws.features.publish(name, "full")
    with pytest.raises(InvalidArgument, match="ttl_seconds"):
        ws.features.publish(name, ttl_seconds=0)


def test_plain_tables_are_not_published(ws: Workspace) -> None:
    ws.tables.write("dev.raw.plain", BASE)
    with pytest.raises(InvalidArgument, match="feature tables"):
        ws.features.publish("dev.raw.plain")


def test_progress_bar_on_request(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.features.create_table("dev.features.flat", BASE.drop_columns(["ts"]).slice(1, 3), primary_keys="driver_id")
    ws.features.publish("dev.features.flat", progress=True)
    assert "publishing dev.features.flat" in capsys.readouterr().err


def test_lookup_online_evaluates_a_spec_in_one_round_trip(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _create(ws)
    zones = pa.table({"city": ["x", "x", "y"], "zone": [1, 2, 1], "demand": [0.1, 0.2, 0.3]})
    ws.features.create_table("dev.features.zones", zones, primary_keys=["city", "zone"])
    for table in (name, "dev.features.zones"):
        ws.features.publish(table, progress=False)
    labels = pa.table({"driver_id": [1, 2], "city": ["x", "y"], "zone": [2, 1], "ts": [ts(6), ts(6)], "y": [1, 0]})
    spec = ws.features.create_training_set(labels, [
        FeatureLookup(name, "driver_id", feature_names=["rate"], rename_outputs={"rate": "driver_rate"},
                      timestamp_lookup_key="ts", default_values={"rate": -1.0}),
        FeatureLookup("dev.features.zones", ["city", "zone"]),
    ], label="y").spec
    store = ws.services.online_store("dev")
    calls: list[int] = []
    original = store.read

    def counting(requests: Any) -> Any:
        calls.append(len(requests))
        return original(requests)

    monkeypatch.setattr(store, "read", counting)
    request = [{"driver_id": 1, "city": "x", "zone": 2}, {"driver_id": 7, "city": "y", "zone": 1},
               {"driver_id": None, "city": "q", "zone": 9}]
    out = ws.features.lookup_online(spec, request)
    assert calls == [2]  # both tables, one call to the store
    assert out.column_names == ["driver_id", "city", "zone", "driver_rate", "demand"]
    assert out.column("driver_rate").to_pylist() == [1.5, -1.0, -1.0]  # missing and null keys take the default
    assert out.column("demand").to_pylist() == [0.2, 0.3, None]
    # a feature supplied by the request wins and is not looked up
    given = ws.features.lookup_online(spec, {"driver_id": [1], "city": ["x"], "zone": [1], "demand": [9.0]})
    assert given.column("demand").to_pylist() == [9.0] and calls[-1] == 1
    with pytest.raises(InvalidArgument, match="lacks key column"):
        ws.features.lookup_online(spec, {"city": ["x"]})


def test_permissions_for_publish_and_read(ws: Workspace, tmp_path: Path) -> None:
    name = _create(ws)
    ws.features.publish(name, progress=False)
    ws.access.create_principal("dana")
    ws.access.grant("dana", Role.VIEWER, ["dev"])
    with Workspace.open(tmp_path, principal="dana") as viewer:
        assert viewer.features.read_online(name, {"driver_id": [1]}).column("rate").to_pylist() == [1.5]
        with pytest.raises(PermissionDenied):
            viewer.features.publish(name)


def test_a_table_created_again_under_the_same_name_never_serves_old_rows(ws: Workspace) -> None:
    name = _create(ws)
    ws.features.publish(name, progress=False)
    ws.tables.drop(name)  # behind the feature store's back: the online copy is still there
    _create(ws, stats([(9, 0, 9.0, 90)]))
    result = ws.features.publish(name, progress=False)
    assert result.mode == "snapshot" and result.rows_written == 1
    assert [r["rate"] for r in _online(ws, [1, 9])] == [None, 9.0]
    ws.features.drop_table(name)  # through the feature store: the online copy goes too
    with pytest.raises(NotFound):
        ws.features.online_status(name)
    _create(ws)
    with pytest.raises(NotFound, match="not published"):
        _online(ws, [9])


def _oracle(table: pa.Table) -> dict[int, tuple[Any, ...]]:
    """Latest row per driver by timestamp, computed by hand."""
    best: dict[int, tuple[Any, ...]] = {}
    for r in table.to_pylist():
        if r["driver_id"] is not None and (r["driver_id"] not in best or r["ts"] > best[r["driver_id"]][0]):
            best[r["driver_id"]] = (r["ts"], r["rate"], r["trips"])
    return best


def test_incremental_publishes_match_a_recomputed_snapshot_after_random_changes(ws: Workspace) -> None:
    import random

    rng = random.Random(7)
    name = _create(ws)
    ws.features.publish(name, progress=False)
    for _ in range(8):
        op = rng.choice(["merge", "merge", "delete_latest", "delete_key"])
        current = ws.tables.read(name)
        if op == "merge":
            rows = {(rng.randint(1, 6), rng.randint(0, 8)): (rng.random(), rng.randint(0, 50)) for _ in range(4)}
            ws.features.write_table(name, stats([(d, h, r, t) for (d, h), (r, t) in rows.items()]))
        else:
            ids = [i for i in current.column("driver_id").to_pylist() if i is not None]
            victim = rng.choice(ids)
            latest = _oracle(current)[victim][0]
            keep = [r for r in current.to_pylist()
                    if r["driver_id"] != victim or (op == "delete_latest" and r["ts"] != latest)]
            ws.tables.write(name, pa.Table.from_pylist(keep, schema=current.schema), mode="overwrite")
        ws.features.publish(name, progress=False)
        expected = _oracle(ws.tables.read(name))
        probe = list(range(1, 8))
        got = {r["driver_id"]: (r["ts"], r["rate"], r["trips"])
               for r in _with_ids(ws.features.read_online(name, {"driver_id": probe}), probe) if r["ts"] is not None}
        assert got == expected, op


def _with_ids(table: pa.Table, ids: list[int]) -> list[dict[str, Any]]:
    return [{"driver_id": i, **r} for i, r in zip(ids, table.to_pylist(), strict=True)]
