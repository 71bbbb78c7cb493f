"""Delta Lake tables through delta-rs (``deltalake``): the default :class:`TableStore`.

Locations are local paths (or ``file://`` URIs) or object-store URIs (``s3://``, ``gs://``,
``az://``…), handed to delta-rs together with the store's ``storage_options``.

Decisions, beyond the ``TableStore`` contract:

* **Idempotence.** A ``txn_id`` becomes the Delta application transaction ``mlharbor:<txn_id>``
  (version 1). The store checks it on a snapshot and commits *from that same snapshot*, so a
  concurrent commit of the same id makes delta-rs fail the second commit; the store then reloads,
  finds the id and answers ``applied=False`` with the version that holds it.
* **Conflicts.** delta-rs retries commits that do not logically conflict (concurrent appends).
  A real conflict (e.g. a merge that read files an append changed) is retried here, with
  jittered exponential backoff, up to ``max_attempts`` times; then :class:`Conflict` is raised.
  A ``RecordBatchReader`` is streamed once, so a write from a reader that hits a real conflict
  after its data was consumed raises :class:`Conflict` (nothing was committed; send it again).
* **Empty data.** Appending or merging zero rows commits nothing and returns
  ``applied=False, num_rows=0`` with the current version and ``metrics["reason"] == "empty"``
  (so incremental pipelines do not fill the history, and triggers on table updates stay quiet).
  Overwriting with zero rows does commit: it empties the table.
* **Merge keys** compare null-safely (``IS NOT DISTINCT FROM``): a source row whose key is null
  updates the target row whose key is null. The duplicate-key check in the source uses the same
  rule, so two source rows with a null key are duplicates. Columns missing from a merge source are
  left unchanged in updated rows and null in inserted rows. Merge reads its source into memory.
* **Commit metadata.** ``actor``, ``request_id`` and ``txn_id`` are stored in the commit info as
  ``mlharbor.actor`` … and come back from ``history()``.
* **Change feed.** Tables created here have ``delta.enableChangeDataFeed=true``. For a table
  without it (written by another tool), ``changes()`` falls back to a version diff (see
  ``mlharbor.lake.changes``).
* **Vacuum** accepts any retention, below Delta's 168-hour safety default too: files removed by a
  short retention make time travel to the versions that used them fail.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlharbor.core.clock import as_utc
from mlharbor.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    InvalidArgument,
    MlharborError,
    NotFound,
)
from mlharbor.lake.base import Commit, TableStore, WriteMode, WriteResult
from mlharbor.lake.delta_log import (
    LogEntry,
    delete_object_store_table,
    existing_files,
    iter_commits,
    local_path,
)
from mlharbor.lake.write_input import (
    WriteInput,
    WritePlan,
    check_keys,
    check_unique_keys,
    check_write_args,
    plan_write,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from deltalake import CommitProperties, DeltaTable

APP_ID_PREFIX = "mlharbor:"
META_ACTOR = "mlharbor.actor"
META_REQUEST_ID = "mlharbor.request_id"
META_TXN_ID = "mlharbor.txn_id"
CDF_PROPERTY = "delta.enableChangeDataFeed"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # delta-rs colours its error chains


class DeltaTableStore(TableStore):
    """Delta tables at local paths or object-store URIs (see the module docstring for decisions).

    ``storage_options`` are passed to delta-rs for every location (credentials, endpoint,
    ``AWS_ALLOW_HTTP``…). ``max_attempts`` bounds the retries of a write after real commit
    conflicts; ``max_commit_retries`` is delta-rs's own bound for non-conflicting races.
    """

    supports_change_feed = True
    supports_time_travel = True

    def __init__(
        self,
        storage_options: dict[str, str] | None = None,
        max_attempts: int = 8,
        max_commit_retries: int = 100,
    ) -> None:
        self._storage_options = dict(storage_options or {})
        self._max_attempts = max(1, max_attempts)
        self._max_commit_retries = max_commit_retries

    # -- create / exists / delete ------------------------------------------------------------

    def create(
        self,
        location: str,
        schema: pa.Schema,
        partition_by: list[str] | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Create an empty table with the change data feed on; AlreadyExists if a table is there."""
        import pyarrow as pa
        from deltalake import DeltaTable

        if not isinstance(schema, pa.Schema) or len(schema) == 0:
            raise InvalidArgument("a table needs a pyarrow Schema with at least one column")
        unknown = [c for c in partition_by or [] if schema.get_field_index(c) < 0]
        if unknown:
            raise InvalidArgument(f"partition columns not in the schema: {', '.join(unknown)}")
        # Delta stores timestamps as microseconds, zone-aware ones in UTC: any unit or zone (DuckDB
        # answers "Etc/UTC", pandas "America/...") is the same instant there
        schema = pa.schema(
            [f.with_type(pa.timestamp("us", tz="UTC" if f.type.tz else None)) if pa.types.is_timestamp(f.type) else f
             for f in schema],
            metadata=schema.metadata,
        )
        with self._errors(location):
            if self.exists(location):
                raise AlreadyExists(f"a table already exists at {location!r}")
            dt = DeltaTable.create(
                location,
                schema,
                mode="error",
                partition_by=partition_by or None,
                description=description,
                configuration={CDF_PROPERTY: "true"},
                storage_options=self._storage_options or None,
                commit_properties=self._commit_properties(actor, None, None),
            )
            return int(dt.version())

    def exists(self, location: str) -> bool:
        """True if a Delta table (a ``_delta_log`` with commits) is at ``location``."""
        from deltalake import DeltaTable

        with self._errors(location):
            return bool(DeltaTable.is_deltatable(location, storage_options=self._storage_options or None))

    def delete(self, location: str) -> None:
        """Remove the table and its files; a location without a Delta table is left alone.

        Locally the directory is first renamed (atomic), so readers never see half a table; on
        object stores the log goes first, then the data files.
        """
        if not self.exists(location):
            return
        path = local_path(location)
        with self._errors(location):
            if path is not None:
                doomed = f"{path.rstrip(os.sep)}.deleting-{uuid.uuid4().hex[:8]}"
                os.rename(path, doomed)
                shutil.rmtree(doomed)
            else:
                delete_object_store_table(location, self._storage_options)

    # -- write -------------------------------------------------------------------------------

    def write(
        self,
        location: str,
        data: pa.Table | pa.RecordBatchReader,
        mode: WriteMode = "append",
        keys: list[str] | None = None,
        txn_id: str | None = None,
        schema_evolution: bool = False,
        actor: str | None = None,
        request_id: str | None = None,
    ) -> WriteResult:
        """Write ``data`` as one new version; see the class contract and the module decisions."""
        check_write_args(mode, keys, txn_id)
        source = WriteInput(data)
        props = self._commit_properties(actor, request_id, txn_id)
        last: Exception | None = None
        with self._errors(location):
            for attempt in range(self._max_attempts):
                dt = self._open(location)
                done = self._already_done(location, dt, txn_id)
                if done is not None:
                    return done
                plan = plan_write(self._arrow_schema(dt), source.schema, schema_evolution, mode != "merge")
                if mode == "merge":
                    check_keys(keys or [], plan, self._arrow_schema(dt))
                    if attempt == 0:
                        check_unique_keys(source.materialise(), keys or [])
                if mode != "overwrite" and source.is_empty():
                    return WriteResult(dt.version(), applied=False, num_rows=0, metrics={"reason": "empty"})
                try:
                    metrics = self._commit_once(dt, source, plan, mode, keys or [], props)
                except Exception as exc:
                    if not _is_commit_conflict(exc):
                        raise
                    last = exc
                    if not source.replayable:
                        return self._after_lost_reader(location, txn_id, exc)
                    _backoff(attempt)
                    continue
                metrics["attempts"] = attempt + 1
                return WriteResult(int(dt.version()), applied=True, num_rows=source.rows, metrics=metrics)
        raise Conflict(f"write to {location!r} still conflicted after {self._max_attempts} attempts: {last}")

    def _commit_once(
        self,
        dt: DeltaTable,
        source: WriteInput,
        plan: WritePlan,
        mode: WriteMode,
        keys: list[str],
        props: CommitProperties,
    ) -> dict[str, Any]:
        from deltalake import write_deltalake

        if mode == "merge":
            return self._merge_once(dt, source, plan, keys, props)
        write_deltalake(
            dt,
            source.reader(plan),
            mode=mode,
            schema_mode="merge" if plan.new_columns else None,
            commit_properties=props,
        )
        return {}

    def _merge_once(
        self, dt: DeltaTable, source: WriteInput, plan: WritePlan, keys: list[str], props: CommitProperties
    ) -> dict[str, Any]:
        import pyarrow as pa

        from mlharbor.lake.duck import quote_ident

        table = source.reader(plan)
        predicate = " AND ".join(f"(t.{quote_ident(k)} IS NOT DISTINCT FROM s.{quote_ident(k)})" for k in keys)
        assignments = {quote_ident(c): f"s.{quote_ident(c)}" for c in plan.target.names}
        merger = dt.merge(
            table,
            predicate,
            source_alias="s",
            target_alias="t",
            merge_schema=bool(plan.new_columns),
            commit_properties=props,
        )
        values = [f for f in plan.target if f.name not in keys]
        if values:
            # rewrite only rows whose values change: unchanged rows stay out of the change feed, so an
            # idempotent re-merge leaves nothing for incremental readers (not when columns are being
            # added, nor for nested types, which DataFusion cannot compare)
            nested = any(pa.types.is_nested(f.type) for f in values)
            changed = None if nested or plan.new_columns else " OR ".join(
                f"(t.{quote_ident(f.name)} IS DISTINCT FROM s.{quote_ident(f.name)})" for f in values)
            merger = merger.when_matched_update(updates=assignments, predicate=changed)
        metrics = merger.when_not_matched_insert(updates=assignments).execute()
        return dict(metrics)

    def _already_done(self, location: str, dt: DeltaTable, txn_id: str | None) -> WriteResult | None:
        if txn_id is None or dt.transaction_version(APP_ID_PREFIX + txn_id) is None:
            return None
        return WriteResult(
            self._txn_commit_version(location, dt, txn_id),
            applied=False,
            num_rows=0,
            metrics={"reason": "txn_already_committed"},
        )

    def _after_lost_reader(self, location: str, txn_id: str | None, exc: Exception) -> WriteResult:
        done = self._already_done(location, self._open(location), txn_id)
        if done is not None:
            return done
        raise Conflict(
            f"write to {location!r} conflicted with a concurrent change after its RecordBatchReader was "
            f"consumed; nothing was committed, send the data again ({exc})"
        )

    def _txn_commit_version(self, location: str, dt: DeltaTable, txn_id: str) -> int:
        """The version whose commit carries the txn; the snapshot's if the log was cleaned up."""
        app_id = APP_ID_PREFIX + txn_id
        for entry in iter_commits(location, self._storage_options, int(dt.version())):
            if app_id in entry.app_ids:
                return entry.version
        return int(dt.version())

    def _commit_properties(self, actor: str | None, request_id: str | None, txn_id: str | None) -> CommitProperties:
        from deltalake import CommitProperties, Transaction

        meta = {META_ACTOR: actor, META_REQUEST_ID: request_id, META_TXN_ID: txn_id}
        return CommitProperties(
            custom_metadata={k: v for k, v in meta.items() if v is not None} or None,
            app_transactions=[Transaction(APP_ID_PREFIX + txn_id, 1)] if txn_id else None,
            max_commit_retries=self._max_commit_retries,
        )

    # -- reads -------------------------------------------------------------------------------

    def dataset(self, location: str, version: int | None = None, timestamp: datetime | None = None) -> pads.Dataset:
        """The table at ``version`` or as of ``timestamp`` (not both; default latest) as an Arrow dataset.

        Local tables are read through Arrow's native file system (faster than delta-rs's Python
        file handler). NotFound for a version that does not exist.
        """
        return self.snapshot(location, version, timestamp)[0]

    def snapshot(
        self, location: str, version: int | None = None, timestamp: datetime | None = None
    ) -> tuple[pads.Dataset, int]:
        """``dataset`` and the version it holds, from one open of the Delta log."""
        import pyarrow.fs as pafs

        if version is not None and timestamp is not None:
            raise InvalidArgument("pass a version or a timestamp, not both")
        with self._errors(location):
            if timestamp is not None:
                version = self.resolve_version(location, timestamp)
            dt = self._open(location, version)
            path = local_path(location)
            fs = pafs.SubTreeFileSystem(path, pafs.LocalFileSystem()) if path is not None else None
            return dt.to_pyarrow_dataset(filesystem=fs), int(dt.version())

    def version(self, location: str) -> int:
        """The latest committed version."""
        with self._errors(location):
            return int(self._open(location).version())

    def resolve_version(self, location: str, timestamp: datetime) -> int:
        """The newest version committed at or before ``timestamp`` (naive means UTC)."""
        when = as_utc(timestamp)
        commits = self.history(location)
        eligible = [c.version for c in commits if c.timestamp <= when]
        if not eligible:
            first = min(commits, key=lambda c: c.version)
            raise InvalidArgument(
                f"{when.isoformat()} is before the first available version of {location!r} "
                f"(version {first.version} at {first.timestamp.isoformat()})"
            )
        return max(eligible)

    def schema(self, location: str) -> pa.Schema:
        """The current Arrow schema."""
        with self._errors(location):
            return self._arrow_schema(self._open(location))

    def history(self, location: str, limit: int | None = None) -> list[Commit]:
        """Commits, newest first, with the actor, request id and txn id recorded by ``write``.

        Read from the commit log of one snapshot (exact under concurrent writers); commits whose
        log files were cleaned up after a checkpoint are no longer listed.
        """
        if limit is not None and limit < 1:
            raise InvalidArgument("limit must be at least 1")
        with self._errors(location):
            newest = int(self._open(location).version())
            return [_commit_of(e) for e in iter_commits(location, self._storage_options, newest, limit)]

    def changes(self, location: str, from_version: int, to_version: int | None = None) -> pa.Table:
        """Changes in versions ``from_version + 1 .. to_version``: from the change data feed when the
        table has it on over the whole range, else a version diff (``mlharbor.lake.changes``).
        ``from_version`` may be -1 to include version 0."""
        from mlharbor.lake import changes as ch

        with self._errors(location):
            latest = self._open(location)
            to = int(latest.version()) if to_version is None else to_version
            if not -1 <= from_version <= to <= latest.version():
                raise InvalidArgument(
                    f"need -1 <= from_version <= to_version <= {latest.version()}, got {from_version} and {to_version}"
                )
            schema = self._arrow_schema(self._open(location, to))
            if from_version == to:
                return ch.empty_changes(schema)
            if self._feed_covers(location, latest, from_version + 1):
                feed = latest.load_cdf(starting_version=from_version + 1, ending_version=to)
                return ch.normalise_feed(feed, schema)
            old = self.dataset(location, from_version) if from_version >= 0 else None
            committed = _commit_of(next(iter_commits(location, self._storage_options, to, 1))).timestamp
            return ch.diff_versions(old, self.dataset(location, to), schema, to, committed)

    def _feed_covers(self, location: str, latest: DeltaTable, first_version: int) -> bool:
        """True if the change data feed is on at the latest version and at ``first_version``."""
        if latest.metadata().configuration.get(CDF_PROPERTY, "").lower() != "true":
            return False
        if first_version == latest.version():
            return True
        first = self._open(location, first_version)
        return bool(first.metadata().configuration.get(CDF_PROPERTY, "").lower() == "true")

    def stats(self, location: str) -> dict[str, Any]:
        """``version``, ``num_files``, ``size_bytes`` and ``num_rows`` (None if a file lacks stats)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        with self._errors(location):
            dt = self._open(location)
            actions = pa.table(dt.get_add_actions(flatten=True))
        records = actions.column("num_records") if "num_records" in actions.column_names else None
        known = records is not None and records.null_count == 0
        return {
            "version": int(dt.version()),
            "num_files": actions.num_rows,
            "size_bytes": int(pc.sum(actions.column("size_bytes")).as_py() or 0),
            "num_rows": int(pc.sum(records).as_py() or 0) if known and records is not None else None,
        }

    # -- maintenance -------------------------------------------------------------------------

    def optimize(self, location: str, target_size: int | None = None) -> dict[str, Any]:
        """Compact small files (bin-packing, ``target_size`` bytes per file, default delta-rs's)."""
        if target_size is not None and target_size < 1:
            raise InvalidArgument("target_size must be a positive number of bytes")
        with self._errors(location):
            for attempt in range(self._max_attempts):
                dt = self._open(location)
                try:
                    metrics = dict(dt.optimize.compact(target_size=target_size))
                except Exception as exc:
                    if not _is_commit_conflict(exc) or attempt + 1 == self._max_attempts:
                        raise
                    _backoff(attempt)
                    continue
                metrics["version"] = int(dt.version())
                return metrics
        raise AssertionError("unreachable")

    def vacuum(self, location: str, retain_hours: float, dry_run: bool = False) -> list[str]:
        """Delete files unreferenced for longer than ``retain_hours`` (rounded up to whole hours);
        returns their paths relative to the table root.

        Covers files the log removed (after overwrite, merge, optimize) and orphans no commit ever
        referenced (left by crashed writers), judged by modification time. Retentions below 168
        hours are allowed: they break time travel to the versions that used the removed files, and
        a retention shorter than the longest running write can delete that write's new files.
        """
        if retain_hours < 0 or math.isnan(retain_hours):
            raise InvalidArgument("retain_hours must be zero or more")
        hours = math.ceil(retain_hours)
        with self._errors(location):
            dt = self._open(location)
            # delta-rs also reports files it already deleted (tombstones); keep the ones still there
            planned = dt.vacuum(retention_hours=hours, dry_run=True, enforce_retention_duration=False, full=True)
            existing = existing_files(location, self._storage_options, [str(p) for p in planned])
            if existing and not dry_run:
                dt.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=True)
            return existing

    # -- helpers -----------------------------------------------------------------------------

    def _open(self, location: str, version: int | None = None) -> DeltaTable:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            dt = DeltaTable(location, storage_options=self._storage_options or None)
        except TableNotFoundError as exc:
            raise NotFound(f"no table at {location!r}") from exc
        if version is not None and version != dt.version():
            if not 0 <= version <= dt.version():
                raise NotFound(f"table at {location!r} has no version {version} (latest is {dt.version()})")
            dt.load_as_version(version)
        return dt

    @staticmethod
    def _arrow_schema(dt: DeltaTable) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(dt.schema().to_arrow())

    @staticmethod
    @contextmanager
    def _errors(location: str) -> Iterator[None]:
        """Translate delta-rs and Arrow exceptions into the mlharbor error tree."""
        try:
            yield
        except MlharborError:
            raise
        except Exception as exc:
            raise _translate(exc, location) from exc


def _translate(exc: Exception, location: str) -> MlharborError:
    import pyarrow as pa
    from deltalake.exceptions import (
        CommitFailedError,
        DeltaError,
        DeltaProtocolError,
        SchemaMismatchError,
        TableNotFoundError,
    )

    # the first line says what went wrong; what follows from delta-rs can be a Rust backtrace
    message = _ANSI.sub("", str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, TableNotFoundError):
        return NotFound(f"no table at {location!r}")
    if isinstance(exc, SchemaMismatchError):
        return InvalidArgument(f"data does not match the schema of {location!r}: {message}")
    if isinstance(exc, CommitFailedError):
        return Conflict(f"commit to {location!r} conflicted with a concurrent change: {message}")
    if isinstance(exc, DeltaProtocolError):
        return InvalidArgument(f"table at {location!r} uses features this store cannot handle: {message}")
    if isinstance(exc, DeltaError):
        if "already exists" in message:
            return AlreadyExists(f"a table already exists at {location!r}")
        return InvalidArgument(f"table {location!r}: {message}")
    if isinstance(exc, pa.ArrowInvalid | pa.ArrowTypeError | pa.ArrowNotImplementedError):
        return InvalidArgument(f"data for {location!r}: {message}")
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"files of the table at {location!r} are missing (vacuumed?): {message}")
    if isinstance(exc, OSError):
        return BackendUnavailable(f"storage of {location!r} is unavailable: {message}")
    if isinstance(exc, ValueError | OverflowError):
        return InvalidArgument(f"table {location!r}: {message}")
    if message.startswith("External error: Schema error"):
        # delta-rs raises a bare Exception for schema problems found while planning a write or create
        return InvalidArgument(f"table {location!r}: {message.removeprefix('External error: ')}")
    return MlharborError(f"table {location!r}: {type(exc).__name__}: {message}")


def _is_commit_conflict(exc: Exception) -> bool:
    from deltalake.exceptions import CommitFailedError

    return isinstance(exc, CommitFailedError)


def _backoff(attempt: int) -> None:
    """Sleep before retry ``attempt`` (0-based): exponential from 50 ms, capped at 2 s, jittered."""
    time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))


def _commit_of(entry: LogEntry) -> Commit:
    info = entry.info
    return Commit(
        version=entry.version,
        timestamp=datetime.fromtimestamp(entry.timestamp_ms / 1000, tz=UTC),
        operation=str(info.get("operation", "")),
        parameters=dict(info.get("operationParameters") or {}),
        metrics=dict(info.get("operationMetrics") or {}),
        actor=info.get(META_ACTOR),
        request_id=info.get(META_REQUEST_ID),
        txn_id=info.get(META_TXN_ID),
    )
