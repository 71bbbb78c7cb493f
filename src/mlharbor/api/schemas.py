"""Request and response bodies of the REST API (they make the OpenAPI spec)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mlharbor.core.entities import (
    ApiToken,
    AuditEntry,
    Grant,
    JobRunInfo,
    LineageEdge,
    Principal,
    TableInfo,
    TaskLog,
    TaskRunInfo,
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


# --- jobs ----------------------------------------------------------------------------------------
# A job definition is ``Job.to_dict()`` (mlharbor.jobs.definitions). These models document and type it;
# the definition's own checks (``Job.from_dict``) decide the rest. Job and task fields this schema does
# not list pass through to those checks, which refuse the ones jobs do not know either. No length limits
# beyond names and keys: the server answers with these models too, for jobs deployed without it.


class DependencyDef(Body):
    task: str = Field(min_length=1, max_length=100, description="an upstream task's key")
    outcome: Literal["true", "false"] | None = Field(default=None, description="follow one branch of a condition")


class TaskDef(BaseModel):
    """A task of a job definition (``Task.to_dict()``); fields left out take the task's defaults."""

    model_config = ConfigDict(extra="allow")

    key: str = Field(min_length=1, max_length=100, examples=["extract"])
    kind: str = Field(default="python", description="python, script, sql, notebook, run_job, "
                      "condition, for_each or approval")
    target: str = Field(default="", description="module:function, a script or notebook "
                        "path under the server's project, SQL, or a job name, by kind")
    parameters: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str | DependencyDef] = Field(default_factory=list)
    run_if: str = Field(default="all_success", description="all_success, at_least_one_success, "
                        "none_failed, all_done, at_least_one_failed or all_failed")
    max_retries: int = 0
    min_retry_interval_s: float = 0.0
    retry_backoff: float = 2.0
    timeout_s: float | None = None
    cache: bool = False
    cache_ttl_s: float | None = None
    cache_inputs: list[str] = Field(default_factory=list)
    concurrency: int = 1
    nested: TaskDef | None = Field(default=None, description="for_each: the task run once per input")


class ScheduleDef(BaseModel):
    model_config = ConfigDict(extra="allow")

    cron: str = Field(examples=["0 3 * * *"])
    timezone: str = "UTC"
    paused: bool = False
    catch_up: str = Field(default="latest", description="latest, all or none")
    max_catch_up: int = 100


class TableUpdateDef(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["table_update"]
    tables: list[str]
    condition: str = Field(default="any", description="any or all")
    debounce_s: float = 0.0


class ModelEventDef(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["model_event"]
    model: str
    events: list[str] = Field(default_factory=lambda: ["model_version.registered", "model_alias.changed"])


class JobCompletionDef(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["job_completion"]
    job: str
    states: list[str] = Field(default_factory=lambda: ["succeeded"])


class JobDef(BaseModel):
    """A job definition (``Job.to_dict()``): a DAG of tasks with job parameters; fields left out take the
    job's defaults."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=100, examples=["nightly"])
    tasks: list[TaskDef]
    parameters: dict[str, Any] = Field(default_factory=dict, description="defaults that a run may override")
    max_concurrent_runs: int = 1
    timeout_s: float | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    schedule: ScheduleDef | None = None
    trigger: Annotated[TableUpdateDef | ModelEventDef | JobCompletionDef, Field(discriminator="kind")] | None = None


class JobDeployed(BaseModel):
    name: str
    changed: bool = Field(description="false when the same definition was deployed already")


class RunIn(Body):
    parameters: dict[str, Any] = Field(default_factory=dict, description="job parameters overriding the job's")
    executor: str = Field(default="subprocess", min_length=1, max_length=32,
                          description="where the server runs task attempts: subprocess or in_process")
    trigger: str = Field(default="manual", min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
                         description="why the run started (a label; no control characters)")
    force: bool = Field(default=False, description="rerun cached tasks (and refresh their cache)")


class RepairIn(Body):
    executor: str = Field(default="subprocess", min_length=1, max_length=32)


class JobRunOut(BaseModel):
    id: str
    job_name: str
    state: str = Field(description="queued, running, succeeded, failed, cancelled or timed_out")
    parameters: dict[str, Any]
    trigger: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    message: str
    repairs: int
    owner: str = Field(description="host:pid of the runner driving the run")
    heartbeat_at: datetime | None
    cancel_requested: bool
    definition: JobDef | None = Field(default=None, description="the definition the run ran with; only in "
                                      "GET /job-runs/{run_id}")

    @classmethod
    def of(cls, r: JobRunInfo, definition: bool = False) -> JobRunOut:
        return cls(id=r.id, job_name=r.job_name, state=r.state, parameters=r.parameters, trigger=r.trigger,
                   created_by=r.created_by, created_at=r.created_at, started_at=r.started_at, ended_at=r.ended_at,
                   message=r.message, repairs=r.repairs, owner=r.owner, heartbeat_at=r.heartbeat_at,
                   cancel_requested=r.cancel_requested,
                   definition=JobDef.model_validate(r.definition) if definition else None)


class TaskRunOut(BaseModel):
    run_id: str
    task_key: str
    state: str
    attempts: int
    values: dict[str, Any]
    error: str
    log_paths: list[str] = Field(description="the last attempt's log files on the server")
    started_at: datetime | None
    ended_at: datetime | None
    cached_from: str | None = Field(description="the run whose cached result the task reused")
    io: dict[str, Any] = Field(default_factory=dict, description="what the task touched: read and written "
                               "{table: version}, mlflow_runs [run ids]")

    @classmethod
    def of(cls, t: TaskRunInfo) -> TaskRunOut:
        return cls(run_id=t.run_id, task_key=t.task_key, state=t.state, attempts=t.attempts, values=t.values,
                   error=t.error, log_paths=list(t.log_paths), started_at=t.started_at, ended_at=t.ended_at,
                   cached_from=t.cached_from, io=t.io)


class JobRunDetail(JobRunOut):
    tasks: list[TaskRunOut]


class TaskLogOut(BaseModel):
    """A piece of a task's log; read on from ``next_offset`` until ``complete`` and ``next_offset == size``."""

    run_id: str
    task_key: str
    stream: str
    attempt: int = Field(description="the attempt whose log this is; a retry starts a new log")
    offset: int
    next_offset: int
    size: int = Field(description="bytes in the log when it was read")
    text: str
    task_state: str
    complete: bool = Field(description="the task had finished: the log will not grow")

    @classmethod
    def of(cls, log: TaskLog) -> TaskLogOut:
        return cls(**dataclasses.asdict(log))


class FireOut(BaseModel):
    fire_key: str
    fire_time: datetime
    run_id: str | None
