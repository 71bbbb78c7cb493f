"""Domain records that cross the service and repository interfaces.

These are plain frozen dataclasses: the metadata store's ORM rows never leave ``mlharbor.meta``;
its repositories convert rows to these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class Role(StrEnum):
    VIEWER = "viewer"
    DATA_SCIENTIST = "data_scientist"
    ML_ENGINEER = "ml_engineer"
    ADMIN = "admin"


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE = "service"


class Decision(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"


@dataclass(frozen=True)
class TableInfo:
    """Catalog entry of a lake table. Data lives only in Delta at ``location``."""

    name: str
    location: str
    owner: str
    comment: str
    tags: dict[str, str]
    partition_by: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    kind: str = "table"  # "table" or "feature_table" (set by the feature store)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionInfo:
    """A version of a registered Python function (an on-demand feature), named ``catalog.schema.fn``.

    ``source`` is the function's own code (imports inside its body); ``entry_point`` names the
    function defined by it; ``sha256`` fingerprints the source, so a spec can pin exactly this code.
    """

    name: str
    version: int
    entry_point: str
    source: str
    sha256: str
    parameters: tuple[str, ...]
    return_type: str
    description: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class Principal:
    name: str
    kind: PrincipalKind
    display_name: str
    created_at: datetime
    created_by: str
    active: bool = True


@dataclass(frozen=True)
class Grant:
    principal: str
    environment: Environment
    role: Role
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True)
class ApiToken:
    """A token's record. The secret itself is never stored: only ``token_hash`` (SHA-256 hex)."""

    id: str
    principal: str
    name: str
    token_hash: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def is_valid_at(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: datetime
    actor: str
    action: str
    resource: str
    decision: Decision
    request_id: str
    details: dict[str, Any]


@dataclass(frozen=True)
class LineageNode:
    """A versioned thing in the lineage graph: ``kind`` is table, feature_table, run, model, ..."""

    kind: str
    name: str
    version: str | None = None

    def __str__(self) -> str:
        v = f"@{self.version}" if self.version is not None else ""
        return f"{self.kind}:{self.name}{v}"

    @classmethod
    def parse(cls, text: str) -> LineageNode:
        """The inverse of ``str()``: ``table:dev.raw.trips@3``."""
        kind, _, rest = text.partition(":")
        name, _, version = rest.partition("@")
        return cls(kind, name, version or None)


@dataclass(frozen=True)
class LineageEdge:
    source: LineageNode
    target: LineageNode
    relation: str  # e.g. "wrote_from", "trained_on"
    created_at: datetime
    created_by: str
    details: dict[str, Any] = field(default_factory=dict)


class ModelStage(StrEnum):
    """The stage of a model version. At most one version of a model is in Production."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RegisteredModelInfo:
    """A registered model, named ``catalog.schema.model``; its versions live in MLflow and here."""

    name: str
    owner: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    checks: dict[str, Any] = field(default_factory=dict)  # compliance check configuration


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of a registered model: where it is, what it was trained on, where it stands.

    ``manifest`` maps every artifact file (relative path) to its SHA-256, recorded when the model
    was logged and verified before it is loaded. ``feature_spec`` is the spec of the training set
    it was trained on (None for a model logged without one).
    """

    name: str
    version: int
    stage: ModelStage
    source: str
    run_id: str | None
    description: str
    manifest: dict[str, str]
    feature_spec: dict[str, Any] | None
    flavor: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None
    checks: dict[str, Any] | None = None


@dataclass(frozen=True)
class StageChange:
    """One entry of a version's stage history."""

    name: str
    version: int
    from_stage: ModelStage
    to_stage: ModelStage
    actor: str
    time: datetime
    comment: str
    request_id: str | None = None  # the transition request it carried out, if any


@dataclass(frozen=True)
class TransitionRequest:
    """A request to move a version to a stage, waiting for someone allowed to approve it."""

    id: str
    name: str
    version: int
    to_stage: ModelStage
    status: RequestStatus
    requested_by: str
    requested_at: datetime
    comment: str
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_comment: str = ""


@dataclass(frozen=True)
class ModelComment:
    id: int
    name: str
    version: int
    author: str
    time: datetime
    text: str


@dataclass(frozen=True)
class OutboxEvent:
    """An event written in the transaction of the change it reports, delivered at least once."""

    id: int
    time: datetime
    kind: str  # e.g. "model_version.registered", "model_version.stage_changed"
    resource: str  # e.g. "model:dev.ml.churn@3"
    actor: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Webhook:
    """An HTTP endpoint receiving events (all kinds when ``events`` is empty), optionally for one model.
    The signing secret is never part of this record."""

    id: str
    name: str
    url: str
    events: tuple[str, ...]
    model_name: str | None
    active: bool
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class EventDelivery:
    """One event for one subscriber: ``id`` is the delivery id receivers deduplicate on."""

    id: str
    subscriber: str
    event_id: int
    status: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: datetime
    last_error: str
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class JobRunInfo:
    """A run of a job: its state (``mlharbor.jobs.states.JobRunState`` values), the definition and
    parameters it ran with, and how it was triggered."""

    id: str
    job_name: str
    state: str
    definition: dict[str, Any]
    parameters: dict[str, Any]
    trigger: str
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    message: str = ""
    repairs: int = 0
    owner: str = ""  # host:pid of the runner driving the run
    heartbeat_at: datetime | None = None
    cancel_requested: bool = False


@dataclass(frozen=True)
class TaskRunInfo:
    """A task of a run: state (``TaskState`` values), attempts, the values it set, its last error and logs."""

    run_id: str
    task_key: str
    state: str
    attempts: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    log_paths: tuple[str, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    cached_from: str | None = None  # the run whose cached result this task reused
    io: dict[str, Any] = field(default_factory=dict)  # {"read"|"written": {table: version}, "mlflow_runs": [ids]}


@dataclass(frozen=True)
class TaskLog:
    """A piece of the stdout or stderr of a task's latest attempt: ``text`` is bytes ``offset`` to
    ``next_offset`` of the log file, which held ``size`` bytes when it was read (cut where a UTF-8
    character ends). ``complete``: the task had finished (state ``task_state``) before the file was
    read, so the log will not grow. Following a log is reading from ``next_offset`` until it is
    complete and ``next_offset == size``; a retry starts a new file (``attempt`` changes)."""

    run_id: str
    task_key: str
    stream: str  # stdout or stderr
    attempt: int
    offset: int
    next_offset: int
    size: int
    text: str
    task_state: str
    complete: bool
