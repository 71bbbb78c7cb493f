"""The latest row per key of a table, streamed in key order: what an online store holds.

Rows with a null key part are skipped (no lookup can ask for them). With a timestamp column the
row with the greatest timestamp wins per key (ties: the later row in scan order is not
guaranteed — keep one row per key and timestamp, which merge-writes do); without one, any row of
the key. ``only`` restricts the result to the keys it lists (an incremental publish). The output is
ordered by the key columns, so the same table version always yields the same sequence of rows:
a publisher can resume after the rows it already wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from mlharbor.lake.duck import locked_connection, quote_ident, translate_duckdb_error

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["latest_per_key"]


def latest_per_key(
    data: pa.Table | pa.RecordBatchReader,
    keys: list[str],
    timestamp: str | None = None,
    only: pa.Table | None = None,
    batch_size: int = 50_000,
    skip: int = 0,
) -> pa.RecordBatchReader:
    """Stream the latest row of every key of ``data`` (all its columns), ordered by ``keys``.

    ``skip`` drops that many rows from the start of the ordered result (resuming a publish).
    """
    import pyarrow as pa

    con = locked_connection()
    try:
        con.register("src", data)
        ks = ", ".join(quote_ident(k) for k in keys)
        not_null = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in keys)
        order = f"ORDER BY {quote_ident(timestamp)} DESC" if timestamp else ""
        semi = ""
        if only is not None:
            con.register("only_keys", only.select(keys))
            semi = f"SEMI JOIN (SELECT DISTINCT {ks} FROM only_keys) k USING ({ks})"
        columns = ", ".join(quote_ident(c) for c in data.schema.names)
        query = (
            f"SELECT {columns} FROM src {semi} WHERE {not_null} "
            f"QUALIFY row_number() OVER (PARTITION BY {ks} {order}) = 1 "
            f"ORDER BY {ks} LIMIT 9223372036854775807 OFFSET {int(skip)}"
        )
        relation = con.sql(query)
        # DuckDB 1.4 renamed fetch_arrow_reader (deprecated in 2.x) to to_arrow_reader
        to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        reader = to_reader(batch_size)
    except Exception as exc:
        con.close()
        if isinstance(exc, (ValueError, TypeError)):
            raise
        raise translate_duckdb_error(exc, "reading the latest rows") from exc

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())
