"""SQL over lake tables: DuckDB reading Arrow datasets, addressed by three-part names.

``SqlEngine(resolve).query("SELECT … FROM dev.raw.trips t JOIN prod.ref.zones z …")`` parses the
statement with DuckDB's own parser, calls ``resolve(full_name)`` once per referenced table (the
caller checks permissions and raises NotFound there), makes each table visible under its name
(``ATTACH ':memory:' AS dev; CREATE SCHEMA dev.raw; CREATE VIEW dev.raw.trips AS …``) and runs the
query on a locked-down connection (see ``mlharbor.lake.duck``). Rules:

* exactly one ``SELECT`` statement (``WITH``, subqueries, set operations, ``FROM``-first are fine);
* every table is named ``catalog.schema.table``; one-part names may only refer to CTEs;
* no file, URL or extension access; DuckDB's errors become ``InvalidArgument`` with its message,
  refused external access becomes ``PermissionDenied``.

The result carries the versions it read, in ``SqlResult.sources`` and in the result table's schema
metadata (``mlharbor.lake.lineage_meta``), so writing it back records lineage automatically.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlharbor.core.names import ObjectName, parse_name
from mlharbor.errors import InvalidArgument
from mlharbor.lake.duck import (
    RESERVED_CATALOGS,
    ConnectionPool,
    Lease,
    quote_ident,
    shared_pool,
    translate_duckdb_error,
)
from mlharbor.lake.lineage_meta import sources_of, strip_sources, with_sources
from mlharbor.lake.native_scan import DEFAULT_NATIVE_MIN_BYTES, local_parquet_files, native_view_sql, total_size

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

__all__ = [
    "Resolver",
    "SqlEngine",
    "SqlResult",
    "filter_reader",
    "filter_table",
    "referenced_tables",
    "sources_of",
    "strip_sources",
]

#: maps "catalog.schema.table" to (dataset, version); raises NotFound / PermissionDenied itself
Resolver = Callable[[str], "tuple[pads.Dataset, int]"]
Params = Sequence[Any] | Mapping[str, Any] | None


@dataclass(frozen=True)
class SqlResult:
    """A query's rows and the table versions it read (``{"dev.raw.trips": 7}``)."""

    table: pa.Table
    sources: dict[str, int]


class SqlEngine:
    """Runs read-only SQL over lake tables; safe to share between threads.

    ``threads`` and ``memory_limit`` (DuckDB syntax, default ``"50%"`` of RAM) bound each query;
    ``timeout_s`` interrupts a query that runs longer (InvalidArgument). Connections are pooled.
    Local Parquet datasets of at least ``native_min_bytes`` are read by DuckDB's own Parquet
    reader on a dedicated connection allowed to read just those files (``mlharbor.lake.native_scan``);
    ``None`` keeps every table on the Arrow path.
    """

    def __init__(
        self,
        resolve: Resolver,
        threads: int | None = None,
        memory_limit: str | None = "50%",
        timeout_s: float | None = None,
        temp_directory: str | None = None,
        native_min_bytes: int | None = DEFAULT_NATIVE_MIN_BYTES,
    ) -> None:
        self._resolve = resolve
        self._timeout_s = timeout_s
        self._native_min_bytes = native_min_bytes
        # shared by every engine with the same settings: callers may create an engine per query
        self._pool = shared_pool(threads, memory_limit, temp_directory)

    def query(self, sql: str, params: Params = None) -> SqlResult:
        """Run one SELECT with optional ``params`` (a list for ``?``/``$1``, a dict for ``$name``).

        Calls ``resolve`` once per distinct table, in order of first appearance. The returned table
        has the sources in its schema metadata under ``b"mlharbor.sources"``.
        """
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidArgument("sql must be a non-empty string")
        bound = _check_params(params)
        with self._pool.acquire() as lease:
            resolved = [(name, *self._resolve(str(name))) for name in referenced_tables(sql, lease.con)]
            native = self._native_files(resolved)
            if not native:
                for i, (name, dataset, _) in enumerate(resolved):
                    _expose(lease, name, dataset, f"__mlh_src_{i}")
                table = self._run(lease.con, sql, bound)
        if native:
            allowed = sorted({f for files in native.values() for f in files})
            with self._pool.acquire_native(allowed) as lease:
                for i, (name, dataset, _) in enumerate(resolved):
                    _expose(lease, name, dataset, f"__mlh_src_{i}", native.get(name))
                table = self._run(lease.con, sql, bound)
        sources = {str(name): int(version) for name, _, version in resolved}
        return SqlResult(with_sources(table, sources), sources)

    def _native_files(self, resolved: list[tuple[ObjectName, pads.Dataset, int]]) -> dict[ObjectName, list[str]]:
        """Tables large enough, local and unfiltered, for DuckDB to read their Parquet files itself."""
        if self._native_min_bytes is None:
            return {}
        found = {}
        for name, dataset, _ in resolved:
            files = local_parquet_files(dataset)
            if files is not None and total_size(files) >= self._native_min_bytes:
                found[name] = files
        return found

    def referenced_tables(self, sql: str) -> list[str]:
        """The full names a query reads, in order of first appearance (InvalidArgument as in query)."""
        with self._pool.acquire() as lease:
            return [str(n) for n in referenced_tables(sql, lease.con)]

    def close(self) -> None:
        """Close the idle pooled connections (shared with engines of the same settings; they reopen)."""
        self._pool.close()

    def _run(self, con: duckdb.DuckDBPyConnection, sql: str, params: Params) -> pa.Table:
        import duckdb

        timer = threading.Timer(self._timeout_s, con.interrupt) if self._timeout_s else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            relation = con.sql(sql, params=params)
            if relation is None:
                raise InvalidArgument("the statement returned no rows; only SELECT queries are allowed")
            return relation.to_arrow_table()
        except duckdb.Error as exc:
            raise translate_duckdb_error(exc, "SQL query") from exc
        finally:
            if timer is not None:
                timer.cancel()


def referenced_tables(sql: str, con: duckdb.DuckDBPyConnection) -> list[ObjectName]:
    """Parse ``sql`` with DuckDB and return the lake tables it reads (see the module rules)."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise translate_duckdb_error(exc, "SQL query") from exc
    if len(statements) != 1:
        raise InvalidArgument(f"send exactly one SQL statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise InvalidArgument(f"only SELECT queries are allowed, got {statements[0].type.name}")
    rows = con.execute("SELECT json_serialize_sql($1)", [sql]).fetchall()
    tree = json.loads(rows[0][0]) if rows else {"error": True, "error_message": "cannot parse"}
    if tree.get("error"):
        raise InvalidArgument(f"invalid SQL query: {tree.get('error_message', 'cannot parse')}")
    refs: list[tuple[str, str, str]] = []
    ctes: set[str] = set()
    _walk(tree, refs, ctes)
    names: list[ObjectName] = []
    for catalog, schema, table in refs:
        if not catalog and not schema and table.lower() in ctes:
            continue
        if not catalog or not schema:
            shown = ".".join(p for p in (catalog, schema, table) if p)
            raise InvalidArgument(
                f"reference tables by their full name catalog.schema.table (for example dev.raw.trips), not {shown!r}"
            )
        name = parse_name(f"{catalog}.{schema}.{table}")
        if name.catalog in RESERVED_CATALOGS:
            raise InvalidArgument(f"catalog name {name.catalog!r} is reserved by the SQL engine")
        if name not in names:
            names.append(name)
    return names


def _walk(node: Any, refs: list[tuple[str, str, str]], ctes: set[str]) -> None:
    """Collect BASE_TABLE references and CTE names from DuckDB's JSON syntax tree."""
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and "table_name" in node:
            refs.append((node.get("catalog_name") or "", node.get("schema_name") or "", node["table_name"]))
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            ctes.update(str(entry.get("key", "")).lower() for entry in cte_map.get("map", []))
        for value in node.values():
            _walk(value, refs, ctes)
    elif isinstance(node, list):
        for item in node:
            _walk(item, refs, ctes)


def _expose(lease: Lease, name: ObjectName, dataset: pads.Dataset, alias: str, files: list[str] | None = None) -> None:
    """Make ``dataset`` readable as ``catalog.schema.table`` on the leased connection.

    With ``files``, the view reads them natively when that gives the same columns and types.
    """
    lease.attach(name.catalog)
    lease.create_schema(name.catalog, name.schema)
    lease.register(alias, dataset)
    arrow_relation = f"temp.main.{quote_ident(alias)}"
    body = native_view_sql(lease.con, files, arrow_relation) if files else None
    target = ".".join(quote_ident(p) for p in name.parts)
    lease.con.execute(f"CREATE VIEW {target} AS {body or 'SELECT * FROM ' + arrow_relation}")


def _check_params(params: Params) -> Params:
    if params is None or isinstance(params, Mapping):
        return params
    if isinstance(params, str | bytes) or not isinstance(params, Sequence):
        raise InvalidArgument("params must be a list (for ? or $1) or a dict (for $name)")
    return list(params)


# -- filters over one dataset --------------------------------------------------------------


def _filter_pool() -> ConnectionPool:
    return shared_pool(None, "50%", None)


def filter_table(
    dataset: pads.Dataset, filter: str | pc.Expression | None = None, columns: list[str] | None = None
) -> pa.Table:
    """Rows of ``dataset`` matching ``filter``, with ``columns`` (default all), as a table.

    A string filter is a SQL boolean expression (``"fare > 10 AND city = 'Oslo'"``) evaluated by
    the same locked-down DuckDB as queries; a ``pyarrow.compute.Expression`` is pushed into the
    Arrow scanner. Column types are those of the dataset. InvalidArgument for a bad filter or an
    unknown column.
    """
    import duckdb

    cols = _check_columns(dataset, columns)
    if not isinstance(filter, str):
        return _arrow_scan(dataset, filter, cols).to_table()
    with _filter_pool().acquire() as lease:
        lease.register("__mlh_filter", dataset)
        try:
            table = _filtered(lease.con, filter, cols).to_arrow_table()
        except duckdb.Error as exc:
            raise translate_duckdb_error(exc, "filter") from exc
    return _as_dataset_types(table, dataset, cols)


def filter_reader(
    dataset: pads.Dataset,
    filter: str | pc.Expression | None = None,
    columns: list[str] | None = None,
    batch_size: int = 131_072,
) -> pa.RecordBatchReader:
    """Like :func:`filter_table`, streamed as record batches of at most ``batch_size`` rows."""
    import duckdb
    import pyarrow as pa

    cols = _check_columns(dataset, columns)
    if not isinstance(filter, str):
        return _arrow_scan(dataset, filter, cols, batch_size).to_reader()
    # a dedicated connection: it must outlive this call, until the reader is drained
    con = _filter_pool().new_connection()
    try:
        con.register("__mlh_filter", dataset)
        reader = _filtered(con, filter, cols).to_arrow_reader(batch_size)
    except duckdb.Error as exc:
        con.close()
        raise translate_duckdb_error(exc, "filter") from exc
    target = _projected_schema(dataset, cols)
    return pa.RecordBatchReader.from_batches(target, _cast_batches(con, reader, target))


def _filtered(con: duckdb.DuckDBPyConnection, filter: str, columns: list[str]) -> duckdb.DuckDBPyRelation:
    import duckdb

    if not filter.strip():
        raise InvalidArgument("filter must be a SQL boolean expression, got an empty string")
    relation = con.view("__mlh_filter").filter(duckdb.SQLExpression(filter))
    return relation.project(", ".join(quote_ident(c) for c in columns))


def _arrow_scan(dataset: pads.Dataset, filter: Any, columns: list[str], batch_size: int = 131_072) -> pads.Scanner:
    import pyarrow as pa
    import pyarrow.compute as pc

    if filter is not None and not isinstance(filter, pc.Expression):
        raise InvalidArgument("filter must be a SQL string, a pyarrow.compute.Expression or None")
    try:
        return dataset.scanner(columns=columns, filter=filter, batch_size=batch_size)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InvalidArgument(f"invalid filter: {exc}") from exc


def _check_columns(dataset: pads.Dataset, columns: list[str] | None) -> list[str]:
    if columns is None:
        return list(dataset.schema.names)
    if isinstance(columns, str) or not columns:
        raise InvalidArgument("columns must be a non-empty list of column names, or None for all")
    unknown = [c for c in columns if dataset.schema.get_field_index(c) < 0]
    if unknown:
        raise InvalidArgument(f"unknown columns: {', '.join(unknown)}")
    return list(columns)


def _projected_schema(dataset: pads.Dataset, columns: list[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([dataset.schema.field(c) for c in columns])


def _as_dataset_types(table: pa.Table, dataset: pads.Dataset, columns: list[str]) -> pa.Table:
    """Cast DuckDB's output back to the dataset's column types when they differ and can be cast."""
    import pyarrow as pa

    target = _projected_schema(dataset, columns)
    if table.schema.equals(target):
        return table
    try:
        return table.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return table


def _cast_batches(
    con: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader, target: pa.Schema
) -> Iterator[pa.RecordBatch]:
    import duckdb

    try:
        for batch in reader:
            yield batch if batch.schema.equals(target) else batch.cast(target)
    except duckdb.Error as exc:
        raise translate_duckdb_error(exc, "filter") from exc
    finally:
        con.close()
