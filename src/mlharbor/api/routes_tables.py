"""Table routes: list, create, describe, update, drop, history, rows (preview, read, write),
changes, optimize, vacuum, SQL and lineage. Thin: each calls one TableService method."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import orjson
import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from mlharbor.api import arrow_io, deps
from mlharbor.api.schemas import (
    ERROR_RESPONSES,
    INT64_MAX,
    CommitOut,
    LineageEdgeOut,
    RowsOut,
    SqlIn,
    TableCreate,
    TableDescriptionOut,
    TableOut,
    TableUpdate,
    UtcDatetime,
    VacuumIn,
    WriteOut,
)
from mlharbor.catalog.service import TableService
from mlharbor.catalog.tables import split_sources
from mlharbor.errors import InvalidArgument
from mlharbor.lake.base import WriteMode

router = APIRouter(prefix="/api/v1", tags=["tables"], responses=ERROR_RESPONSES)
Tables = Annotated[TableService, Depends(deps.tables)]
Format = Literal["json", "arrow"]
# With format=arrow, rows come back as an Arrow IPC stream instead of RowsOut.
ARROW_OR_JSON: dict[int | str, dict[str, Any]] = {
    200: {"content": {arrow_io.ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
          "description": "RowsOut, or with format=arrow an Arrow IPC stream"},
}


def _csv(value: str | None) -> list[str] | None:
    if value is None or value == "":
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _rows_response(table: pa.Table, fmt: Format, limit: int | None = None) -> Any:
    if fmt == "arrow":
        return StreamingResponse(arrow_io.ipc_chunks(table), media_type=arrow_io.ARROW_STREAM)
    data, sources = split_sources(table)
    assert isinstance(data, pa.Table)
    names = data.column_names
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InvalidArgument(f"columns {dupes} appear more than once: "
                              "give them distinct aliases (or use format=arrow)")
    truncated = limit is not None and data.num_rows > limit
    if truncated:
        data = data.slice(0, limit)
    return RowsOut(columns=arrow_io.columns_of(data.schema), rows=arrow_io.rows_json(data),
                   num_rows=data.num_rows, truncated=truncated, sources=sources)


@router.get("/tables", response_model=list[TableOut])
def list_tables(
    svc: Tables, catalog: str | None = None, schema: str | None = None,
    kind: Literal["table", "feature_table"] | None = None,
) -> list[TableOut]:
    """Tables the caller may read."""
    return [TableOut.of(t) for t in svc.list(catalog, schema, kind)]


@router.post("/tables", response_model=TableOut, status_code=201)
def create_table(svc: Tables, body: TableCreate) -> TableOut:
    """Create an empty table from ``columns`` (or a base64 Arrow schema)."""
    if (body.columns is None) == (body.schema_ipc is None):
        raise InvalidArgument("give exactly one of 'columns' or 'schema_ipc'")
    schema = (arrow_io.schema_from_b64(body.schema_ipc) if body.schema_ipc
              else arrow_io.schema_from_columns(body.columns or []))
    info = svc.create(body.name, schema, body.partition_by, body.comment, body.tags, body.if_not_exists,
                      body.kind, body.properties)
    return TableOut.of(info)


@router.get("/tables/{name}", response_model=TableDescriptionOut)
def describe_table(svc: Tables, name: str) -> TableDescriptionOut:
    d = svc.describe(name)
    return TableDescriptionOut(
        table=TableOut.of(d.info), columns=arrow_io.columns_of(d.schema), schema_ipc=arrow_io.schema_to_b64(d.schema),
        version=d.version, num_files=d.num_files, size_bytes=d.size_bytes, num_rows=d.num_rows,
        environment=d.environment,
    )


@router.patch("/tables/{name}", response_model=TableOut)
def update_table(svc: Tables, name: str, body: TableUpdate) -> TableOut:
    return TableOut.of(svc.update(name, body.comment, body.tags, body.owner, body.properties))


@router.delete("/tables/{name}", status_code=204)
def drop_table(svc: Tables, name: str) -> Response:
    svc.drop(name)
    return Response(status_code=204)


@router.get("/tables/{name}/history", response_model=list[CommitOut])
def table_history(
    svc: Tables, name: str, limit: Annotated[int | None, Query(ge=1, le=10_000)] = None
) -> list[CommitOut]:
    return [CommitOut(**c.__dict__) for c in svc.history(name, limit)]


@router.get("/tables/{name}/rows", response_model=RowsOut, responses=ARROW_OR_JSON)
def read_rows(
    svc: Tables,
    name: str,
    columns: Annotated[str | None, Query(description="comma-separated column names")] = None,
    filter: Annotated[str | None, Query(max_length=10_000, description="SQL boolean expression")] = None,
    version: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    timestamp: UtcDatetime | None = None,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    format: Format = "json",
) -> Any:
    """Preview (JSON, default 100 rows) or read (``format=arrow``, streamed IPC) a table's rows."""
    if format == "arrow":
        reader = svc.scan(name, _csv(columns), filter, version, timestamp)
        if limit is not None:
            reader = pa.RecordBatchReader.from_batches(reader.schema, _limited(reader, limit))
        return StreamingResponse(arrow_io.ipc_chunks(reader), media_type=arrow_io.ARROW_STREAM)
    limit = 100 if limit is None else limit
    table = svc.read(name, _csv(columns), filter, version, timestamp, limit + 1)
    return _rows_response(table, "json", limit)


def _limited(reader: pa.RecordBatchReader, limit: int) -> Any:
    left = limit
    for batch in reader:
        if left <= 0:
            return
        out = batch.slice(0, left)
        left -= out.num_rows
        yield out


@router.post("/tables/{name}/rows", response_model=WriteOut,
             openapi_extra={"requestBody": {"content": {
                 arrow_io.ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
                 "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
             }, "required": True}})
async def write_rows(
    request: Request,
    svc: Tables,
    name: str,
    mode: WriteMode = "append",
    keys: Annotated[str | None, Query(description="comma-separated merge keys")] = None,
    txn_id: Annotated[str | None, Query(max_length=200)] = None,
    schema_evolution: bool = False,
    sources: Annotated[str | None, Query(description='JSON object {"catalog.schema.table": version}')] = None,
) -> WriteOut:
    """Write rows sent as an Arrow IPC stream (or a JSON list of objects) as one new version."""
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(svc.check_writable, name, mode)  # refuse before reading a large body
    body = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype == arrow_io.ARROW_STREAM:
        data: Any = arrow_io.reader_from_ipc(body)
    elif ctype == "application/json":
        try:
            data = arrow_io.table_from_json_rows(orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(f"body is not valid JSON: {exc}") from None
    else:
        raise InvalidArgument(f"send rows as {arrow_io.ARROW_STREAM} or application/json, not {ctype or 'nothing'!r}")
    src = _parse_sources(sources)
    result = await run_in_threadpool(svc.write, name, data, mode, _csv(keys), txn_id, schema_evolution, src)
    return WriteOut(version=result.version, applied=result.applied, num_rows=result.num_rows,
                    metrics={k: v for k, v in result.metrics.items() if isinstance(v, int | float | str | bool)})


def _parse_sources(text: str | None) -> dict[str, int]:
    """``{"catalog.schema.table": version}``; a version is a whole number from 0 (not true, 1.5 or -1)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        type(v) is int and 0 <= v <= INT64_MAX for v in value.values()
    ):
        raise InvalidArgument('sources must be a JSON object of table versions like {"dev.raw.trips": 3}')
    return {str(k): v for k, v in value.items()}


@router.get("/tables/{name}/changes", response_model=RowsOut, responses=ARROW_OR_JSON)
def table_changes(
    svc: Tables, name: str, from_version: Annotated[int, Query(ge=0, le=INT64_MAX)],
    to_version: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None, format: Format = "json",
) -> Any:
    return _rows_response(svc.changes(name, from_version, to_version), format)


@router.post("/tables/{name}/optimize")
def optimize_table(svc: Tables, name: str) -> dict[str, Any]:
    metrics = svc.optimize(name)
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool | None)}


@router.post("/tables/{name}/vacuum", response_model=list[str])
def vacuum_table(svc: Tables, name: str, body: VacuumIn) -> list[str]:
    return svc.vacuum(name, body.retain_hours, body.dry_run)


@router.post("/sql", response_model=RowsOut, responses=ARROW_OR_JSON)
def run_sql(svc: Tables, body: SqlIn) -> Any:
    """DuckDB SQL over tables the caller may read, referenced as ``catalog.schema.table``."""
    table = svc.sql(body.query, body.params)
    return _rows_response(table, body.format, body.limit)


@router.get("/lineage/{name}", response_model=list[LineageEdgeOut])
def table_lineage(svc: Tables, name: str) -> list[LineageEdgeOut]:
    """Lineage edges touching a table (any version), between tables the caller may read."""
    return [LineageEdgeOut.of(e) for e in svc.lineage(name)]


__all__ = ["router"]
