"""Publishing feature tables to online stores, and reading them back for serving.

``publish(name, mode="snapshot")`` writes the latest row of every key of the table's current
version; ``mode="incremental"`` writes only the keys that changed since the last published version
(read from the table's change feed, or a version diff) and removes keys deleted since. Each target
has one online store (``online_store`` in ``mlharbor.toml``; SQLite under ``.mlharbor`` by default,
Redis for a team), shared by the tables of its catalog; a table's online name is its full name.

Crash safety: rows are written in key order, batch by batch, and after each batch a checkpoint
``{version, mode, from, rows}`` is stored next to the table in the online store. Publishing the
same version again resumes after the checkpointed rows (writes are upserts, so a batch written
twice changes nothing). The published version and time are stored last: as markers in the online
store and in the table's catalog properties (``online``), which ``describe`` shows as freshness.
Publishing needs WRITE and reading needs READ in the table's environment; both are audited.
"""

from __future__ import annotations

import builtins
import json
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.catalog.service import CatalogContext, catalog_environment
from mlharbor.catalog.tables import Tables, split_sources
from mlharbor.core.actors import Actor
from mlharbor.core.clock import as_utc, utcnow
from mlharbor.core.names import parse_name
from mlharbor.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.features.online import OnlineRead, OnlineStore, OnlineTableSpec

PUBLISHED_VERSION = "published_version"
PUBLISHED_AT = "published_at"
CHECKPOINT = "publish_checkpoint"
SOURCE = "source_table"  # the lake location published: a table dropped and created again is another table
MODES = ("snapshot", "incremental")


@dataclass(frozen=True)
class PublishResult:
    """What one publish did."""

    table: str
    mode: str  # the mode actually used: an incremental publish with nothing published yet is a snapshot
    version: int
    from_version: int | None
    rows_written: int
    keys_deleted: int
    resumed_rows: int
    seconds: float
    published_at: datetime


@dataclass(frozen=True)
class OnlineStatus:
    """A table's online freshness: the version and time last published, and its TTL."""

    table: str
    store: str
    published_version: int | None
    published_at: datetime | None
    table_version: int
    ttl_seconds: int | None

    @property
    def behind(self) -> int | None:
        """How many table versions the online copy lags (None: never published)."""
        return None if self.published_version is None else self.table_version - self.published_version


class OnlineBackend(ABC):
    """Online publishing and reads: local (in-process stores) or through a server."""

    @abstractmethod
    def publish(self, name: str, mode: str, ttl_seconds: int | None, batch_size: int,
                progress: bool | None) -> PublishResult:
        """Publish a feature table (see the module docstring)."""

    @abstractmethod
    def status(self, name: str) -> OnlineStatus:
        """The table's online freshness."""

    @abstractmethod
    def read(self, requests: builtins.list[OnlineRead]) -> builtins.list[pa.Table]:
        """One result per request; one round trip per online store involved."""

    @abstractmethod
    def unpublish(self, name: str) -> None:
        """Remove the table's rows and markers from its online store."""


def redact(uri: str) -> str:
    """A store URI without its password, for display."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return uri


def online_spec(name: str, schema: pa.Schema, primary_keys: builtins.list[str],
                ttl_seconds: int | None) -> OnlineTableSpec:
    """The online table of a feature table: keys, then timestamp and features, in table order."""
    from mlharbor.features.online import OnlineTableSpec

    return OnlineTableSpec(name=name, key_columns=list(primary_keys), schema=schema, ttl_seconds=ttl_seconds)


@contextmanager
def _progress(enabled: bool, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (rows written), or a no-op."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class LocalOnline(OnlineBackend):
    """Publishing and reads against the online stores configured for each target, as ``actor``."""

    def __init__(self, ctx: CatalogContext, tables: Tables, actor: Actor,
                 online_store: Callable[[str], OnlineStore]) -> None:
        self._ctx = ctx
        self._tables = tables
        self._actor = actor
        self._store_for = online_store  # catalog -> its target's online store

    def _authorize(self, name: str, permission: Permission, action: str) -> str:
        obj = parse_name(name)
        env = catalog_environment(self._ctx.settings, obj)
        self._ctx.auth.authorize(self._actor, permission, env, action, f"table:{obj}")
        return str(obj)

    def _store_uri(self, full: str) -> str:
        target = self._ctx.settings.target_for_catalog(parse_name(full).catalog)
        assert target is not None
        return redact(target.online_store)

    # --- publish ----------------------------------------------------------------------------

    def publish(self, name: str, mode: str = "incremental", ttl_seconds: int | None = None,
                batch_size: int = 10_000, progress: bool | None = None) -> PublishResult:
        from mlharbor.features.store import FEATURE_TABLE

        if mode not in MODES:
            raise InvalidArgument(f"mode must be 'snapshot' or 'incremental', not {mode!r}")
        if ttl_seconds is not None and (not isinstance(ttl_seconds, int) or ttl_seconds <= 0):
            raise InvalidArgument("ttl_seconds must be a positive number of seconds (or None: never expire)")
        if not isinstance(batch_size, int) or not 1 <= batch_size <= 1_000_000:
            raise InvalidArgument("batch_size must be between 1 and 1,000,000 rows")
        full = self._authorize(name, Permission.WRITE, "features.publish")
        started = time.perf_counter()
        d = self._tables.describe(full)
        if d.info.kind != FEATURE_TABLE:
            raise InvalidArgument(f"{full} is a plain table; only feature tables are published")
        pks = list(d.info.properties.get("primary_keys", []))
        tks = list(d.info.properties.get("timestamp_keys", []))
        store = self._store_for(parse_name(full).catalog)
        previous = store.table_spec(full)
        if previous is not None and store.get_marker(full, SOURCE) not in (None, d.info.location):
            store.drop_table(full)  # rows of an earlier table of the same name: never serve them
            previous = None
        ttl = ttl_seconds if ttl_seconds is not None else (previous.ttl_seconds if previous else None)
        spec = online_spec(full, d.schema, pks, ttl)
        layout_changed = previous is None or previous.key_columns != spec.key_columns or (
            not previous.schema.equals(spec.schema))
        store.ensure_table(spec)  # a new layout drops the old rows: they must be published again
        store.set_marker(full, SOURCE, d.info.location)
        published = None if layout_changed else _int_or_none(store.get_marker(full, PUBLISHED_VERSION))
        version = d.version
        used = "incremental" if mode == "incremental" and published is not None else "snapshot"
        if used == "incremental" and published is not None and published > version:
            used = "snapshot"  # the table was recreated under the same name: start over
        changed = self._changes(full, published, version) if published is not None else None
        if used == "incremental" and changed is None:
            used = "snapshot"  # the history since the last publish is gone (vacuumed): publish everything
        checkpoint = _checkpoint(store.get_marker(full, CHECKPOINT))
        from_version = published if used == "incremental" else None
        skip = 0
        if used == "snapshot" and checkpoint and checkpoint.get("version") == version and (
                checkpoint.get("mode") == "snapshot"):
            skip = int(checkpoint.get("rows", 0))  # resume: the ordered rows before it are written
        show = sys.stderr.isatty() if progress is None else progress
        written, deleted = self._write(store, full, version, pks, tks, used, changed, batch_size, skip, show)
        now = utcnow()
        store.set_marker(full, PUBLISHED_VERSION, str(version))
        store.set_marker(full, PUBLISHED_AT, now.isoformat())
        store.set_marker(full, CHECKPOINT, "")
        self._record(full, version, now, ttl, used, written, deleted)
        return PublishResult(table=full, mode=used, version=version, from_version=from_version,
                             rows_written=written, keys_deleted=deleted, resumed_rows=skip,
                             seconds=time.perf_counter() - started, published_at=now)

    def _changes(self, full: str, published: int, version: int) -> pa.Table | None:
        """Rows changed after version ``published`` up to ``version`` (None: that history is gone)."""
        import pyarrow as pa

        if published > version:
            return None
        try:
            changes, _ = split_sources(self._tables.changes(full, published, version))
        except (NotFound, InvalidArgument):
            return None
        assert isinstance(changes, pa.Table)
        return changes

    def _write(self, store: OnlineStore, full: str, version: int, pks: builtins.list[str],
               tks: builtins.list[str], mode: str, changed: pa.Table | None, batch_size: int, skip: int,
               show: bool) -> tuple[int, int]:
        """Write the latest rows (all, or of the changed keys), then delete keys that vanished."""
        import pyarrow as pa

        from mlharbor.lake.latest import latest_per_key

        timestamp = tks[0] if tks else None
        if mode == "incremental":
            assert changed is not None
            return self._write_changes(store, full, version, pks, timestamp, changed, batch_size, show)
        data, _ = split_sources(self._tables.scan(full, version=version))
        reader = latest_per_key(data, pks, timestamp, batch_size=batch_size, skip=skip)
        total = self._tables.describe(full).num_rows if timestamp is None else None
        rows = skip
        with _progress(show, f"publishing {full}", total) as advance:
            advance(skip)
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                store.write(full, pa.Table.from_batches([batch]), batch_size=batch_size)
                rows += batch.num_rows
                store.set_marker(full, CHECKPOINT, json.dumps({"version": version, "mode": mode, "rows": rows}))
                advance(batch.num_rows)
        deleted = 0
        if changed is not None and changed.num_rows:  # a snapshot over an earlier publish: keys deleted since
            keys = changed.select(pks)
            data, _ = split_sources(self._tables.scan(full, columns=[*pks, *tks], version=version))
            present = [latest_per_key(data, pks, timestamp, only=keys).read_all().select(pks)]
            gone = _missing_keys(keys, present, pks)
            if gone.num_rows:
                deleted = store.delete(full, gone)
        return rows - skip, deleted

    def _write_changes(self, store: OnlineStore, full: str, version: int, pks: builtins.list[str],
                       timestamp: str | None, changes: pa.Table, batch_size: int, show: bool) -> tuple[int, int]:
        """Publish from the change feed alone, reading the table only for keys that lost rows.

        The newest inserted or post-update row of each key is its latest row — for a time-series
        table, when its timestamp is not older than the row online. A key with a deleted row may
        fall back to an older row, so those keys are looked up in the table (a scan, only then).
        The cost follows the size of the change, not of the table.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        from mlharbor.features.online import OnlineRead
        from mlharbor.lake.base import CHANGE_TYPE, COMMIT_TIMESTAMP, COMMIT_VERSION
        from mlharbor.lake.latest import latest_per_key

        if changes.num_rows == 0:
            return 0, 0
        columns = [c for c in changes.column_names if c not in (CHANGE_TYPE, COMMIT_VERSION, COMMIT_TIMESTAMP)]
        kind = changes.column(CHANGE_TYPE)
        posts = changes.filter(pc.is_in(kind, pa.array(["insert", "update_postimage"])))
        lost = changes.filter(pc.equal(kind, "delete")).select(pks)
        order = timestamp or COMMIT_VERSION
        rows = latest_per_key(posts.select([*columns, COMMIT_VERSION]) if order == COMMIT_VERSION else
                              posts.select(columns), pks, order).read_all().select(columns)
        if timestamp is not None and rows.num_rows:
            online = store.read([OnlineRead(full, rows.select(pks), [timestamp])])[0].column(timestamp)
            newer = pc.fill_null(pc.greater_equal(rows.column(timestamp), online), False)
            rows = rows.filter(pc.or_(pc.is_null(online), newer))
        deleted = 0
        if lost.num_rows:
            data, _ = split_sources(self._tables.scan(full, version=version))
            resolved = latest_per_key(data, pks, timestamp, only=lost).read_all().select(columns)
            rows = pa.concat_tables([rows.join(lost.group_by(pks).aggregate([]), keys=pks, join_type="left anti")
                                    .select(columns), resolved.cast(rows.schema)])
            gone = _missing_keys(lost, [resolved.select(pks)], pks)
            if gone.num_rows:
                deleted = store.delete(full, gone)
        rows = rows.sort_by([(k, "ascending") for k in pks])  # key order: neighbouring pages in B-tree stores
        with _progress(show, f"publishing {full}", rows.num_rows) as advance:
            for start in range(0, rows.num_rows, batch_size):
                part = rows.slice(start, batch_size)
                store.write(full, part, batch_size=batch_size)
                advance(part.num_rows)
        return rows.num_rows, deleted

    def _record(self, full: str, version: int, now: datetime, ttl: int | None,
                mode: str, written: int, deleted: int) -> None:
        """Store freshness in the catalog properties and audit the publish, in one transaction."""
        online = {"store": self._store_uri(full), "version": version, "published_at": now.isoformat(),
                  "ttl_seconds": ttl}
        with self._ctx.store.transaction() as tx:
            current = tx.tables.get(full).properties
            tx.tables.update(full, properties={**current, "online": online})
            record(tx, self._actor, "features.publish", f"table:{full}",
                   {"mode": mode, "version": version, "rows_written": written, "keys_deleted": deleted})

    # --- status, reads ----------------------------------------------------------------------

    def status(self, name: str) -> OnlineStatus:
        full = self._authorize(name, Permission.READ, "features.online_status")
        d = self._tables.describe(full)
        online = d.info.properties.get("online") or {}
        store = self._store_for(parse_name(full).catalog)
        spec = store.table_spec(full)
        published = _int_or_none(store.get_marker(full, PUBLISHED_VERSION)) if spec else None
        at = store.get_marker(full, PUBLISHED_AT) if spec else None
        return OnlineStatus(
            table=full, store=str(online.get("store") or self._store_uri(full)), published_version=published,
            published_at=as_utc(datetime.fromisoformat(at)) if at else None, table_version=d.version,
            ttl_seconds=spec.ttl_seconds if spec else None,
        )

    def read(self, requests: builtins.list[OnlineRead]) -> builtins.list[pa.Table]:
        from mlharbor.features.online import OnlineRead

        by_store: dict[int, tuple[OnlineStore, builtins.list[int]]] = {}
        normalised: builtins.list[OnlineRead] = []
        for i, req in enumerate(requests):
            full = self._authorize(req.table, Permission.READ, "features.lookup")
            normalised.append(OnlineRead(full, req.keys, req.features))
            store = self._store_for(parse_name(full).catalog)
            by_store.setdefault(id(store), (store, []))[1].append(i)
        results: builtins.list[pa.Table | None] = [None] * len(requests)
        for store, indexes in by_store.values():
            try:
                answered = store.read([normalised[i] for i in indexes])
            except NotFound:
                missing = [normalised[i].table for i in indexes if store.table_spec(normalised[i].table) is None]
                raise NotFound(f"not published online: {', '.join(missing)} (run ws.features.publish first)") from None
            for i, table in zip(indexes, answered, strict=True):
                results[i] = table
        return [r for r in results if r is not None]

    def unpublish(self, name: str) -> None:
        full = self._authorize(name, Permission.WRITE, "features.unpublish")
        self._store_for(parse_name(full).catalog).drop_table(full)
        with self._ctx.store.transaction() as tx:
            info = tx.tables.find(full)
            if info is not None and "online" in info.properties:
                props = {k: v for k, v in info.properties.items() if k != "online"}
                tx.tables.update(full, properties=props)
            record(tx, self._actor, "features.unpublish", f"table:{full}")


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _checkpoint(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _missing_keys(changed: pa.Table, present: builtins.list[pa.Table], pks: builtins.list[str]) -> pa.Table:
    """Changed keys (without null parts) that have no row any more: deleted since the last publish."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = changed.group_by(pks).aggregate([])
    mask = None
    for k in pks:
        valid = pc.is_valid(keys.column(k))
        mask = valid if mask is None else pc.and_(mask, valid)
    keys = keys.filter(mask) if mask is not None else keys
    if not present:
        return keys
    written = pa.concat_tables(present).group_by(pks).aggregate([])
    return keys.join(written, keys=pks, join_type="left anti")
