"""ws.features: feature tables on the embedded default (and their catalog facts)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.core.entities import Role
from mlharbor.errors import InvalidArgument, PermissionDenied
from mlharbor.lineage import table_node
from mlharbor.workspace import Workspace


def ts(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


STATS = pa.table({
    "driver_id": pa.array([1, 1, 2], pa.int64()),
    "ts": pa.array([ts(1), ts(2), ts(1)], pa.timestamp("us", tz="UTC")),
    "trips_7d": pa.array([3.0, 4.0, 9.0]),
})


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(tmp_path) as w:
        yield w


def test_create_write_describe(ws: Workspace) -> None:
    ft = ws.features.create_table("dev.features.driver_stats", STATS, primary_keys="driver_id", timestamp_keys="ts",
                                  description="rolling driver stats", tags={"team": "pricing"})
    assert ft.primary_keys == ["driver_id"] and ft.timestamp_keys == ["ts"] and ft.features == ["trips_7d"]
    assert ft.latest_timestamp == ts(2) and ft.last_write is not None and ft.num_rows == 3
    # merge upserts on keys + timestamp: one row changes, one is new
    update = pa.table({"driver_id": pa.array([1, 3], pa.int64()),
                       "ts": pa.array([ts(2), ts(5)], pa.timestamp("us", tz="UTC")), "trips_7d": [40.0, 1.0]})
    ws.features.write_table("dev.features.driver_stats", update)
    rows = ws.tables.read("dev.features.driver_stats").to_pylist()
    assert len(rows) == 4 and {(r["driver_id"], r["trips_7d"]) for r in rows} >= {(1, 40.0), (3, 1.0)}
    assert ws.features.get_table("dev.features.driver_stats").latest_timestamp == ts(5)
    ws.features.write_table("dev.features.driver_stats", update, mode="append")
    assert ws.tables.read("dev.features.driver_stats").num_rows == 6
    with pytest.raises(InvalidArgument):
        ws.features.write_table("dev.features.driver_stats", update, mode="overwrite")


def test_create_from_sql_records_sources_and_lineage(ws: Workspace) -> None:
    ws.tables.write("dev.raw.trips", pa.table({"driver_id": [1, 1, 2], "fare": [10.0, 20.0, 5.0]}))
    ft = ws.features.create_table(
        "dev.features.driver_fares",
        "SELECT driver_id, avg(fare) AS avg_fare FROM dev.raw.trips GROUP BY driver_id",
        primary_keys=["driver_id"],
    )
    assert ft.source_tables == ["dev.raw.trips"] and ft.timestamp_keys == [] and ft.latest_timestamp is None
    edges = ws.services.lineage.upstream(table_node("dev.features.driver_fares", ft.version))
    assert [(e.source.name, e.source.version) for e in edges] == [("dev.raw.trips", "1")]
    from_name = ws.features.create_table("dev.features.copy", "dev.features.driver_fares", primary_keys="driver_id")
    assert from_name.num_rows == 2


def test_search_and_list(ws: Workspace) -> None:
    ws.features.create_table("dev.features.driver_stats", STATS, primary_keys="driver_id", timestamp_keys="ts",
                             description="Rolling driver stats", tags={"team": "pricing"})
    ws.features.create_table("dev.features.zone_stats", STATS.rename_columns(["zone_id", "ts", "n"]),
                             primary_keys="zone_id", timestamp_keys="ts", tags={"team": "ops"})
    ws.tables.write("dev.raw.other", STATS)
    assert [t.name for t in ws.features.list_tables()] == ["dev.features.driver_stats", "dev.features.zone_stats"]
    assert [t.name for t in ws.features.search("ROLLING")] == ["dev.features.driver_stats"]
    assert [t.name for t in ws.features.search("zone_id")] == ["dev.features.zone_stats"]
    assert [t.name for t in ws.features.search(tags={"team": "ops"})] == ["dev.features.zone_stats"]
    with pytest.raises(InvalidArgument, match="not a feature table"):
        ws.features.get_table("dev.raw.other")
    ws.features.drop_table("dev.features.zone_stats")
    assert [t.name for t in ws.features.list_tables()] == ["dev.features.driver_stats"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"primary_keys": []}, "at least one primary key"),
        ({"primary_keys": "nope"}, "not in the data"),
        ({"primary_keys": "driver_id", "timestamp_keys": "trips_7d"}, "timestamp or date"),
        ({"primary_keys": "driver_id", "timestamp_keys": ["ts", "ts"]}, "at most one"),
        ({"primary_keys": ["driver_id", "trips_7d"], "timestamp_keys": "ts"}, "at least one feature"),
    ],
)
def test_bad_definitions(ws: Workspace, kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        ws.features.create_table("dev.features.bad", STATS, **kwargs)  # type: ignore[arg-type]
    assert ws.features.list_tables() == []


def test_permissions_by_environment(ws: Workspace, tmp_path: Path) -> None:
    ws.access.create_principal("dana")
    ws.access.grant("dana", Role.DATA_SCIENTIST.value)
    with Workspace.open(tmp_path, principal="dana") as dana:
        dana.features.create_table("dev.features.mine", STATS, primary_keys="driver_id", timestamp_keys="ts")
        with pytest.raises(PermissionDenied):
            dana.features.create_table("prod.features.mine", STATS, primary_keys="driver_id", timestamp_keys="ts")
