"""Conformance suite for ``mlharbor.features.online.base.OnlineStore``, run on every backend.

The ``backend`` fixture is parametrised over SQLite (a temporary file, with an injected clock so
expiry needs no sleeping) and the real Redis at ``MLHARBOR_TEST_REDIS`` (default
``redis://127.0.0.1:6379/0``; each test uses its own key prefix and removes its keys). Redis cases
carry the ``integration`` marker and **fail** with a clear message when Redis cannot be reached:
CI starts it (``.ci/run``). Tests only use the public interface, except where a test counts round
trips.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mlharbor.errors import InvalidArgument, MissingDependency, NotFound
from mlharbor.features.online import OnlineRead, OnlineStore, OnlineTableSpec, online_store_for

REDIS_ENV = "MLHARBOR_TEST_REDIS"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"

SCHEMA = pa.schema([("driver_id", pa.int64()), ("rating", pa.float64()), ("trips", pa.int32()), ("zone", pa.string())])
DRIVERS = OnlineTableSpec("dev.features.driver_stats", ["driver_id"], SCHEMA)


# -- backends ------------------------------------------------------------------------------------


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """One backend under test: how to open a store on it, let time pass, and count round trips."""

    name: str
    open: Callable[[], OnlineStore]  # a new store on the same data (what another process sees)
    elapse: Callable[[float], None]
    round_trips: Callable[[OnlineStore], AbstractContextManager[list[str]]]


@contextmanager
def _sqlite_statements(store: OnlineStore) -> Iterator[list[str]]:
    statements: list[str] = []
    connections = list(store._all)  # type: ignore[attr-defined]
    for conn in connections:
        conn.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        for conn in connections:
            conn.set_trace_callback(None)


@contextmanager
def _redis_commands(store: OnlineStore) -> Iterator[list[str]]:
    commands: list[str] = []
    original = store._command  # type: ignore[attr-defined]

    def counting(*args: Any, **kwargs: Any) -> Any:
        commands.append(str(args[0]))
        return original(*args, **kwargs)

    store._command = counting  # type: ignore[attr-defined]
    try:
        yield commands
    finally:
        store._command = original  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis server's URL; fails (never skips) when it cannot be reached."""
    url = os.environ.get(REDIS_ENV, DEFAULT_REDIS)
    try:
        import redis
    except ImportError:
        pytest.fail("redis-py is not installed: pip install -e '.[dev]'", pytrace=False)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {url}: {exc}. Start it (.ci/run does) or point {REDIS_ENV} at a server.",
            pytrace=False,
        )
    return url


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[OnlineStore] = []

    def track(store: OnlineStore) -> OnlineStore:
        opened.append(store)
        return store

    if request.param == "sqlite":
        from mlharbor.features.online.sqlite import SQLiteOnlineStore

        clock = FakeClock()
        path = tmp_path / "online.db"

        def advance(seconds: float) -> None:
            clock.now += seconds

        yield Backend("sqlite", lambda: track(SQLiteOnlineStore(path, clock=clock)), advance, _sqlite_statements)
    else:
        import redis

        url: str = request.getfixturevalue("redis_url")
        prefix = f"mlhtest-{secrets.token_hex(6)}"
        yield Backend("redis", lambda: track(online_store_for(url, prefix=prefix)), time.sleep, _redis_commands)
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    for store in opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> OnlineStore:
    return backend.open()


@pytest.fixture
def drivers(store: OnlineStore) -> OnlineStore:
    store.ensure_table(DRIVERS)
    store.write(DRIVERS.name, driver_rows([1, 2, 3]))
    return store


# -- helpers -------------------------------------------------------------------------------------


def driver_rows(ids: list[int], rating: float = 4.5) -> pa.Table:
    return pa.table(
        {
            "driver_id": ids,
            "rating": [rating + i / 10 for i in ids],
            "trips": [i * 10 for i in ids],
            "zone": [f"zone-{i}" for i in ids],
        },
        schema=SCHEMA,
    )


def keys_of(ids: list[int | None], column: str = "driver_id") -> pa.Table:
    return pa.table({column: pa.array(ids, pa.int64())})


def read_one(store: OnlineStore, table: str, keys: pa.Table, features: list[str] | None = None) -> pa.Table:
    (result,) = store.read([OnlineRead(table, keys, features)])
    return result


def same(a: Any, b: Any) -> bool:
    """Equality of Python values where NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b) and type(a) is type(b)


# -- capabilities and tables ---------------------------------------------------------------------


def test_capabilities_are_declared(store: OnlineStore) -> None:
    assert store.supports_ttl is True


def test_ensure_table_is_idempotent(store: OnlineStore) -> None:
    assert store.table_spec(DRIVERS.name) is None
    store.ensure_table(DRIVERS)
    store.write(DRIVERS.name, driver_rows([1]))
    store.ensure_table(DRIVERS)
    spec = store.table_spec(DRIVERS.name)
    assert spec is not None
    assert (spec.name, spec.key_columns, spec.ttl_seconds) == (DRIVERS.name, ["driver_id"], None)
    assert spec.schema.equals(SCHEMA)
    assert spec.feature_columns == ["rating", "trips", "zone"]
    assert read_one(store, DRIVERS.name, keys_of([1])).column("trips").to_pylist() == [10]


def test_ttl_change_replaces_spec_and_keeps_rows(drivers: OnlineStore) -> None:
    drivers.set_marker(DRIVERS.name, "published_version", "7")
    drivers.ensure_table(OnlineTableSpec(DRIVERS.name, ["driver_id"], SCHEMA, ttl_seconds=3600))
    spec = drivers.table_spec(DRIVERS.name)
    assert spec is not None and spec.ttl_seconds == 3600
    assert read_one(drivers, DRIVERS.name, keys_of([2])).column("trips").to_pylist() == [20]
    assert drivers.get_marker(DRIVERS.name, "published_version") == "7"


def test_schema_change_replaces_spec_and_clears_rows(backend: Backend, drivers: OnlineStore) -> None:
    assert read_one(drivers, DRIVERS.name, keys_of([1])).num_rows == 1  # cache the old spec
    other = backend.open()
    new_schema = pa.schema([("driver_id", pa.int64()), ("score", pa.float32())])
    other.ensure_table(OnlineTableSpec(DRIVERS.name, ["driver_id"], new_schema))
    assert read_one(other, DRIVERS.name, keys_of([1])).column("score").to_pylist() == [None]
    other.write(DRIVERS.name, pa.table({"driver_id": [2], "score": [0.5]}))
    # The first store notices the new layout in the same round trip and decodes with it.
    result = read_one(drivers, DRIVERS.name, keys_of([1, 2]))
    assert result.schema.names == ["score"]
    assert result.column("score").to_pylist() == [None, 0.5]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (OnlineTableSpec("t", ["missing"], SCHEMA), "not in the schema"),
        (OnlineTableSpec("t", [], SCHEMA), "non-empty"),
        (OnlineTableSpec("t", ["rating"], SCHEMA), "keys must be"),
        (OnlineTableSpec("t", ["driver_id"], pa.schema([SCHEMA.field("driver_id")])), "no feature column"),
        (OnlineTableSpec("t", ["driver_id"], SCHEMA.append(pa.field("m", pa.map_(pa.string(), pa.int64())))),
         "unsupported type"),
        (OnlineTableSpec("t", ["driver_id"], SCHEMA, ttl_seconds=0), "ttl_seconds"),
        (OnlineTableSpec("bad:name", ["driver_id"], SCHEMA), "invalid online table name"),
        (OnlineTableSpec("t*", ["driver_id"], SCHEMA), "invalid online table name"),
    ],
)
def test_invalid_specs_are_refused(store: OnlineStore, spec: OnlineTableSpec, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.ensure_table(spec)


def test_unknown_table(store: OnlineStore) -> None:
    with pytest.raises(NotFound):
        store.write("nope", driver_rows([1]))
    with pytest.raises(NotFound):
        store.read([OnlineRead("nope", keys_of([1]))])
    with pytest.raises(NotFound):
        store.delete("nope", keys_of([1]))
    with pytest.raises(NotFound):
        store.set_marker("nope", "k", "v")
    assert store.table_spec("nope") is None
    assert store.get_marker("nope", "k") is None
    store.drop_table("nope")


# -- writes and reads ----------------------------------------------------------------------------


def test_upsert_last_occurrence_wins(drivers: OnlineStore) -> None:
    rows = pa.concat_tables(
        [driver_rows([4, 5], rating=1.0), driver_rows([4], rating=2.0), driver_rows([2], rating=3.0)]
    )
    assert drivers.write(DRIVERS.name, rows) == 4
    result = read_one(drivers, DRIVERS.name, keys_of([4, 5, 2, 1]), ["rating"])
    assert result.column("rating").to_pylist() == [2.0 + 0.4, 1.0 + 0.5, 3.0 + 0.2, 4.5 + 0.1]


def test_read_is_aligned_with_keys_missing_and_duplicates(drivers: OnlineStore) -> None:
    result = read_one(drivers, DRIVERS.name, keys_of([3, 99, 1, 3, 3]))
    assert result.num_rows == 5
    assert result.column("trips").to_pylist() == [30, None, 10, 30, 30]
    assert result.column("zone").to_pylist() == ["zone-3", None, "zone-1", "zone-3", "zone-3"]
    assert result.schema.names == ["rating", "trips", "zone"]
    assert result.schema.field("trips").type == pa.int32()


def test_keys_are_cast_and_extra_columns_ignored(drivers: OnlineStore) -> None:
    keys = pa.table({"other": ["x", "y"], "driver_id": pa.array(["2", "1"])})
    assert read_one(drivers, DRIVERS.name, keys, ["trips"]).column("trips").to_pylist() == [20, 10]
    with pytest.raises(InvalidArgument, match="driver_id"):
        read_one(drivers, DRIVERS.name, pa.table({"other": [1]}))
    with pytest.raises(InvalidArgument):
        read_one(drivers, DRIVERS.name, pa.table({"driver_id": ["not a number"]}))


def test_null_key_parts_read_as_nulls_and_are_refused_on_write(drivers: OnlineStore) -> None:
    result = read_one(drivers, DRIVERS.name, keys_of([None, 2, None]))
    assert result.column("zone").to_pylist() == [None, "zone-2", None]
    with pytest.raises(InvalidArgument, match="null key"):
        drivers.write(DRIVERS.name, pa.table({"driver_id": [None], "rating": [1.0], "trips": [1], "zone": ["z"]},
                                             schema=SCHEMA))
    assert drivers.delete(DRIVERS.name, keys_of([None])) == 0


def test_composite_keys_are_unambiguous(store: OnlineStore) -> None:
    schema = pa.schema([("a", pa.string()), ("b", pa.string()), ("n", pa.int64()), ("v", pa.string())])
    spec = OnlineTableSpec("dev.features.pairs", ["a", "b", "n"], schema)
    store.ensure_table(spec)
    rows = pa.table(
        {"a": ["x:y", "x", "1", "[1", "x"], "b": ["z", "y:z", "", "]", "y"], "n": [1, 1, 1, 1, 2],
         "v": ["xy:z", "x:yz", "one", "bracket", "n2"]},
        schema=schema,
    )
    store.write(spec.name, rows)
    keys = pa.table(
        {"a": ["x", "x:y", "1", "x", "[1", "x"], "b": ["y:z", "z", "", "y", "]", "y"], "n": [1, 1, 1, 1, 1, 2]}
    )
    assert read_one(store, spec.name, keys).column("v").to_pylist() == ["x:yz", "xy:z", "one", None, "bracket", "n2"]


def test_int_and_string_keys_differ(store: OnlineStore) -> None:
    s_schema = pa.schema([("k", pa.string()), ("v", pa.int64())])
    store.ensure_table(OnlineTableSpec("dev.f.s", ["k"], s_schema))
    store.write("dev.f.s", pa.table({"k": ["1", "01", " 1"], "v": [1, 2, 3]}))
    keys = pa.table({"k": pa.array([1, 2], pa.int64())})  # cast to the string key type
    assert read_one(store, "dev.f.s", keys).column("v").to_pylist() == [1, None]
    keys = pa.table({"k": ["01", " 1", "1 "]})
    assert read_one(store, "dev.f.s", keys).column("v").to_pylist() == [2, 3, None]


def test_feature_subsets_keep_the_requested_order(drivers: OnlineStore) -> None:
    result = read_one(drivers, DRIVERS.name, keys_of([2]), ["zone", "rating"])
    assert result.schema.names == ["zone", "rating"]
    assert result.to_pylist() == [{"zone": "zone-2", "rating": 4.5 + 0.2}]
    with pytest.raises(InvalidArgument, match="no feature"):
        read_one(drivers, DRIVERS.name, keys_of([2]), ["speed"])
    with pytest.raises(InvalidArgument, match="no feature"):
        read_one(drivers, DRIVERS.name, keys_of([2]), ["driver_id"])


def test_several_tables_in_one_round_trip(backend: Backend, drivers: OnlineStore) -> None:
    zones = OnlineTableSpec("dev.features.zone_stats", ["zone_id", "hour"],
                            pa.schema([("zone_id", pa.string()), ("hour", pa.int8()), ("demand", pa.float64())]))
    drivers.ensure_table(zones)
    zone_rows = pa.table({"zone_id": ["a", "b"], "hour": pa.array([1, 2], pa.int8()), "demand": [0.1, 0.2]})
    drivers.write(zones.name, zone_rows)
    requests = [
        OnlineRead(DRIVERS.name, keys_of([1, 7, 2]), ["trips"]),
        OnlineRead(zones.name, pa.table({"zone_id": ["b", "a", "a"], "hour": [2, 2, 1]})),
        OnlineRead(DRIVERS.name, keys_of([3]), ["zone"]),
        OnlineRead(DRIVERS.name, keys_of([]), None),
    ]
    drivers.read(requests)  # the first read of a table loads its spec
    with backend.round_trips(drivers) as trips:
        results = drivers.read(requests)
    assert len(trips) <= (1 if backend.name == "redis" else 2), trips
    assert results[0].column("trips").to_pylist() == [10, None, 20]
    assert results[1].column("demand").to_pylist() == [0.2, None, 0.1]
    assert results[2].column("zone").to_pylist() == ["zone-3"]
    assert results[3].num_rows == 0 and results[3].schema.names == ["rating", "trips", "zone"]
    assert drivers.read([]) == []


def test_write_accepts_readers_reordered_and_extra_columns(drivers: OnlineStore) -> None:
    table = driver_rows([8, 9]).select(["zone", "trips", "driver_id", "rating"])
    table = table.append_column("extra", pa.array([1, 2]))
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    assert drivers.write(DRIVERS.name, reader) == 2
    assert read_one(drivers, DRIVERS.name, keys_of([9]), ["zone"]).column("zone").to_pylist() == ["zone-9"]
    with pytest.raises(InvalidArgument, match="lack the columns"):
        drivers.write(DRIVERS.name, driver_rows([1]).drop_columns(["zone"]))
    with pytest.raises(InvalidArgument, match="does not cast"):
        drivers.write(DRIVERS.name, driver_rows([1]).set_column(1, "rating", pa.array(["fast"])))
    with pytest.raises(InvalidArgument, match="batch_size"):
        drivers.write(DRIVERS.name, driver_rows([1]), batch_size=0)


def test_large_writes_in_batches(drivers: OnlineStore) -> None:
    n = 12_000
    first = driver_rows(list(range(n)), rating=1.0)
    again = driver_rows(list(range(0, n, 3)), rating=2.0)  # later batches overwrite earlier ones
    batches = first.to_batches(max_chunksize=5_000) + again.to_batches(max_chunksize=5_000)
    reader = pa.RecordBatchReader.from_batches(SCHEMA, batches)
    assert drivers.write(DRIVERS.name, reader, batch_size=1_000) == n + n // 3
    result = read_one(drivers, DRIVERS.name, keys_of([*range(n), n]), ["rating", "trips"])
    ratings = result.column("rating").to_pylist()
    assert ratings[:4] == [2.0, 1.1, 1.2, 2.3]
    assert all(ratings[i] == (2.0 if i % 3 == 0 else 1.0) + i / 10 for i in range(n))
    assert result.column("trips").to_pylist()[-1] is None


# -- types ---------------------------------------------------------------------------------------

BERLIN = timezone(timedelta(hours=1))
TYPES = pa.schema([
    ("id", pa.int64()),
    ("i8", pa.int8()), ("u64", pa.uint64()), ("f64", pa.float64()), ("f32", pa.float32()), ("flag", pa.bool_()),
    ("name", pa.string()), ("big_name", pa.large_string()), ("blob", pa.binary()),
    ("ts_utc", pa.timestamp("us", tz="UTC")), ("ts_berlin", pa.timestamp("ms", tz="Europe/Berlin")),
    ("ts_naive", pa.timestamp("ns")), ("day", pa.date32()), ("dur", pa.duration("s")),
    ("price", pa.decimal128(12, 2)),
    ("embedding", pa.list_(pa.float32())), ("vec3", pa.list_(pa.float64(), 3)), ("counts", pa.large_list(pa.int64())),
    ("tags", pa.list_(pa.string())), ("seen", pa.list_(pa.timestamp("us", tz="UTC"))),
    ("info", pa.struct([("n", pa.int32()), ("at", pa.timestamp("ms")), ("label", pa.string())])),
])
TYPE_ROWS = [
    {"id": 1, "i8": -128, "u64": 2**64 - 1, "f64": math.nan, "f32": -0.0, "flag": True, "name": "ünïcødé ✓",
     "big_name": "", "blob": b"\x00\xff\x00", "ts_utc": datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
     "ts_berlin": datetime(2024, 7, 1, 12, 0, tzinfo=BERLIN), "ts_naive": datetime(1969, 12, 31, 23, 59, 59),
     "day": date(1, 1, 1), "dur": timedelta(days=3), "price": Decimal("-12345.67"),
     "embedding": [0.25, math.nan, math.inf, -1e30], "vec3": [1.0, 2.0, 3.0], "counts": [], "tags": ["a", None, ""],
     "seen": [datetime(2020, 1, 1, tzinfo=UTC)], "info": {"n": 1, "at": datetime(2021, 5, 5, 5, 5, 5), "label": "x"}},
    {"id": 2, "i8": None, "u64": None, "f64": None, "f32": None, "flag": None, "name": None, "big_name": None,
     "blob": None, "ts_utc": None, "ts_berlin": None, "ts_naive": None, "day": None, "dur": None, "price": None,
     "embedding": None, "vec3": None, "counts": None, "tags": None, "seen": None, "info": None},
    {"id": 3, "i8": 127, "u64": 0, "f64": -math.inf, "f32": 3.5, "flag": False, "name": "", "big_name": "x" * 5000,
     "blob": b"", "ts_utc": datetime(1900, 1, 1, tzinfo=UTC), "ts_berlin": None, "ts_naive": datetime(2262, 4, 11),
     "day": date(9999, 12, 31), "dur": timedelta(seconds=-5), "price": Decimal("0.01"),
     "embedding": [None, 2.0], "vec3": None, "counts": [1, None, 3], "tags": [], "seen": [None],
     "info": {"n": None, "at": None, "label": None}},
    {"id": 4, "i8": 0, "u64": 1, "f64": 0.1, "f32": 1.0, "flag": True, "name": "x", "big_name": "y", "blob": b"z",
     "ts_utc": None, "ts_berlin": None, "ts_naive": None, "day": None, "dur": None, "price": None,
     "embedding": [float(i) for i in range(768)], "vec3": [4.0, 5.0, 6.0], "counts": [7], "tags": ["only"],
     "seen": [], "info": {"n": 2, "at": None, "label": "y"}},
]


def test_every_feature_type_round_trips(store: OnlineStore) -> None:
    spec = OnlineTableSpec("dev.features.types", ["id"], TYPES)
    store.ensure_table(spec)
    expected = pa.Table.from_pylist(TYPE_ROWS, schema=TYPES)
    store.write(spec.name, expected)
    order = [3, 1, 99, 4, 2, 1]
    result = read_one(store, spec.name, keys_of(order, "id"))
    for field in TYPES:
        if field.name == "id":
            continue
        column = result.column(field.name)
        assert column.type == field.type, field.name
        column.validate(full=True)
        wanted = [None if i == 99 else expected.column(field.name)[i - 1].as_py() for i in order]
        assert same(column.to_pylist(), wanted), (field.name, column.to_pylist(), wanted)


def test_random_feature_subsets_and_keys_decode_exactly(store: OnlineStore) -> None:
    """Every decoding path (width groups, bitmaps or none, columns outside the batch) in any mix."""
    import random

    spec = OnlineTableSpec("dev.features.types", ["id"], TYPES)
    store.ensure_table(spec)
    expected = pa.Table.from_pylist(TYPE_ROWS, schema=TYPES)
    store.write(spec.name, expected)
    features = spec.feature_columns
    rng = random.Random(7)
    for _ in range(40):
        chosen = rng.sample(features, rng.randint(1, len(features)))
        ids = [rng.choice([1, 2, 3, 4, 4, 1, 99]) for _ in range(rng.randint(0, 9))]
        result = read_one(store, spec.name, keys_of(ids, "id"), chosen)
        assert result.schema.names == chosen and result.num_rows == len(ids)
        for name in chosen:
            column = result.column(name)
            column.validate(full=True)
            wanted = [None if i == 99 else expected.column(name)[i - 1].as_py() for i in ids]
            assert same(column.to_pylist(), wanted), (name, ids, column.to_pylist(), wanted)


def test_odd_widths_and_many_rows(store: OnlineStore) -> None:
    schema = pa.schema([
        ("id", pa.int32()), ("code", pa.binary(3)), ("small", pa.int16()), ("flag", pa.bool_()), ("x", pa.float32()),
        ("flag2", pa.bool_()), ("big", pa.decimal256(40, 3)),
    ])
    spec = OnlineTableSpec("dev.features.odd", ["id"], schema)
    store.ensure_table(spec)
    n = 1001
    rows = pa.table({
        "id": pa.array(range(n), pa.int32()),
        "code": pa.array([bytes([i % 256, 1, 2]) if i % 7 else None for i in range(n)], pa.binary(3)),
        "small": pa.array([i - 500 for i in range(n)], pa.int16()),
        "flag": [i % 3 == 0 if i % 5 else None for i in range(n)],
        "x": pa.array([i / 8 for i in range(n)], pa.float32()),
        "flag2": [i % 2 == 0 for i in range(n)],
        "big": pa.array([Decimal(i) * Decimal("1000000000000000000000.001") for i in range(n)], pa.decimal256(40, 3)),
    })
    store.write(spec.name, rows)
    ids = list(range(n - 1, -1, -1))
    for keys in (keys_of(ids, "id"), keys_of([*ids[:500], 5000], "id")):
        wanted_ids = keys.column("id").to_pylist()
        result = read_one(store, spec.name, keys)
        for name in spec.feature_columns:
            expected = [None if i >= n else rows.column(name)[i].as_py() for i in wanted_ids]
            assert result.column(name).to_pylist() == expected, name


def test_timestamp_and_date_keys(store: OnlineStore) -> None:
    schema = pa.schema([("day", pa.date32()), ("at", pa.timestamp("us", tz="UTC")), ("v", pa.int64())])
    store.ensure_table(OnlineTableSpec("dev.f.when", ["day", "at"], schema))
    at = datetime(2024, 1, 1, 12, tzinfo=UTC)
    store.write("dev.f.when", pa.table({"day": [date(2024, 1, 1)], "at": [at], "v": [5]}, schema=schema))
    keys = pa.table({"day": [date(2024, 1, 1), date(2024, 1, 2)],
                     "at": pa.array([at.astimezone(BERLIN)] * 2, pa.timestamp("ms", tz="Europe/Berlin"))})
    assert read_one(store, "dev.f.when", keys).column("v").to_pylist() == [5, None]


# -- expiry, delete, drop, markers -----------------------------------------------------------------


def test_rows_expire_after_ttl(backend: Backend, store: OnlineStore) -> None:
    spec = OnlineTableSpec("dev.features.fresh", ["driver_id"], SCHEMA, ttl_seconds=1)
    store.ensure_table(spec)
    store.ensure_table(DRIVERS)
    store.write(spec.name, driver_rows([1, 2]))
    store.write(DRIVERS.name, driver_rows([1]))
    assert read_one(store, spec.name, keys_of([1, 2])).column("trips").to_pylist() == [10, 20]
    backend.elapse(0.7)
    store.write(spec.name, driver_rows([2]))  # rewriting restarts its clock
    backend.elapse(0.5)
    assert read_one(store, spec.name, keys_of([1, 2])).column("trips").to_pylist() == [None, 20]
    assert store.delete(spec.name, keys_of([1])) == 0  # expired rows are not live
    backend.elapse(0.6)
    assert read_one(store, spec.name, keys_of([1, 2])).column("trips").to_pylist() == [None, None]
    assert read_one(store, DRIVERS.name, keys_of([1])).column("trips").to_pylist() == [10]  # no TTL


def test_delete(drivers: OnlineStore) -> None:
    assert drivers.delete(DRIVERS.name, keys_of([2, 2, 99])) == 1
    assert read_one(drivers, DRIVERS.name, keys_of([1, 2, 3])).column("trips").to_pylist() == [10, None, 30]
    assert drivers.delete(DRIVERS.name, keys_of([2])) == 0
    assert drivers.delete(DRIVERS.name, keys_of([])) == 0


def test_drop_table_removes_rows_spec_and_markers(drivers: OnlineStore) -> None:
    other = OnlineTableSpec("dev.features.driver_stats_v2", ["driver_id"], SCHEMA)
    drivers.ensure_table(other)
    drivers.write(other.name, driver_rows([1]))
    drivers.set_marker(DRIVERS.name, "published_version", "3")
    drivers.drop_table(DRIVERS.name)
    assert drivers.table_spec(DRIVERS.name) is None
    assert drivers.get_marker(DRIVERS.name, "published_version") is None
    with pytest.raises(NotFound):
        read_one(drivers, DRIVERS.name, keys_of([1]))
    drivers.ensure_table(DRIVERS)  # the same name again starts empty
    assert read_one(drivers, DRIVERS.name, keys_of([1, 2])).column("trips").to_pylist() == [None, None]
    assert read_one(drivers, other.name, keys_of([1])).column("trips").to_pylist() == [10]  # "…_v2" untouched
    drivers.drop_table(DRIVERS.name)
    drivers.drop_table(DRIVERS.name)


def test_drop_by_another_store_is_noticed(backend: Backend, drivers: OnlineStore) -> None:
    assert read_one(drivers, DRIVERS.name, keys_of([1])).num_rows == 1
    backend.open().drop_table(DRIVERS.name)
    with pytest.raises(NotFound):
        read_one(drivers, DRIVERS.name, keys_of([1]))


def test_markers(drivers: OnlineStore) -> None:
    assert drivers.get_marker(DRIVERS.name, "published_version") is None
    drivers.set_marker(DRIVERS.name, "published_version", "12")
    drivers.set_marker(DRIVERS.name, "checkpoint", '{"offset": 5000, "é": true}')
    drivers.set_marker(DRIVERS.name, "published_version", "13")
    assert drivers.get_marker(DRIVERS.name, "published_version") == "13"
    assert drivers.get_marker(DRIVERS.name, "checkpoint") == '{"offset": 5000, "é": true}'
    drivers.ensure_table(OnlineTableSpec(DRIVERS.name, ["driver_id"], SCHEMA.remove(3)))
    assert drivers.get_marker(DRIVERS.name, "published_version") == "13"  # survive a layout change


# -- concurrency and lifecycle -------------------------------------------------------------------


def test_threads_share_a_store(drivers: OnlineStore) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            ids = list(range(worker * 1000, worker * 1000 + 200))
            for round_ in range(5):
                drivers.write(DRIVERS.name, driver_rows(ids, rating=float(round_)), batch_size=50)
                got = read_one(drivers, DRIVERS.name, keys_of([*ids, 1]), ["rating", "zone"])
                assert got.column("rating").to_pylist()[:-1] == [round_ + i / 10 for i in ids]
                assert got.column("zone").to_pylist()[-1] == "zone-1"
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    result = read_one(drivers, DRIVERS.name, keys_of([1000, 6199]), ["rating"])
    assert result.column("rating").to_pylist() == [104.0, 4.0 + 619.9]


def test_close_is_idempotent(backend: Backend) -> None:
    with backend.open() as store:
        store.ensure_table(DRIVERS)
    store.close()


# -- choosing a backend by URI -------------------------------------------------------------------


def test_online_store_for_sqlite_uri(tmp_path: Path) -> None:
    from mlharbor.features.online.sqlite import SQLiteOnlineStore

    with online_store_for(f"sqlite:///{tmp_path}/sub/online.db", busy_timeout_seconds=5) as store:
        assert isinstance(store, SQLiteOnlineStore)
        assert store.path == tmp_path / "sub" / "online.db"
    with pytest.raises(InvalidArgument, match="invalid SQLite online store options"):
        online_store_for(f"sqlite:///{tmp_path}/x.db", colour="blue")


def test_sqlite_page_size_applies_to_new_files_only(tmp_path: Path) -> None:
    import sqlite3

    from mlharbor.features.online.sqlite import SQLiteOnlineStore

    def page_size(path: Path) -> int:
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute("PRAGMA page_size").fetchone()[0])
        finally:
            conn.close()

    rows = pa.table({"driver_id": [3, 1, 2], "rating": [4.5, 4.0, 3.5], "trips": [1, 2, 3], "zone": ["a", "b", "c"]})
    with SQLiteOnlineStore(tmp_path / "new.db") as store:
        store.ensure_table(DRIVERS)
    assert page_size(tmp_path / "new.db") == 1024
    with SQLiteOnlineStore(tmp_path / "old.db", page_size=4096) as store:  # a file made with 4 KiB pages
        store.ensure_table(DRIVERS)
        store.write(DRIVERS.name, rows)
    with SQLiteOnlineStore(tmp_path / "old.db") as store:  # keeps its pages and its rows
        store.write(DRIVERS.name, pa.table({**{c: rows.column(c) for c in rows.column_names}, "trips": [7, 8, 9]}))
        got = store.read([OnlineRead(DRIVERS.name, pa.table({"driver_id": [1, 2, 3, 4]}), ["trips"])])[0]
    assert got.column("trips").to_pylist() == [8, 9, 7, None]
    assert page_size(tmp_path / "old.db") == 4096
    with pytest.raises(InvalidArgument, match="page_size"):
        online_store_for(f"sqlite:///{tmp_path}/x.db", page_size=3000)


def test_online_store_for_redis_uri_needs_no_connection() -> None:
    from mlharbor.features.online.redis import RedisOnlineStore

    store = online_store_for("redis://127.0.0.1:1/0", prefix="p", socket_timeout_seconds=0.2)
    assert isinstance(store, RedisOnlineStore)
    with pytest.raises(InvalidArgument, match="prefix"):
        online_store_for("redis://127.0.0.1:1/0", prefix="a:b")
    with pytest.raises(InvalidArgument, match="invalid Redis online store options"):
        online_store_for("redis://127.0.0.1:1/0", password_file="x")
    store.close()


def test_unreachable_redis_is_backend_unavailable() -> None:
    from mlharbor.errors import BackendUnavailable

    store = online_store_for("redis://127.0.0.1:1/0", socket_connect_timeout_seconds=0.5)
    with store, pytest.raises(BackendUnavailable, match=r"cannot reach Redis at 127\.0\.0\.1:1/0"):
        store.table_spec("t")


def test_unknown_scheme_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="no online store for URI scheme 'mongo'"):
        online_store_for("mongo://x")
    with pytest.raises(InvalidArgument):
        online_store_for("online.db")


def test_missing_redis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ImportError
    monkeypatch.delitem(sys.modules, "mlharbor.features.online.redis", raising=False)
    with pytest.raises(MissingDependency, match=r"mlharbor\[redis\]"):
        online_store_for("redis://127.0.0.1:6379/0")


def test_package_import_loads_no_backend() -> None:
    import subprocess

    code = (
        "import sys, mlharbor.features.online as o; "
        "loaded = [m for m in ('redis', 'sqlite3', 'mlharbor.features.online.sqlite', "
        "'mlharbor.features.online.redis') if m in sys.modules]; print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
