"""Arrow at the HTTP edge: schemas from JSON, IPC streams in and out, rows as JSON."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from mlharbor.api.schemas import ColumnOut, ColumnSpec
from mlharbor.errors import InvalidArgument
from mlharbor.lake.types import parse_type

ARROW_STREAM = "application/vnd.apache.arrow.stream"

def schema_from_columns(columns: list[ColumnSpec]) -> pa.Schema:
    if not columns:
        raise InvalidArgument("a table needs at least one column")
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"duplicate column names in {names}")
    return pa.schema([pa.field(c.name, parse_type(c.type), nullable=c.nullable) for c in columns])


def schema_to_b64(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_b64(text: str) -> pa.Schema:
    try:
        return pa.ipc.read_schema(pa.BufferReader(base64.b64decode(text, validate=True)))
    except (ValueError, pa.ArrowException) as exc:
        raise InvalidArgument(f"schema_ipc is not a base64 Arrow IPC schema: {exc}") from None


def columns_of(schema: pa.Schema) -> list[ColumnOut]:
    return [ColumnOut(name=f.name, type=str(f.type), nullable=f.nullable) for f in schema]


def reader_from_ipc(body: bytes) -> pa.RecordBatchReader:
    """Open an Arrow IPC stream sent by a client; malformed bytes are InvalidArgument."""
    try:
        reader = pa.ipc.open_stream(pa.BufferReader(body))
        batches = list(reader)  # validate the whole body before anything is written
    except (pa.ArrowException, OSError) as exc:
        raise InvalidArgument(f"request body is not a valid Arrow IPC stream: {exc}") from None
    return pa.RecordBatchReader.from_batches(reader.schema, batches)


def table_from_json_rows(rows: Any) -> pa.Table:
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InvalidArgument("JSON body must be a non-empty list of row objects")
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidArgument(f"rows do not form a table: {exc}") from None


class _Chunks:
    """A write-only sink whose bytes are drained after every batch."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def ipc_chunks(data: pa.RecordBatchReader | pa.Table) -> Iterator[bytes]:
    """Encode batches as an Arrow IPC stream, one chunk per batch (for streaming responses)."""
    batches = data.to_batches() if isinstance(data, pa.Table) else data
    sink = _Chunks()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            yield sink.drain()
    yield sink.drain()


def rows_json(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts (timestamps ISO 8601, bytes base64, decimals as strings), nested
    values included: a list of binaries is a list of base64 strings, map entries are [key, value]."""
    names = table.column_names
    columns = [_column_values(name, table.column(i)) for i, name in enumerate(names)]
    if not columns:
        return [{} for _ in range(table.num_rows)]
    rows = zip(*columns, strict=True)
    return [{name: _json_safe(v) for name, v in zip(names, values, strict=True)} for values in rows]


def _column_values(name: str, column: pa.ChunkedArray) -> list[Any]:
    try:
        return list(column.to_pylist())
    except OverflowError:  # dates or timestamps outside Python's years 1..9999 (DuckDB's 'infinity', ...)
        pass
    try:
        return list(column.cast(_as_text(column.type)).to_pylist())
    except (pa.ArrowException, OverflowError):
        raise InvalidArgument(
            f"column {name!r} holds dates or times JSON rows cannot show; ask for format=arrow"
        ) from None


def _as_text(t: pa.DataType) -> pa.DataType:
    """``t`` with every date and timestamp inside it replaced by string (Arrow spells them out)."""
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(_as_text(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(_as_text(t.key_type), _as_text(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _as_text(f.type), f.nullable) for f in t])
    return t


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
