"""Feature routes: publish online, online status and reads, and the function catalog.

Feature tables themselves are tables (``/api/v1/tables?kind=feature_table``). The server stores
function source but never runs it (see :mod:`mlharbor.catalog.functions`): clients evaluate specs.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from mlharbor.api import arrow_io, deps
from mlharbor.api.schemas import ERROR_RESPONSES, Body, ColumnOut
from mlharbor.catalog.functions import FunctionService
from mlharbor.catalog.service import TableService
from mlharbor.catalog.tables import Tables
from mlharbor.core.entities import FunctionInfo
from mlharbor.errors import InvalidArgument
from mlharbor.features.online import OnlineRead
from mlharbor.features.publish import LocalOnline

router = APIRouter(prefix="/api/v1", tags=["features"], responses=ERROR_RESPONSES)
MAX_KEYS = 10_000
MAX_REQUESTS = 100


def _online(request: Request) -> LocalOnline:
    services = deps.services(request)
    actor = deps.actor(request)
    return LocalOnline(services.catalog, Tables(TableService(services.catalog, actor)), actor, services.online_store)


def _functions(request: Request) -> FunctionService:
    return FunctionService(deps.services(request).catalog, deps.actor(request))


Online = Annotated[LocalOnline, Depends(_online)]
Functions = Annotated[FunctionService, Depends(_functions)]


# --- bodies ----------------------------------------------------------------------------------


class PublishIn(Body):
    mode: Literal["snapshot", "incremental"] = "incremental"
    ttl_seconds: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    batch_size: int = Field(default=10_000, ge=1, le=1_000_000)


class PublishOut(BaseModel):
    table: str
    mode: str
    version: int
    from_version: int | None
    rows_written: int
    keys_deleted: int
    resumed_rows: int
    seconds: float
    published_at: datetime


class OnlineStatusOut(BaseModel):
    table: str
    store: str
    published_version: int | None
    published_at: datetime | None
    table_version: int
    ttl_seconds: int | None
    behind: int | None


class ReadRequestIn(Body):
    table: str
    keys: dict[str, list[Any]] = Field(description="key column -> values, one per entity")
    features: list[str] | None = None


class OnlineReadIn(Body):
    requests: list[ReadRequestIn] = Field(min_length=1, max_length=MAX_REQUESTS)
    format: Literal["json", "arrow"] = "json"


class OnlineResultOut(BaseModel):
    columns: list[ColumnOut]
    rows: list[dict[str, Any]] | None = None
    arrow_ipc: str | None = Field(default=None, description="base64 Arrow IPC stream (format=arrow)")


class OnlineReadOut(BaseModel):
    results: list[OnlineResultOut]


class FunctionIn(Body):
    name: str
    source: str = Field(max_length=64 * 1024)
    entry_point: str
    return_type: str
    description: str = ""


class FunctionOut(BaseModel):
    name: str
    version: int
    entry_point: str
    source: str
    sha256: str
    parameters: list[str]
    return_type: str
    description: str
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, f: FunctionInfo) -> FunctionOut:
        return cls(name=f.name, version=f.version, entry_point=f.entry_point, source=f.source, sha256=f.sha256,
                   parameters=list(f.parameters), return_type=f.return_type, description=f.description,
                   created_by=f.created_by, created_at=f.created_at)


# --- online ----------------------------------------------------------------------------------


@router.post("/features/{name}/publish", response_model=PublishOut)
def publish(online: Online, name: str, body: PublishIn) -> PublishOut:
    """Publish a feature table's latest rows to its online store (incremental after the first time)."""
    result = online.publish(name, body.mode, body.ttl_seconds, body.batch_size, progress=False)
    return PublishOut(**result.__dict__)


@router.get("/features/{name}/online", response_model=OnlineStatusOut)
def online_status(online: Online, name: str) -> OnlineStatusOut:
    s = online.status(name)
    return OnlineStatusOut(table=s.table, store=s.store, published_version=s.published_version,
                           published_at=s.published_at, table_version=s.table_version, ttl_seconds=s.ttl_seconds,
                           behind=s.behind)


@router.delete("/features/{name}/online", status_code=204)
def unpublish(online: Online, name: str) -> Response:
    online.unpublish(name)
    return Response(status_code=204)


def _keys_table(req: ReadRequestIn) -> pa.Table:
    if not req.keys:
        raise InvalidArgument(f"keys for {req.table} name no column")
    lengths = {len(v) for v in req.keys.values()}
    if len(lengths) != 1:
        raise InvalidArgument(f"every key column of {req.table} needs the same number of values")
    try:
        return pa.table(req.keys)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidArgument(f"keys for {req.table} do not make a table: {exc}") from None


@router.post("/features/online/read", response_model=OnlineReadOut)
def online_read(online: Online, body: OnlineReadIn) -> OnlineReadOut:
    """Online rows for several tables in one call (one round trip per online store)."""
    tables = [_keys_table(r) for r in body.requests]
    if sum(t.num_rows for t in tables) > MAX_KEYS:
        raise InvalidArgument(f"at most {MAX_KEYS} keys per call; split the request")
    results = online.read([OnlineRead(r.table, t, r.features) for r, t in zip(body.requests, tables, strict=True)])
    out = []
    for table in results:
        columns = arrow_io.columns_of(table.schema)
        if body.format == "arrow":
            ipc = base64.b64encode(b"".join(arrow_io.ipc_chunks(table))).decode("ascii")
            out.append(OnlineResultOut(columns=columns, arrow_ipc=ipc))
        else:
            out.append(OnlineResultOut(columns=columns, rows=arrow_io.rows_json(table)))
    return OnlineReadOut(results=out)


# --- functions -------------------------------------------------------------------------------


@router.post("/functions", response_model=FunctionOut, status_code=201)
def register_function(svc: Functions, body: FunctionIn) -> FunctionOut:
    """Register source code as the next version of a function (checked, never run, by the server)."""
    return FunctionOut.of(svc.register(body.name, body.source, body.entry_point, body.return_type, body.description))


@router.get("/functions", response_model=list[FunctionOut])
def list_functions(svc: Functions, catalog: str | None = None, schema: str | None = None) -> list[FunctionOut]:
    return [FunctionOut.of(f) for f in svc.list(catalog, schema)]


@router.get("/functions/{name}", response_model=FunctionOut)
def get_function(
    svc: Functions, name: str, version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
) -> FunctionOut:
    return FunctionOut.of(svc.get(name, version))


@router.get("/functions/{name}/versions", response_model=list[FunctionOut])
def function_versions(svc: Functions, name: str) -> list[FunctionOut]:
    return [FunctionOut.of(f) for f in svc.versions(name)]


@router.delete("/functions/{name}", status_code=204)
def drop_function(svc: Functions, name: str) -> Response:
    svc.drop(name)
    return Response(status_code=204)
