"""Row-level changes between table versions, in the shape ``TableStore.changes()`` returns.

Two sources:

* a change data feed (Delta CDF) — exact: one row per inserted, deleted, or updated row (pre and
  post image), attributed to the commit that made it;
* a version diff, for tables whose feed is off (tables written by other tools): the rows of
  ``to`` that are not in ``from`` (``EXCEPT ALL``, so duplicates count) are inserts, the rows of
  ``from`` not in ``to`` are deletes. It reports the *net* change over the whole range, attributed
  to ``to_version``; an update appears as a delete of the old row plus an insert of the new one,
  and a row inserted and deleted again inside the range does not appear. Columns added in between
  read as null in the older version.

Both return the table's columns followed by ``_change_type`` (string), ``_commit_version``
(int64) and ``_commit_timestamp`` (timestamp[us, UTC]), ordered by commit version.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlharbor.lake.base import CHANGE_TYPE, COMMIT_TIMESTAMP, COMMIT_VERSION
from mlharbor.lake.duck import quote_ident, translate_duckdb_error

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads


def change_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of a changes table for a table of ``schema``."""
    import pyarrow as pa

    return pa.schema(
        [
            *schema,
            pa.field(CHANGE_TYPE, pa.string()),
            pa.field(COMMIT_VERSION, pa.int64()),
            pa.field(COMMIT_TIMESTAMP, pa.timestamp("us", tz="UTC")),
        ]
    )


def empty_changes(schema: pa.Schema) -> pa.Table:
    """A changes table with no rows."""
    return change_schema(schema).empty_table()


def normalise_feed(feed: Any, schema: pa.Schema) -> pa.Table:
    """Cast a change-feed stream (``__arrow_c_stream__``) to :func:`change_schema`, sorted by version.

    The feed's column types can differ from the table's (``string_view`` for ``string``, naive
    millisecond timestamps): they are cast back so changes look like the table.
    """
    import pyarrow as pa

    raw = pa.table(feed)
    target = change_schema(schema)
    columns = []
    for f in target:
        column = raw.column(f.name)
        if f.name == COMMIT_TIMESTAMP and column.type.tz is None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        columns.append(column.cast(f.type))
    table = pa.Table.from_arrays(columns, schema=target)
    return table.sort_by([(COMMIT_VERSION, "ascending")])


def diff_versions(
    old: pads.Dataset | None, new: pads.Dataset, schema: pa.Schema, to_version: int, committed_at: datetime
) -> pa.Table:
    """Net changes from ``old`` (None: an empty table) to ``new`` via DuckDB ``EXCEPT ALL``."""
    import pyarrow as pa

    from mlharbor.lake.duck import locked_connection

    con = locked_connection()
    try:
        con.register("__new", new)
        new_cols = ", ".join(quote_ident(f.name) for f in schema)
        if old is not None:
            con.register("__old", old)
            old_names = set(old.schema.names)
            old_cols = ", ".join(
                quote_ident(f.name) if f.name in old_names else f"NULL AS {quote_ident(f.name)}" for f in schema
            )
            old_sql = f"SELECT {old_cols} FROM __old"
        else:
            old_sql = f"SELECT {new_cols} FROM __new WHERE false"
        new_sql = f"SELECT {new_cols} FROM __new"
        sql = (
            f"SELECT *, 'insert' AS {CHANGE_TYPE} FROM ({new_sql} EXCEPT ALL {old_sql}) "
            f"UNION ALL SELECT *, 'delete' AS {CHANGE_TYPE} FROM ({old_sql} EXCEPT ALL {new_sql})"
        )
        result = con.sql(sql).to_arrow_table()
    except Exception as exc:
        import duckdb

        if isinstance(exc, duckdb.Error):
            raise translate_duckdb_error(exc, "version diff") from exc
        raise
    finally:
        con.close()
    n = result.num_rows
    columns = [result.column(f.name).cast(f.type) for f in schema]
    columns.append(result.column(CHANGE_TYPE).cast(pa.string()))
    columns.append(pa.array([to_version] * n, pa.int64()))
    columns.append(pa.array([committed_at] * n, pa.timestamp("us", tz="UTC")))
    return pa.Table.from_arrays(columns, schema=change_schema(schema))
