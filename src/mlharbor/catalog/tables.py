"""``ws.tables``: the public table API. Thin: it normalises input and calls a TableBackend."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlharbor.catalog.base import TableBackend, TableDescription
from mlharbor.core.entities import LineageEdge, TableInfo
from mlharbor.errors import InvalidArgument
from mlharbor.lake.lineage_meta import SOURCES_KEY, sources_of

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.lake.base import Commit, WriteMode, WriteResult



def to_arrow(data: Any) -> pa.Table | pa.RecordBatchReader:
    """Accept a pyarrow Table/RecordBatch/RecordBatchReader, a pandas or polars DataFrame, or any
    object exporting the Arrow C stream interface."""
    import pyarrow as pa

    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    raise InvalidArgument(
        f"cannot write a {type(data).__name__}: pass a pyarrow Table or RecordBatchReader, "
        "or a pandas or polars DataFrame"
    )


def split_sources(data: pa.Table | pa.RecordBatchReader) -> tuple[pa.Table | pa.RecordBatchReader, dict[str, int]]:
    """Take the lineage sources that ``read``/``sql`` attached to a table's schema metadata, and
    return the data without them (so they are not written into the table)."""
    import pyarrow as pa

    meta = data.schema.metadata or {}
    if SOURCES_KEY not in meta:
        return data, {}
    sources = sources_of(data.schema)
    rest = {k: v for k, v in meta.items() if k != SOURCES_KEY}
    if isinstance(data, pa.Table):
        return data.replace_schema_metadata(rest or None), sources
    schema = data.schema.with_metadata(rest or None)
    return pa.RecordBatchReader.from_batches(schema, (b.replace_schema_metadata(None) for b in data)), sources


class Tables:
    """Named Delta tables ``catalog.schema.table`` with metadata, permissions, history and lineage."""

    def __init__(self, backend: TableBackend) -> None:
        self._backend = backend

    def create(
        self,
        name: str,
        schema: pa.Schema | None = None,
        *,
        data: Any = None,
        partition_by: list[str] | None = None,
        comment: str = "",
        tags: dict[str, str] | None = None,
        if_not_exists: bool = False,
        kind: str = "table",
        properties: dict[str, Any] | None = None,
    ) -> TableInfo:
        """Create an empty table from ``schema`` (or from ``data``'s schema, then write ``data``).

        Raises AlreadyExists unless ``if_not_exists``; InvalidArgument for a bad name or schema.
        """
        if schema is None:
            if data is None:
                raise InvalidArgument("create() needs a schema or data")
            arrow = to_arrow(data)
            schema = split_sources(arrow)[0].schema
        info = self._backend.create(
            name, schema, partition_by or [], comment, tags or {}, if_not_exists, kind, properties
        )
        if data is not None:
            self.write(name, data)
        return info

    def list(
        self, catalog: str | None = None, schema: str | None = None, kind: str | None = None
    ) -> builtins.list[TableInfo]:
        """Tables you may read, sorted by name, optionally in one catalog and schema, of one kind."""
        return self._backend.list(catalog, schema, kind)

    def describe(self, name: str) -> TableDescription:
        """Catalog entry (owner, comment, tags, created by/at), schema, version and sizes."""
        return self._backend.describe(name)

    def update(
        self,
        name: str,
        *,
        comment: str | None = None,
        tags: dict[str, str] | None = None,
        owner: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> TableInfo:
        """Change the comment, tags (replaced whole), owner or properties (replaced whole)."""
        return self._backend.update(name, comment, tags, owner, properties)

    def drop(self, name: str) -> None:
        """Drop the table and delete its data. NotFound if it does not exist."""
        self._backend.drop(name)

    def write(
        self,
        name: str,
        data: Any,
        mode: WriteMode = "append",
        *,
        keys: builtins.list[str] | None = None,
        txn_id: str | None = None,
        schema_evolution: bool = False,
        sources: dict[str, int] | None = None,
    ) -> WriteResult:
        """Write ``data`` as one new version of ``name`` (created from the data's schema if missing).

        * ``mode``: ``append``, ``overwrite`` or ``merge`` (upsert on ``keys``);
        * ``txn_id``: a retried write with the same id is applied once (``applied=False`` on replays);
        * ``schema_evolution``: allow new columns; otherwise a schema change is refused, unwritten;
        * ``sources``: tables (name → version) the data was derived from, recorded as lineage.
          Data returned by ``read`` or ``ws.sql`` carries its sources, which are added automatically.
        """
        arrow, auto_sources = split_sources(to_arrow(data))
        all_sources = {**auto_sources, **(sources or {})}
        return self._backend.write(name, arrow, mode, keys, txn_id, schema_evolution, all_sources)

    def read(
        self,
        name: str,
        columns: builtins.list[str] | None = None,
        filter: str | None = None,
        *,
        version: int | None = None,
        timestamp: datetime | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """Read rows as a pyarrow Table, at the latest version or as of ``version``/``timestamp``.

        ``filter`` is a SQL boolean expression over the table's columns (``"fare > 10"``).
        """
        return self._backend.read(name, columns, filter, version, timestamp, limit)

    def head(self, name: str, n: int = 10) -> pa.Table:
        """The first ``n`` rows."""
        return self.read(name, limit=n)

    def scan(
        self,
        name: str,
        columns: builtins.list[str] | None = None,
        filter: str | None = None,
        *,
        version: int | None = None,
        timestamp: datetime | None = None,
    ) -> pa.RecordBatchReader:
        """Stream rows batch by batch, for data larger than memory."""
        return self._backend.scan(name, columns, filter, version, timestamp)

    def history(self, name: str, limit: int | None = None) -> builtins.list[Commit]:
        """Versions with operation, actor, request and txn ids, newest first."""
        return self._backend.history(name, limit)

    def changes(self, name: str, from_version: int, to_version: int | None = None) -> pa.Table:
        """Rows inserted, updated (pre/post images) and deleted after ``from_version``."""
        return self._backend.changes(name, from_version, to_version)

    def optimize(self, name: str) -> dict[str, Any]:
        """Compact small files; data and history stay as they were."""
        return self._backend.optimize(name)

    def vacuum(self, name: str, retain_hours: float = 168.0, dry_run: bool = False) -> builtins.list[str]:
        """Delete unreferenced files older than ``retain_hours`` (time travel before them ends)."""
        return self._backend.vacuum(name, retain_hours, dry_run)

    def lineage(self, name: str) -> builtins.list[LineageEdge]:
        """Lineage edges into and out of any version of ``name`` (sources it was written from, tables
        written from it), between tables you may read."""
        return self._backend.lineage(name)

    def sql(self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None) -> pa.Table:
        """DuckDB SQL over tables named ``catalog.schema.table``; see ``Workspace.sql``."""
        return self._backend.sql(query, params)
