"""TableService: named lake tables with permissions, audit and lineage, acting as one principal.

Order of effects, chosen so that a failure leaves nothing half-done that a user can see:

* create: every table gets a location of its own (``catalog/schema/name-<random>``), so creating
  never touches existing data — not a live table registered in another metadata store, not the
  files of a table being dropped. The catalog row and its audit entry are written in one metadata
  transaction that stays open while the Delta table is created; if creation fails the row is
  rolled back, and a crash between the two leaves only unreferenced files.
* write: the Delta commit is the atomic step (it carries actor, request id and txn id); the audit
  entry and lineage edges follow in one metadata transaction.
* drop: the catalog row goes first, then the files, so a crash can leave only unreachable files.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.catalog.base import TableBackend, TableDescription
from mlharbor.core.clock import utcnow
from mlharbor.core.entities import Environment, LineageEdge, TableInfo
from mlharbor.core.ids import new_id
from mlharbor.core.names import ObjectName, parse_name
from mlharbor.core.paths import confined_path, join_uri
from mlharbor.core.recording import note_read, note_write
from mlharbor.errors import AlreadyExists, InvalidArgument, NotFound
from mlharbor.lineage.service import LineageService, table_node

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.auth.service import AuthService
    from mlharbor.config import Settings
    from mlharbor.core.actors import Actor
    from mlharbor.lake.base import Commit, TableStore, WriteMode, WriteResult
    from mlharbor.meta import MetadataStore


@dataclass(frozen=True)
class CatalogContext:
    """Shared wiring for table services: settings, stores, and the auth and lineage services."""

    settings: Settings
    store: MetadataStore
    auth: AuthService
    lineage: LineageService
    table_store: Callable[[str], TableStore]  # catalog name -> the table store of its target


def catalog_environment(settings: Settings, name: ObjectName) -> Environment:
    """The environment of ``name``'s catalog; InvalidArgument for an unknown catalog or one kept in
    another metadata store than the current target's."""
    target = settings.target_for_catalog(name.catalog)
    if target is None:
        known = ", ".join(sorted(t.catalog for t in settings.targets.values()))
        raise InvalidArgument(f"unknown catalog {name.catalog!r} in {name}; catalogs: {known}")
    if target.metadata_url != settings.current.metadata_url:
        other = next(k for k, t in settings.targets.items() if t is target)
        raise InvalidArgument(
            f"catalog {name.catalog!r} is kept in another metadata store than target {settings.target!r}'s; "
            f"open the workspace with target={other!r} (or connect to its server) to use {name}"
        )
    return target.environment


class TableService(TableBackend):
    """The local table backend. Every call is checked, and every change audited, as ``actor``."""

    def __init__(self, ctx: CatalogContext, actor: Actor) -> None:
        self._ctx = ctx
        self._actor = actor

    # --- naming and checks --------------------------------------------------------------------

    def _environment(self, name: ObjectName) -> Environment:
        return catalog_environment(self._ctx.settings, name)

    def _location(self, name: ObjectName) -> str:
        target = self._ctx.settings.target_for_catalog(name.catalog)
        assert target is not None
        rel = f"{name.catalog}/{name.schema}/{name.name}-{new_id()[:12]}"
        if "://" in target.lake_uri:
            return join_uri(target.lake_uri, rel, "table location")
        return str(confined_path(target.lake_uri, rel, "table location"))

    def _check(self, name: ObjectName, permission: Permission, action: str) -> None:
        env = self._environment(name)
        self._ctx.auth.authorize(self._actor, permission, env, action, f"table:{name}")

    def _info(self, name: ObjectName) -> TableInfo:
        with self._ctx.store.transaction() as tx:
            info = tx.tables.find(str(name))
        if info is None:
            raise NotFound(f"table {name} does not exist")
        return info

    def _readable(self, full_name: str, action: str) -> tuple[ObjectName, TableInfo]:
        name = parse_name(full_name)
        self._check(name, Permission.READ, action)
        return name, self._info(name)

    # --- catalog ------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        schema: pa.Schema,
        partition_by: list[str],
        comment: str,
        tags: dict[str, str],
        if_not_exists: bool = False,
        kind: str = "table",
        properties: dict[str, Any] | None = None,
    ) -> TableInfo:
        obj = parse_name(name)
        self._check(obj, Permission.WRITE, "table.create")
        if if_not_exists:
            with self._ctx.store.transaction() as tx:
                existing = tx.tables.find(str(obj))
            if existing is not None:
                return existing
        missing = [c for c in partition_by if c not in schema.names]
        if missing:
            raise InvalidArgument(f"partition columns {missing} are not in the schema {schema.names}")
        folded = [n.lower() for n in schema.names]
        if len(set(folded)) != len(folded):  # Delta column names are case-insensitive
            raise InvalidArgument(f"column names must differ in more than case: {schema.names}")
        _check_tags(tags)
        location = self._location(obj)
        lake = self._ctx.table_store(obj.catalog)
        now = utcnow()
        info = TableInfo(
            name=str(obj), location=location, owner=self._actor.principal, comment=comment,
            tags=dict(tags), partition_by=tuple(partition_by), created_by=self._actor.principal,
            created_at=now, updated_at=now, kind=_check_kind(kind), properties=_check_properties(properties),
        )
        with self._ctx.store.transaction() as tx:
            created = tx.tables.add(info)
            version = lake.create(location, schema, list(partition_by), comment, self._actor.principal)
            record(tx, self._actor, "table.create", f"table:{obj}", {"version": version})
        return created

    def list(
        self, catalog: str | None = None, schema: str | None = None, kind: str | None = None
    ) -> builtins.list[TableInfo]:
        with self._ctx.store.transaction() as tx:
            infos = tx.tables.list(catalog=catalog, schema=schema, kind=kind)
        readable: dict[Environment, bool] = {}
        out = []
        for info in infos:
            try:
                env = self._environment(parse_name(info.name))
            except InvalidArgument:  # a catalog this workspace's configuration does not serve
                continue
            if env not in readable:
                readable[env] = Permission.READ in self._ctx.auth.permissions(self._actor, env)
            if readable[env]:
                out.append(info)
        return out

    def describe(self, name: str) -> TableDescription:
        obj, info = self._readable(name, "table.describe")
        lake = self._ctx.table_store(obj.catalog)
        stats = lake.stats(info.location)
        return TableDescription(
            info=info, schema=lake.schema(info.location), version=int(stats["version"]),
            num_files=int(stats["num_files"]), size_bytes=int(stats["size_bytes"]),
            num_rows=stats.get("num_rows"), environment=self._environment(obj).value,
        )

    def update(
        self,
        name: str,
        comment: str | None = None,
        tags: dict[str, str] | None = None,
        owner: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> TableInfo:
        obj = parse_name(name)
        self._check(obj, Permission.WRITE, "table.update")
        if tags is not None:
            _check_tags(tags)
        with self._ctx.store.transaction() as tx:
            if owner is not None:
                tx.principals.get(owner)
            props = None if properties is None else _check_properties(properties)
            updated = tx.tables.update(str(obj), owner=owner, comment=comment, tags=tags, properties=props)
            changed = {
                k: v
                for k, v in {"comment": comment, "tags": tags, "owner": owner, "properties": props}.items()
                if v is not None
            }
            record(tx, self._actor, "table.update", f"table:{obj}", changed)
        return updated

    def drop(self, name: str) -> None:
        obj = parse_name(name)
        self._check(obj, Permission.WRITE, "table.drop")
        with self._ctx.store.transaction() as tx:
            info = tx.tables.get(str(obj))
            tx.tables.delete(str(obj))
            record(tx, self._actor, "table.drop", f"table:{obj}", {"location": info.location})
        self._ctx.table_store(obj.catalog).delete(info.location)

    # --- data ---------------------------------------------------------------------------------

    def write(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        mode: WriteMode = "append",
        keys: builtins.list[str] | None = None,
        txn_id: str | None = None,
        schema_evolution: bool = False,
        sources: dict[str, int] | None = None,
    ) -> WriteResult:
        obj = parse_name(name)
        if mode not in ("append", "overwrite", "merge"):
            raise InvalidArgument(f"mode must be 'append', 'overwrite' or 'merge', not {mode!r}")
        self._check(obj, Permission.WRITE, f"table.{mode}")
        source_nodes = []
        for src, version in (sources or {}).items():
            src_obj, src_info = self._readable(src, "table.read")
            latest = self._ctx.table_store(src_obj.catalog).version(src_info.location)
            if not isinstance(version, int) or not 0 <= version <= latest:
                raise InvalidArgument(f"source {src_obj} has no version {version!r} (latest is {latest})")
            source_nodes.append(table_node(str(src_obj), version))
        with self._ctx.store.transaction() as tx:
            info = tx.tables.find(str(obj))
        if info is None:
            try:
                info = self.create(str(obj), data.schema, [], "", {}, if_not_exists=True)
            except AlreadyExists:  # another writer created it between our lookup and our insert
                info = self._info(obj)
        lake = self._ctx.table_store(obj.catalog)
        result = lake.write(
            info.location, data, mode=mode, keys=keys, txn_id=txn_id, schema_evolution=schema_evolution,
            actor=self._actor.principal, request_id=self._actor.request_id,
        )
        if result.applied:
            with self._ctx.store.transaction() as tx:
                tx.tables.update(str(obj))
                details: dict[str, Any] = {"version": result.version, "rows": result.num_rows}
                if txn_id:
                    details["txn_id"] = txn_id
                if source_nodes:
                    details["sources"] = {n.name: n.version for n in source_nodes}
                record(tx, self._actor, f"table.{mode}", f"table:{obj}", details)
                LineageService.record(tx, self._actor, source_nodes, table_node(str(obj), result.version))
            note_write(str(obj), result.version)
        return result

    def _snapshot(
        self, obj: ObjectName, info: TableInfo, version: int | None, timestamp: datetime | None
    ) -> tuple[Any, int]:
        """The table's dataset at a version or time (default latest), and that version."""
        if version is not None and timestamp is not None:
            raise InvalidArgument("pass either version or timestamp, not both")
        if version is not None and version < 0:
            raise InvalidArgument("version must be >= 0")
        dataset, v = self._ctx.table_store(obj.catalog).snapshot(info.location, version, timestamp)
        note_read(str(obj), v)
        return dataset, v

    def read(
        self,
        name: str,
        columns: builtins.list[str] | None = None,
        filter: str | None = None,
        version: int | None = None,
        timestamp: datetime | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        from mlharbor.lake.lineage_meta import with_sources
        from mlharbor.lake.sql import filter_reader, filter_table

        obj, info = self._readable(name, "table.read")
        dataset, v = self._snapshot(obj, info, version, timestamp)
        if limit is not None and limit < 0:
            raise InvalidArgument("limit must be >= 0")
        with _missing_files_are_not_found():
            if limit is None:
                table = filter_table(dataset, filter, columns)
            else:
                table = _first_rows(filter_reader(dataset, filter, columns), limit)
        return with_sources(table, {str(obj): v})

    def scan(
        self,
        name: str,
        columns: builtins.list[str] | None = None,
        filter: str | None = None,
        version: int | None = None,
        timestamp: datetime | None = None,
    ) -> pa.RecordBatchReader:
        import pyarrow as pa

        from mlharbor.lake.lineage_meta import SOURCES_KEY
        from mlharbor.lake.sql import filter_reader

        obj, info = self._readable(name, "table.read")
        dataset, v = self._snapshot(obj, info, version, timestamp)
        with _missing_files_are_not_found():
            reader = filter_reader(dataset, filter, columns)
        # the stream names its source too, so data read through the server keeps its lineage
        schema = reader.schema.with_metadata({**(reader.schema.metadata or {}),
                                              SOURCES_KEY: json.dumps({str(obj): v}).encode()})
        return pa.RecordBatchReader.from_batches(schema, _not_found_on_missing_files(reader))

    def history(self, name: str, limit: int | None = None) -> builtins.list[Commit]:
        obj, info = self._readable(name, "table.history")
        return self._ctx.table_store(obj.catalog).history(info.location, limit)

    def changes(self, name: str, from_version: int, to_version: int | None = None) -> pa.Table:
        obj, info = self._readable(name, "table.changes")
        if from_version < 0 or (to_version is not None and to_version < from_version):
            raise InvalidArgument("need 0 <= from_version <= to_version")
        return self._ctx.table_store(obj.catalog).changes(info.location, from_version, to_version)

    def optimize(self, name: str) -> dict[str, Any]:
        obj = parse_name(name)
        self._check(obj, Permission.WRITE, "table.optimize")
        info = self._info(obj)
        metrics = self._ctx.table_store(obj.catalog).optimize(info.location)
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "table.optimize", f"table:{obj}", _jsonable(metrics))
        return metrics

    def vacuum(self, name: str, retain_hours: float = 168.0, dry_run: bool = False) -> builtins.list[str]:
        obj = parse_name(name)
        self._check(obj, Permission.WRITE, "table.vacuum")
        if retain_hours < 0:
            raise InvalidArgument("retain_hours must be >= 0")
        if retain_hours < SAFE_RETENTION_HOURS and not dry_run:
            # shorter retention ends time travel for everyone and can race in-flight writes
            self._check(obj, Permission.MANAGE, "table.vacuum")
        info = self._info(obj)
        removed = self._ctx.table_store(obj.catalog).vacuum(info.location, retain_hours, dry_run)
        if not dry_run:
            with self._ctx.store.transaction() as tx:
                record(tx, self._actor, "table.vacuum", f"table:{obj}",
                       {"retain_hours": retain_hours, "files_removed": len(removed)})
        return removed

    def check_writable(self, name: str, mode: str = "append") -> None:
        """Raise PermissionDenied now (audited) when a write to ``name`` would be refused."""
        self._check(parse_name(name), Permission.WRITE, f"table.{mode}")

    def lineage(self, name: str) -> builtins.list[LineageEdge]:
        obj, _ = self._readable(name, "table.lineage")
        readable: dict[str, bool] = {}

        def visible(node_name: str) -> bool:
            if node_name not in readable:
                try:
                    env = self._environment(parse_name(node_name))
                    readable[node_name] = Permission.READ in self._ctx.auth.permissions(self._actor, env)
                except InvalidArgument:
                    readable[node_name] = False
            return readable[node_name]

        return [e for e in self._ctx.lineage.edges(str(obj)) if visible(e.source.name) and visible(e.target.name)]

    def sql(self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None) -> pa.Table:
        from mlharbor.lake.sql import SqlEngine

        # SQL is for principals who may read somewhere, even when the query names no table
        self._ctx.auth.authorize_any(self._actor, Permission.READ, "table.sql", "sql")

        def resolve(full_name: str) -> tuple[Any, int]:
            obj, info = self._readable(full_name, "table.sql")
            dataset, version = self._ctx.table_store(obj.catalog).snapshot(info.location)
            note_read(str(obj), version)
            return dataset, version

        with _missing_files_are_not_found():
            return SqlEngine(resolve, timeout_s=SQL_TIMEOUT_S).query(query, params).table


SQL_TIMEOUT_S = 600.0
SAFE_RETENTION_HOURS = 168.0


@contextmanager
def _missing_files_are_not_found() -> Iterator[None]:
    """Files a vacuum removed surface as NotFound (the version is gone), not as an internal error."""
    try:
        yield
    except FileNotFoundError as exc:
        raise NotFound(f"data files of this version were removed by vacuum: {exc.filename or exc}") from None


def _not_found_on_missing_files(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    with _missing_files_are_not_found():
        yield from reader


def _first_rows(reader: pa.RecordBatchReader, limit: int) -> pa.Table:
    """The first ``limit`` rows of a stream, reading no further than needed."""
    import pyarrow as pa

    batches, left = [], limit
    for batch in reader:
        if left <= 0:
            break
        batches.append(batch.slice(0, left))
        left -= min(left, batch.num_rows)
    reader.close()
    return pa.Table.from_batches(batches, schema=reader.schema)


TABLE_KINDS = ("table", "feature_table")


def _check_kind(kind: str) -> str:
    if kind not in TABLE_KINDS:
        raise InvalidArgument(f"table kind must be one of {', '.join(TABLE_KINDS)}, not {kind!r}")
    return kind


def _check_properties(properties: dict[str, Any] | None) -> dict[str, Any]:
    """Properties are small JSON objects with string keys."""
    import json

    props = dict(properties or {})
    if not all(isinstance(k, str) for k in props):
        raise InvalidArgument("table properties must have string keys")
    try:
        size = len(json.dumps(props))
    except (TypeError, ValueError):
        raise InvalidArgument("table properties must be JSON values (strings, numbers, lists, objects)") from None
    if size > 64_000:
        raise InvalidArgument("table properties are limited to 64 kB of JSON")
    return props


def _check_tags(tags: dict[str, str]) -> None:
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise InvalidArgument("tags must map strings to strings, for example {'team': 'pricing'}")


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, str | int | float | bool | None)}
