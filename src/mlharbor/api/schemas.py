"""Request and response bodies of the REST API (they make the OpenAPI spec)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mlharbor.core.entities import (
    ApiToken,
    AuditEntry,
    Grant,
    LineageEdge,
    Principal,
    TableInfo,
)

# Versions and ids are signed 64-bit in Delta logs and in the metadata store (SQLite INTEGER, BIGINT).
INT64_MAX = 2**63 - 1


def _utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted, which must stay within year 1..9999."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


# A datetime parameter, as an aware UTC datetime (``0001-01-01T00:00+01:00`` is rejected, not a 500).
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every error the API answers with (see ``mlharbor.errors`` for the codes)."""

    error_code: str = Field(examples=["INVALID_ARGUMENT"])
    message: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Documented on every authenticated route (see ``mlharbor.errors`` for which error maps to which status).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid input (INVALID_ARGUMENT); the message says what to fix"),
    401: _error("Missing, unknown, expired or revoked token (UNAUTHENTICATED)"),
    403: _error("The token's principal lacks the permission (PERMISSION_DENIED)"),
    404: _error("The named object does not exist (NOT_FOUND)"),
    409: _error("The object exists already or changed concurrently (ALREADY_EXISTS, CONFLICT)"),
    503: _error("A store cannot be reached (BACKEND_UNAVAILABLE)"),
}


class ColumnSpec(Body):
    name: str = Field(min_length=1, max_length=255)
    type: str = Field(
        min_length=1, max_length=100, description="int64, float64, string, bool, date32, timestamp[us, tz=UTC], ..."
    )
    nullable: bool = True


class TableCreate(Body):
    name: str = Field(min_length=1, max_length=200, examples=["dev.raw.trips"])
    columns: list[ColumnSpec] | None = Field(default=None, max_length=10_000)
    schema_ipc: str | None = Field(default=None, description="base64 Arrow IPC schema (used by the Python client)")
    partition_by: list[str] = Field(default_factory=list, max_length=32)
    comment: str = Field(default="", max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict)
    if_not_exists: bool = False
    kind: Literal["table", "feature_table"] = "table"
    properties: dict[str, Any] = Field(default_factory=dict, description="facts kept by subsystems (feature keys)")


class TableUpdate(Body):
    comment: str | None = Field(default=None, max_length=10_000)
    tags: dict[str, str] | None = None
    owner: str | None = Field(default=None, max_length=64)
    properties: dict[str, Any] | None = None


class TableOut(BaseModel):
    name: str
    location: str
    owner: str
    comment: str
    tags: dict[str, str]
    partition_by: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    kind: str
    properties: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, t: TableInfo) -> TableOut:
        return cls(
            name=t.name, location=t.location, owner=t.owner, comment=t.comment, tags=t.tags,
            partition_by=list(t.partition_by), created_by=t.created_by, created_at=t.created_at,
            updated_at=t.updated_at, kind=t.kind, properties=t.properties,
        )


class ColumnOut(BaseModel):
    name: str
    type: str
    nullable: bool


class TableDescriptionOut(BaseModel):
    table: TableOut
    columns: list[ColumnOut]
    schema_ipc: str
    version: int
    num_files: int
    size_bytes: int
    num_rows: int | None
    environment: str


class CommitOut(BaseModel):
    version: int
    timestamp: datetime
    operation: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    actor: str | None
    request_id: str | None
    txn_id: str | None


class WriteOut(BaseModel):
    version: int
    applied: bool
    num_rows: int
    metrics: dict[str, Any]


class VacuumIn(Body):
    retain_hours: float = Field(default=168.0, ge=0, le=1_000_000)
    dry_run: bool = False


class SqlIn(Body):
    query: str = Field(min_length=1, max_length=100_000)
    params: list[Any] | dict[str, Any] | None = None
    format: Literal["json", "arrow"] = "json"
    limit: int = Field(default=10_000, ge=1, le=1_000_000, description="rows returned in JSON format")


class RowsOut(BaseModel):
    columns: list[ColumnOut]
    rows: list[dict[str, Any]]
    num_rows: int
    truncated: bool
    sources: dict[str, int] = Field(default_factory=dict)


class PrincipalCreate(Body):
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["user", "service"] = "user"
    display_name: str = Field(default="", max_length=200)


class PrincipalUpdate(Body):
    active: bool


class PrincipalOut(BaseModel):
    name: str
    kind: str
    display_name: str
    created_at: datetime
    created_by: str
    active: bool

    @classmethod
    def of(cls, p: Principal) -> PrincipalOut:
        return cls(name=p.name, kind=p.kind.value, display_name=p.display_name, created_at=p.created_at,
                   created_by=p.created_by, active=p.active)


class TokenCreate(Body):
    name: str = Field(min_length=1, max_length=100)
    principal: str | None = Field(default=None, max_length=64)
    ttl_days: float | None = Field(default=None, gt=0, le=3650)


class TokenOut(BaseModel):
    id: str
    principal: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, t: ApiToken) -> TokenOut:
        return cls(id=t.id, principal=t.principal, name=t.name, prefix=t.prefix, created_at=t.created_at,
                   expires_at=t.expires_at, revoked_at=t.revoked_at, last_used_at=t.last_used_at)


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only in this response")


class GrantIn(Body):
    principal: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "data_scientist", "ml_engineer", "admin"]
    environments: list[Literal["dev", "staging", "prod"]] | None = None


class GrantOut(BaseModel):
    principal: str
    environment: str
    role: str
    granted_by: str
    granted_at: datetime

    @classmethod
    def of(cls, g: Grant) -> GrantOut:
        return cls(principal=g.principal, environment=g.environment.value, role=g.role.value,
                   granted_by=g.granted_by, granted_at=g.granted_at)


class AuditOut(BaseModel):
    id: int
    time: datetime
    actor: str
    action: str
    resource: str
    decision: str
    request_id: str
    details: dict[str, Any]

    @classmethod
    def of(cls, a: AuditEntry) -> AuditOut:
        return cls(id=a.id, time=a.time, actor=a.actor, action=a.action, resource=a.resource,
                   decision=a.decision.value, request_id=a.request_id, details=a.details)


class LineageEdgeOut(BaseModel):
    source: str
    target: str
    relation: str
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, e: LineageEdge) -> LineageEdgeOut:
        return cls(source=str(e.source), target=str(e.target), relation=e.relation,
                   created_at=e.created_at, created_by=e.created_by)


class WhoAmI(BaseModel):
    principal: str
    roles: dict[str, str]
