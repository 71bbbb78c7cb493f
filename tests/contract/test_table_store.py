"""Conformance suite for ``mlharbor.lake.base.TableStore``.

:class:`TableStoreContract` holds every contract test. A backend subclasses it and provides the
``store`` and ``location`` fixtures (and, if it can, :meth:`TableStoreContract.write_foreign` to
write a table the way another tool would, without a change feed). Today: local Delta, by path and
by ``file://`` URI; an object-store backend adds a subclass whose ``location`` is an ``s3://`` URI.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlharbor.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from mlharbor.lake.base import CHANGE_TYPE, COMMIT_TIMESTAMP, COMMIT_VERSION, TableStore

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.float64())])


def batch(ids: list[int], name: str = "n", score: float = 1.0) -> pa.Table:
    return pa.table(
        {"id": pa.array(ids, pa.int64()), "name": [f"{name}{i}" for i in ids], "score": [score] * len(ids)},
        schema=SCHEMA,
    )


def rows(store: TableStore, location: str, version: int | None = None) -> list[dict[str, Any]]:
    table = store.dataset(location, version=version).to_table()
    return sorted(table.to_pylist(), key=lambda r: (r["id"] is None, r["id"] if r["id"] is not None else 0))


def ids(store: TableStore, location: str, version: int | None = None) -> list[int]:
    return sorted(store.dataset(location, version=version).to_table().column("id").to_pylist())


class TableStoreContract:
    """Every point of the ``TableStore`` contract. Subclasses provide the fixtures below."""

    @pytest.fixture
    def store(self) -> TableStore:
        raise NotImplementedError

    @pytest.fixture
    def location(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def table(self, store: TableStore, location: str) -> str:
        store.create(location, SCHEMA, actor="creator")
        return location

    def write_foreign(self, location: str, data: pa.Table) -> None:
        """Append ``data`` as another tool would (creating the table, no change feed)."""
        pytest.skip("this backend cannot write tables as another tool would")

    # -- create / exists / schema -------------------------------------------------------------

    def test_capabilities_are_declared(self, store: TableStore) -> None:
        assert isinstance(store.supports_change_feed, bool)
        assert isinstance(store.supports_time_travel, bool)

    def test_create_returns_version_zero_and_exists(self, store: TableStore, location: str) -> None:
        assert not store.exists(location)
        assert store.create(location, SCHEMA, description="trips") == 0
        assert store.exists(location)
        assert store.version(location) == 0
        assert store.schema(location).equals(SCHEMA)
        assert store.dataset(location).to_table().num_rows == 0

    def test_create_twice_is_already_exists(self, store: TableStore, table: str) -> None:
        with pytest.raises(AlreadyExists):
            store.create(table, SCHEMA)

    def test_create_rejects_unknown_partition_column(self, store: TableStore, location: str) -> None:
        with pytest.raises(InvalidArgument, match="nope"):
            store.create(location, SCHEMA, partition_by=["nope"])
        assert not store.exists(location)

    def test_missing_table_is_not_found(self, store: TableStore, location: str) -> None:
        for call in (
            lambda: store.version(location),
            lambda: store.schema(location),
            lambda: store.dataset(location),
            lambda: store.history(location),
            lambda: store.write(location, batch([1])),
            lambda: store.stats(location),
        ):
            with pytest.raises(NotFound):
                call()

    # -- write: append, overwrite, idempotence ------------------------------------------------

    def test_append_creates_one_version_per_write(self, store: TableStore, table: str) -> None:
        first = store.write(table, batch([1, 2]))
        second = store.write(table, batch([3]))
        assert (first.version, first.applied, first.num_rows) == (1, True, 2)
        assert (second.version, second.applied, second.num_rows) == (2, True, 1)
        assert ids(store, table) == [1, 2, 3]
        assert ids(store, table, version=1) == [1, 2]

    def test_overwrite_replaces_rows(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1, 2]))
        result = store.write(table, batch([9]), mode="overwrite")
        assert result.applied and result.version == 2
        assert ids(store, table) == [9]

    def test_txn_id_makes_a_retry_a_no_op(self, store: TableStore, table: str) -> None:
        first = store.write(table, batch([1, 2]), txn_id="load-1")
        store.write(table, batch([3]), txn_id="load-2")
        again = store.write(table, batch([1, 2]), txn_id="load-1")
        assert first.applied and not again.applied
        assert again.version == first.version  # the version that holds the transaction
        assert again.num_rows == 0
        assert store.version(table) == 2
        assert ids(store, table) == [1, 2, 3]

    def test_txn_id_applies_to_merge_and_overwrite(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]), mode="overwrite", txn_id="o")
        assert not store.write(table, batch([5]), mode="overwrite", txn_id="o").applied
        store.write(table, batch([2], name="m"), mode="merge", keys=["id"], txn_id="m")
        assert not store.write(table, batch([3]), mode="merge", keys=["id"], txn_id="m").applied
        assert ids(store, table) == [1, 2]

    def test_concurrent_appends_lose_nothing(self, store: TableStore, table: str) -> None:
        errors: list[BaseException] = []

        def writer(w: int) -> None:
            try:
                for i in range(5):
                    store.write(table, batch([w * 100 + i]), txn_id=f"w{w}-{i}")
                    store.write(table, batch([w * 100 + i]), txn_id=f"w{w}-{i}")  # a retry
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert ids(store, table) == sorted(w * 100 + i for w in range(4) for i in range(5))
        assert store.version(table) == 20

    # -- RecordBatchReader input and empty data -----------------------------------------------

    def test_record_batch_reader_is_streamed_once(self, store: TableStore, table: str) -> None:
        pulled: list[int] = []

        def batches() -> Any:
            for start in range(0, 30, 10):
                pulled.append(start)
                yield batch(list(range(start, start + 10))).to_batches()[0]

        reader = pa.RecordBatchReader.from_batches(SCHEMA, batches())
        result = store.write(table, reader, txn_id="stream")
        assert result.applied and result.num_rows == 30
        assert pulled == [0, 10, 20]
        assert ids(store, table) == list(range(30))

    def test_empty_append_commits_nothing(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]))
        result = store.write(table, SCHEMA.empty_table())
        assert (result.applied, result.num_rows, result.version) == (False, 0, 1)
        empty_batches = [pa.RecordBatch.from_pylist([], schema=SCHEMA)] * 2
        assert not store.write(table, pa.RecordBatchReader.from_batches(SCHEMA, empty_batches)).applied
        assert not store.write(table, pa.RecordBatchReader.from_batches(SCHEMA, [])).applied
        assert not store.write(table, SCHEMA.empty_table(), mode="merge", keys=["id"]).applied
        assert store.version(table) == 1

    def test_empty_overwrite_empties_the_table(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1, 2]))
        result = store.write(table, SCHEMA.empty_table(), mode="overwrite")
        assert result.applied and result.version == 2
        assert ids(store, table) == []

    def test_unsupported_data_and_mode_are_invalid(self, store: TableStore, table: str) -> None:
        with pytest.raises(InvalidArgument):
            store.write(table, [{"id": 1}])  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            store.write(table, batch([1]), mode="upsert")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            store.write(table, batch([1]), keys=["id"])
        assert store.version(table) == 0

    # -- merge ---------------------------------------------------------------------------------

    def test_merge_upserts_on_keys(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1, 2], name="old"))
        result = store.write(table, batch([2, 3], name="new", score=5.0), mode="merge", keys=["id"])
        assert result.applied and result.num_rows == 2
        assert rows(store, table) == [
            {"id": 1, "name": "old1", "score": 1.0},
            {"id": 2, "name": "new2", "score": 5.0},
            {"id": 3, "name": "new3", "score": 5.0},
        ]

    def test_merge_leaves_unchanged_rows_out_of_the_change_feed(self, store: TableStore, table: str) -> None:
        store.write(table, pa.table({"id": [1, 2, 3], "name": ["a", None, "c"], "score": [1.0, 2.0, None]},
                                    schema=SCHEMA))
        before = store.version(table)
        again = pa.table({"id": [1, 2, 3], "name": ["a", None, "c!"], "score": [1.0, 2.0, None]}, schema=SCHEMA)
        store.write(table, again, mode="merge", keys=["id"])
        changes = store.changes(table, before)
        assert sorted(set(changes.column("id").to_pylist())) == [3]  # nulls compare equal to nulls

    def test_merge_needs_keys(self, store: TableStore, table: str) -> None:
        with pytest.raises(InvalidArgument, match="keys"):
            store.write(table, batch([1]), mode="merge")
        with pytest.raises(InvalidArgument, match="nope"):
            store.write(table, batch([1]), mode="merge", keys=["nope"])

    def test_merge_refuses_duplicate_keys_without_writing(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]))
        with pytest.raises(InvalidArgument, match="duplicate"):
            store.write(table, batch([2, 2]), mode="merge", keys=["id"])
        assert store.version(table) == 1

    def test_merge_keys_compare_null_safely(self, store: TableStore, table: str) -> None:
        store.write(table, pa.table({"id": [None, 1], "name": ["a", "b"], "score": [1.0, 1.0]}, schema=SCHEMA))
        update = pa.table({"id": [None], "name": ["z"], "score": [2.0]}, schema=SCHEMA)
        store.write(table, update, mode="merge", keys=["id"])
        assert rows(store, table) == [
            {"id": 1, "name": "b", "score": 1.0},
            {"id": None, "name": "z", "score": 2.0},
        ]
        two_nulls = pa.table({"id": [None, None], "name": ["x", "y"], "score": [0.0, 0.0]}, schema=SCHEMA)
        with pytest.raises(InvalidArgument, match="duplicate"):
            store.write(table, two_nulls, mode="merge", keys=["id"])

    def test_merge_with_composite_keys_and_partial_columns(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1, 2], name="a"))
        partial = pa.table({"id": [1, 3], "name": ["a1", "a3"]})
        store.write(table, partial, mode="merge", keys=["id", "name"])
        got = {(r["id"], r["name"]): r["score"] for r in rows(store, table)}
        assert got == {(1, "a1"): 1.0, (2, "a2"): 1.0, (3, "a3"): None}

    def test_merge_from_a_reader(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]))
        reader = pa.RecordBatchReader.from_batches(SCHEMA, batch([1, 2], name="r").to_batches())
        assert store.write(table, reader, mode="merge", keys=["id"]).num_rows == 2
        assert [r["name"] for r in rows(store, table)] == ["r1", "r2"]

    # -- schema --------------------------------------------------------------------------------

    def test_new_column_refused_without_evolution_and_nothing_written(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]))
        before = store.stats(table)
        extra = batch([2]).append_column("city", pa.array(["Oslo"])).append_column("zone", pa.array([3]))
        with pytest.raises(InvalidArgument) as info:
            store.write(table, extra)
        assert "city" in info.value.message and "zone" in info.value.message
        assert "schema_evolution" in info.value.message
        assert store.version(table) == 1
        assert store.stats(table)["num_files"] == before["num_files"]
        assert ids(store, table) == [1]

    def test_type_change_refused_listing_columns(self, store: TableStore, table: str) -> None:
        bad = pa.table({"id": ["x"], "name": [1], "score": [1.0]})
        for evolve in (False, True):
            with pytest.raises(InvalidArgument) as info:
                store.write(table, bad, schema_evolution=evolve)
            assert "id: table int64, data string" in info.value.message
            assert "name: table string, data int64" in info.value.message
        assert store.version(table) == 0

    def test_equivalent_and_widening_types_accepted(self, store: TableStore, table: str) -> None:
        data = pa.table(
            {
                "id": pa.array([1], pa.int32()),
                "name": pa.array(["a"], pa.large_string()),
                "score": pa.array([1.5], pa.float32()),
            }
        )
        store.write(table, data)
        reordered = pa.table({"score": [2.0], "name": pa.array(["b"]).dictionary_encode(), "id": [2]})
        store.write(table, reordered)
        assert rows(store, table) == [
            {"id": 1, "name": "a", "score": 1.5},
            {"id": 2, "name": "b", "score": 2.0},
        ]
        assert store.schema(table).equals(SCHEMA)

    def test_missing_nullable_column_is_filled_with_nulls(self, store: TableStore, table: str) -> None:
        store.write(table, pa.table({"id": [1]}))
        assert rows(store, table) == [{"id": 1, "name": None, "score": None}]

    def test_schema_evolution_adds_columns(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]))
        store.write(table, batch([2]).append_column("city", pa.array(["Oslo"])), schema_evolution=True)
        assert store.schema(table).names == ["id", "name", "score", "city"]
        assert [r["city"] for r in rows(store, table)] == [None, "Oslo"]
        assert store.dataset(table, version=1).schema.names == ["id", "name", "score"]

    def test_schema_evolution_in_merge(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1, 2]))
        src = pa.table({"id": [2], "city": ["Oslo"]})
        store.write(table, src, mode="merge", keys=["id"], schema_evolution=True)
        assert {r["id"]: (r["name"], r["city"]) for r in rows(store, table)} == {
            1: ("n1", None),
            2: ("n2", "Oslo"),
        }

    # -- time travel ---------------------------------------------------------------------------

    def test_time_travel_by_version_and_timestamp(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]))
        time.sleep(0.02)
        between = datetime.now(UTC)
        time.sleep(0.02)
        store.write(table, batch([2]))
        assert store.resolve_version(table, between) == 1
        assert store.resolve_version(table, datetime.now(UTC) + timedelta(seconds=1)) == 2
        naive_utc = between.replace(tzinfo=None)
        assert store.resolve_version(table, naive_utc) == 1
        assert ids(store, table, version=1) == [1]
        assert sorted(store.dataset(table, timestamp=between).to_table().column("id").to_pylist()) == [1]

    def test_time_travel_errors(self, store: TableStore, table: str) -> None:
        with pytest.raises(InvalidArgument, match="before"):
            store.resolve_version(table, datetime(2000, 1, 1, tzinfo=UTC))
        with pytest.raises(NotFound):
            store.dataset(table, version=7)
        with pytest.raises(InvalidArgument):
            store.dataset(table, version=0, timestamp=datetime.now(UTC))

    # -- history -------------------------------------------------------------------------------

    def test_history_newest_first_with_actor_metadata(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]), actor="alice", request_id="req-1", txn_id="t-1")
        store.write(table, batch([2]), mode="merge", keys=["id"], actor="bob")
        history = store.history(table)
        assert [c.version for c in history] == [2, 1, 0]
        assert (history[1].actor, history[1].request_id, history[1].txn_id) == ("alice", "req-1", "t-1")
        assert (history[0].actor, history[0].request_id, history[0].txn_id) == ("bob", None, None)
        assert history[2].actor == "creator"
        assert history[0].timestamp >= history[1].timestamp >= history[2].timestamp
        assert history[0].timestamp.tzinfo is not None
        assert all(isinstance(c.operation, str) and c.operation for c in history)
        assert [c.version for c in store.history(table, limit=1)] == [2]
        with pytest.raises(InvalidArgument):
            store.history(table, limit=0)

    # -- changes -------------------------------------------------------------------------------

    def _change_rows(self, changes: pa.Table) -> list[tuple[int, str, int | None, str | None]]:
        return sorted((r[COMMIT_VERSION], r[CHANGE_TYPE], r["id"], r["name"]) for r in changes.to_pylist())  # type: ignore[return-value]

    def test_changes_from_the_change_feed(self, store: TableStore, table: str) -> None:
        if not store.supports_change_feed:
            pytest.skip("backend has no change feed")
        store.write(table, batch([1, 2], name="a"))
        store.write(table, batch([2], name="b"), mode="merge", keys=["id"])
        store.write(table, batch([7], name="c"), mode="overwrite")
        changes = store.changes(table, 0)
        assert changes.schema.names[-3:] == [CHANGE_TYPE, COMMIT_VERSION, COMMIT_TIMESTAMP]
        assert changes.schema.field(COMMIT_VERSION).type == pa.int64()
        assert changes.schema.field("name").type == pa.string()
        assert self._change_rows(changes) == [
            (1, "insert", 1, "a1"),
            (1, "insert", 2, "a2"),
            (2, "update_postimage", 2, "b2"),
            (2, "update_preimage", 2, "a2"),
            (3, "delete", 1, "a1"),
            (3, "delete", 2, "b2"),
            (3, "insert", 7, "c7"),
        ]
        assert self._change_rows(store.changes(table, 1, 2)) == [
            (2, "update_postimage", 2, "b2"),
            (2, "update_preimage", 2, "a2"),
        ]
        history = {c.version: c.timestamp for c in store.history(table)}
        stamps = {r[COMMIT_VERSION]: r[COMMIT_TIMESTAMP] for r in changes.to_pylist()}
        assert all(abs((stamps[v] - history[v]).total_seconds()) < 1 for v in stamps)

    def test_changes_of_an_empty_range_and_bad_ranges(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]))
        assert store.changes(table, 1).num_rows == 0
        assert store.changes(table, 1).schema.names[:3] == SCHEMA.names
        for bad in ((2, None), (1, 0), (0, 5), (-2, 1)):
            with pytest.raises(InvalidArgument):
                store.changes(table, *bad)

    def test_changes_by_version_diff_without_a_feed(self, store: TableStore, location: str) -> None:
        self.write_foreign(location, batch([1, 2], name="a"))
        self.write_foreign(location, batch([3], name="a"))
        v = store.version(location)
        store.write(location, batch([2], name="b"), mode="merge", keys=["id"])
        store.write(location, pa.table({"id": [2], "name": ["b2"], "score": [1.0], "x": [5]}), schema_evolution=True)
        changes = store.changes(location, v - 1)
        assert set(changes.column(COMMIT_VERSION).to_pylist()) == {v + 2}
        assert self._change_rows(changes) == [
            (v + 2, "delete", 2, "a2"),
            (v + 2, "insert", 2, "b2"),
            (v + 2, "insert", 2, "b2"),
            (v + 2, "insert", 3, "a3"),
        ]
        assert "x" in changes.schema.names
        whole = store.changes(location, -1)
        assert sorted(r["id"] for r in whole.to_pylist()) == [1, 2, 2, 3]
        assert set(whole.column(CHANGE_TYPE).to_pylist()) == {"insert"}

    # -- maintenance ---------------------------------------------------------------------------

    def test_optimize_keeps_data_and_reduces_files(self, store: TableStore, table: str) -> None:
        for i in range(6):
            store.write(table, batch([i]))
        before = store.stats(table)
        expected = rows(store, table)
        metrics = store.optimize(table)
        after = store.stats(table)
        assert isinstance(metrics, dict)
        assert after["num_files"] < before["num_files"]
        assert after["num_rows"] == before["num_rows"] == 6
        assert rows(store, table) == expected
        assert ids(store, table, version=3) == [0, 1, 2]

    def test_vacuum_removes_unreferenced_files(self, store: TableStore, table: str) -> None:
        for i in range(3):
            store.write(table, batch([i]))
        store.optimize(table)
        planned = store.vacuum(table, retain_hours=0, dry_run=True)
        assert len(planned) == 3
        assert ids(store, table, version=2) == [0, 1]  # dry run removed nothing
        removed = store.vacuum(table, retain_hours=0)
        assert sorted(removed) == sorted(planned)
        assert ids(store, table) == [0, 1, 2]
        assert store.vacuum(table, retain_hours=0) == []
        assert store.vacuum(table, retain_hours=168) == []
        with pytest.raises(InvalidArgument):
            store.vacuum(table, retain_hours=-1)

    def test_delete_removes_table_and_ignores_missing(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1]))
        store.delete(table)
        assert not store.exists(table)
        with pytest.raises(NotFound):
            store.version(table)
        store.delete(table)  # missing: ignored
        assert store.create(table, SCHEMA) == 0  # the location is reusable
        assert ids(store, table) == []

    def test_stats(self, store: TableStore, table: str) -> None:
        store.write(table, batch([1, 2]))
        store.write(table, batch([3]))
        stats = store.stats(table)
        assert stats["version"] == 2
        assert stats["num_files"] == 2
        assert stats["num_rows"] == 3
        assert stats["size_bytes"] > 0

    def test_partitioned_table_round_trips_awkward_values(self, store: TableStore, location: str) -> None:
        store.create(location, SCHEMA, partition_by=["name"])
        data = pa.table({"id": [1, 2, 3, 4], "name": ["a b", "a/b", "c%d", None], "score": [1.0] * 4})
        store.write(location, data)
        assert rows(store, location) == sorted(data.to_pylist(), key=lambda r: r["id"])
        filtered = store.dataset(location).to_table(filter=pc.field("name") == "a/b")
        assert filtered.column("id").to_pylist() == [2]

    def test_conflict_error_type_is_exported(self) -> None:
        # callers catch Conflict for writes that could not be retried (a consumed reader)
        assert issubclass(Conflict, Exception)


class TestLocalDelta(TableStoreContract):
    """Delta tables at local paths."""

    @pytest.fixture
    def store(self) -> TableStore:
        from mlharbor.lake.delta import DeltaTableStore

        return DeltaTableStore()

    @pytest.fixture
    def location(self, tmp_path: Any) -> str:
        return str(tmp_path / "lake" / "trips")

    def write_foreign(self, location: str, data: pa.Table) -> None:
        from deltalake import write_deltalake

        write_deltalake(location, data, mode="append")


class TestLocalDeltaFileUri(TestLocalDelta):
    """The same tables addressed by ``file://`` URIs."""

    @pytest.fixture
    def location(self, tmp_path: Any) -> str:
        return (tmp_path / "lake" / "trips").as_uri()


class TestDeltaSpecifics:
    """What only the Delta backend promises: table properties, error mapping, object-store delete."""

    def test_create_enables_change_feed_and_records_description(self, tmp_path: Any) -> None:
        from deltalake import DeltaTable

        from mlharbor.lake.delta import DeltaTableStore

        location = str(tmp_path / "t")
        DeltaTableStore().create(location, SCHEMA, description="raw trips")
        metadata = DeltaTable(location).metadata()
        assert metadata.description == "raw trips"
        assert metadata.configuration["delta.enableChangeDataFeed"] == "true"

    def test_unreachable_object_store_is_backend_unavailable(self) -> None:
        from mlharbor.errors import BackendUnavailable
        from mlharbor.lake.delta import DeltaTableStore

        store = DeltaTableStore(
            storage_options={
                "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true",
                "max_retries": "0",
                "timeout": "2s",
            }
        )
        with pytest.raises(BackendUnavailable) as info:
            store.version("s3://bucket/trips")
        assert "\x1b[" not in info.value.message
        with pytest.raises(BackendUnavailable):
            store.exists("s3://bucket/trips")

    def test_object_store_delete_removes_log_and_data(self, tmp_path: Any) -> None:
        from mlharbor.lake.delta import DeltaTableStore
        from mlharbor.lake.delta_log import delete_object_store_table

        store = DeltaTableStore()
        location = str(tmp_path / "t")
        store.create(location, SCHEMA, partition_by=["name"])
        store.write(location, batch([1, 2]))
        delete_object_store_table((tmp_path / "t").as_uri(), {})
        assert not store.exists(location)
        leftovers = [p for p in (tmp_path / "t").rglob("*") if p.is_file()]
        assert leftovers == []

    def test_delete_leaves_a_directory_that_is_not_a_table(self, tmp_path: Any) -> None:
        from mlharbor.lake.delta import DeltaTableStore

        keep = tmp_path / "not-a-table"
        keep.mkdir()
        (keep / "file.txt").write_text("precious")
        DeltaTableStore().delete(str(keep))
        assert (keep / "file.txt").read_text() == "precious"

    def test_vacuum_removes_orphans_of_crashed_writers(self, tmp_path: Any) -> None:
        from mlharbor.lake.delta import DeltaTableStore

        store = DeltaTableStore()
        location = str(tmp_path / "t")
        store.create(location, SCHEMA)
        store.write(location, batch([1]))
        (tmp_path / "t" / "part-orphan.parquet").write_bytes(b"PAR1")
        assert store.vacuum(location, retain_hours=1) == []  # too young
        assert store.vacuum(location, retain_hours=0) == ["part-orphan.parquet"]
        assert ids(store, location) == [1]

    @pytest.mark.parametrize("as_reader", [False, True])
    def test_stale_snapshot_cannot_commit_a_txn_twice(self, tmp_path: Any, monkeypatch: Any, as_reader: bool) -> None:
        """Two writers check the same txn on the same snapshot; only one commit lands."""
        from mlharbor.lake import delta
        from mlharbor.lake.delta import DeltaTableStore

        store = DeltaTableStore()
        location = str(tmp_path / "t")
        store.create(location, SCHEMA)
        real_open = DeltaTableStore._open
        stale = real_open(store, location)
        calls = {"n": 0}

        def open_stale_first(self: Any, loc: str, version: int | None = None) -> Any:
            calls["n"] += 1
            return stale if calls["n"] == 1 else real_open(self, loc, version)

        # another writer commits the same txn after our snapshot was taken
        store.write(location, batch([1]), txn_id="same")
        monkeypatch.setattr(DeltaTableStore, "_open", open_stale_first)
        monkeypatch.setattr(delta, "_backoff", lambda attempt: None)
        data: Any = batch([1])
        if as_reader:  # consumed by the failed commit: the store re-checks the txn instead of retrying
            data = pa.RecordBatchReader.from_batches(SCHEMA, data.to_batches())
        result = store.write(location, data, txn_id="same")
        assert not result.applied and result.version == 1
        monkeypatch.undo()
        assert ids(store, location) == [1]
