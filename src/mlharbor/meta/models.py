"""ORM rows of the metadata store (SQLAlchemy 2 typed declarative).

Rows never leave :mod:`mlharbor.meta`: the repositories convert them to the records of
:mod:`mlharbor.core.entities`. The schema is created by the hand-written Alembic migrations in
``migrations/versions``; a contract test checks that these models and the migrated schema agree
on SQLite and PostgreSQL, so change both together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mlharbor.core.clock import as_utc

# Deterministic constraint names on both dialects, so later migrations can refer to them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

# Alembic's version table, named for us so that MLflow or Optuna (both Alembic users) can share
# the same database without clashing on the default ``alembic_version``.
VERSION_TABLE = "mlharbor_alembic_version"

# Tables added from migration 0003 on are named ``mlh_*``: a team may keep MLflow's tables
# (``registered_models``, ``model_versions``, ``webhooks``, ``jobs``, ``secrets``, ...) in the same
# database, and PostgreSQL index names are shared by the whole schema.

# The empty string stands for "no version" in lineage rows: NULLs are distinct in unique
# constraints on both dialects, which would defeat edge deduplication.
NO_VERSION = ""


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that is always stored and returned in UTC.

    PostgreSQL stores ``timestamptz``; SQLite stores text without an offset, so values are
    converted to UTC before binding (naive input is taken as UTC) and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def json_type() -> JSON:
    """JSON documents: ``jsonb`` on PostgreSQL, JSON text on SQLite."""
    return JSON().with_variant(JSONB(), "postgresql")  # type: ignore[return-value]


def big_id_type() -> BigInteger:
    """64-bit autoincrement ids; SQLite only autoincrements an ``INTEGER PRIMARY KEY``."""
    return BigInteger().with_variant(Integer(), "sqlite")  # type: ignore[return-value]


class Base(DeclarativeBase):
    """Declarative base of every metadata row."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TableRow(Base):
    """A catalog entry of a lake table (or feature table)."""

    __tablename__ = "catalog_tables"
    __table_args__ = (Index("ix_catalog_tables_catalog_name_schema_name", "catalog_name", "schema_name"),)

    name: Mapped[str] = mapped_column(String, primary_key=True)
    catalog_name: Mapped[str] = mapped_column(String)
    schema_name: Mapped[str] = mapped_column(String)
    table_name: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    location: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String)
    comment: Mapped[str] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(json_type())
    properties: Mapped[dict[str, Any]] = mapped_column(json_type())
    partition_by: Mapped[list[str]] = mapped_column(json_type())
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PrincipalRow(Base):
    """A user or service principal."""

    __tablename__ = "principals"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    display_name: Mapped[str] = mapped_column(String)
    active: Mapped[bool] = mapped_column()
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class GrantRow(Base):
    """One role of one principal in one environment."""

    __tablename__ = "role_grants"

    principal: Mapped[str] = mapped_column(String, ForeignKey("principals.name"), primary_key=True)
    environment: Mapped[str] = mapped_column(String, primary_key=True)
    role: Mapped[str] = mapped_column(String)
    granted_by: Mapped[str] = mapped_column(String)
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TokenRow(Base):
    """An API token record; only the SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        Index("ix_api_tokens_token_hash", "token_hash", unique=True),
        Index("ix_api_tokens_principal", "principal"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    principal: Mapped[str] = mapped_column(String, ForeignKey("principals.name"))
    name: Mapped[str] = mapped_column(String)
    token_hash: Mapped[str] = mapped_column(String)
    prefix: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditRow(Base):
    """One audit log entry. The database rejects UPDATE and DELETE on this table (triggers)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_time", "time"),
        Index("ix_audit_log_actor", "actor"),
        Index("ix_audit_log_action", "action"),
        Index("ix_audit_log_resource", "resource"),
    )

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    resource: Mapped[str] = mapped_column(String)
    decision: Mapped[str] = mapped_column(String)
    request_id: Mapped[str] = mapped_column(String)
    details: Mapped[dict[str, Any]] = mapped_column(json_type())


class LineageEdgeRow(Base):
    """A directed lineage edge ``source -> target``; versions use ``NO_VERSION`` for none."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint(
            "source_kind",
            "source_name",
            "source_version",
            "target_kind",
            "target_name",
            "target_version",
            "relation",
            name="uq_lineage_edges_edge",
        ),
        Index("ix_lineage_edges_source_name", "source_name"),
        Index("ix_lineage_edges_target_name", "target_name"),
    )

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    source_kind: Mapped[str] = mapped_column(String)
    source_name: Mapped[str] = mapped_column(String)
    source_version: Mapped[str] = mapped_column(String)
    target_kind: Mapped[str] = mapped_column(String)
    target_name: Mapped[str] = mapped_column(String)
    target_version: Mapped[str] = mapped_column(String)
    relation: Mapped[str] = mapped_column(String)
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    details: Mapped[dict[str, Any]] = mapped_column(json_type())


class KeyValueRow(Base):
    """A small string setting or marker (schema flags, scheduler cursors, ...)."""

    __tablename__ = "key_values"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FunctionRow(Base):
    """A version of a registered Python function (on-demand feature)."""

    __tablename__ = "catalog_functions"
    __table_args__ = (UniqueConstraint("name", "version"),
                      Index("ix_catalog_functions_catalog_name_schema_name", "catalog_name", "schema_name"))

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String)
    catalog_name: Mapped[str] = mapped_column(String)
    schema_name: Mapped[str] = mapped_column(String)
    version: Mapped[int] = mapped_column(Integer)
    entry_point: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String)
    parameters: Mapped[list[str]] = mapped_column(json_type())
    return_type: Mapped[str] = mapped_column(String)
    description: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RegisteredModelRow(Base):
    """A registered model (``catalog.schema.model``) and its compliance check configuration."""

    __tablename__ = "mlh_registered_models"
    __table_args__ = (Index("ix_mlh_registered_models_catalog_name_schema_name", "catalog_name", "schema_name"),)

    name: Mapped[str] = mapped_column(String, primary_key=True)
    catalog_name: Mapped[str] = mapped_column(String)
    schema_name: Mapped[str] = mapped_column(String)
    owner: Mapped[str] = mapped_column(String)
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(json_type())
    checks: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


# At most one Production version per model, enforced by the database itself (a partial unique
# index, supported by SQLite and PostgreSQL): two concurrent promotions cannot both commit.
ONE_PRODUCTION = "stage = 'Production'"


class ModelVersionRow(Base):
    """A model version's registry state beside MLflow's record of it."""

    __tablename__ = "mlh_model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        Index("ix_mlh_model_versions_one_production", "name", unique=True,
              sqlite_where=text(ONE_PRODUCTION), postgresql_where=text(ONE_PRODUCTION)),
    )

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String, ForeignKey("mlh_registered_models.name"))
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String)
    description: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict[str, str]] = mapped_column(json_type())
    feature_spec: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    flavor: Mapped[str] = mapped_column(String)
    tags: Mapped[dict[str, str]] = mapped_column(json_type())
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    checks: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class StageChangeRow(Base):
    """One entry of a model version's stage history (append-only)."""

    __tablename__ = "mlh_model_stage_history"
    __table_args__ = (Index("ix_mlh_model_stage_history_name_version", "name", "version"),)

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String)
    version: Mapped[int] = mapped_column(Integer)
    from_stage: Mapped[str] = mapped_column(String)
    to_stage: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    comment: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String)


PENDING = "status = 'pending'"


class TransitionRequestRow(Base):
    """A stage transition request; one pending request per version and target stage."""

    __tablename__ = "mlh_transition_requests"
    __table_args__ = (
        Index("ix_mlh_transition_requests_name_version", "name", "version"),
        Index("ix_mlh_transition_requests_one_pending", "name", "version", "to_stage", unique=True,
              sqlite_where=text(PENDING), postgresql_where=text(PENDING)),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    version: Mapped[int] = mapped_column(Integer)
    to_stage: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    requested_by: Mapped[str] = mapped_column(String)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    comment: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_comment: Mapped[str] = mapped_column(Text)


class ModelCommentRow(Base):
    """A comment on a model version."""

    __tablename__ = "mlh_model_comments"
    __table_args__ = (Index("ix_mlh_model_comments_name_version", "name", "version"),)

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String)
    version: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String)
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    text: Mapped[str] = mapped_column(Text)


class OutboxEventRow(Base):
    """An event written in the same transaction as the change it reports (the outbox)."""

    __tablename__ = "mlh_outbox_events"
    __table_args__ = (Index("ix_mlh_outbox_events_kind", "kind"),)

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String)
    resource: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    payload: Mapped[dict[str, Any]] = mapped_column(json_type())


class WebhookRow(Base):
    """An HTTP endpoint that receives outbox events; its signing secret is stored encrypted."""

    __tablename__ = "mlh_webhooks"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(json_type())
    model_name: Mapped[str | None] = mapped_column(String)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column()
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EventDeliveryRow(Base):
    """One event for one subscriber (a webhook or an internal consumer): its delivery state and log."""

    __tablename__ = "mlh_event_deliveries"
    __table_args__ = (
        UniqueConstraint("subscriber", "event_id"),
        Index("ix_mlh_event_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    subscriber: Mapped[str] = mapped_column(String)
    event_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class OutboxCursorRow(Base):
    """How far a subscriber has fanned the outbox out into deliveries."""

    __tablename__ = "mlh_outbox_cursors"

    subscriber: Mapped[str] = mapped_column(String, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)


class JobRow(Base):
    """A deployed job definition (the latest; runs keep the definition they ran)."""

    __tablename__ = "mlh_jobs"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class JobRunRow(Base):
    """One run of a job, with the definition and parameters it ran with."""

    __tablename__ = "mlh_job_runs"
    __table_args__ = (Index("ix_mlh_job_runs_job_name_created_at", "job_name", "created_at"),)

    id: Mapped[str] = mapped_column(String, primary_key=True)
    job_name: Mapped[str] = mapped_column(String)
    state: Mapped[str] = mapped_column(String)
    definition: Mapped[dict[str, Any]] = mapped_column(json_type())
    parameters: Mapped[dict[str, Any]] = mapped_column(json_type())
    trigger: Mapped[str] = mapped_column(String)
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    message: Mapped[str] = mapped_column(Text)
    repairs: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String)  # host:pid of the runner driving it
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cancel_requested: Mapped[bool] = mapped_column()


class TaskRunRow(Base):
    """The state of one task in one run, and its latest attempt."""

    __tablename__ = "mlh_task_runs"
    __table_args__ = (UniqueConstraint("run_id", "task_key"),)

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String, ForeignKey("mlh_job_runs.id"))
    task_key: Mapped[str] = mapped_column(String)
    state: Mapped[str] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer)
    task_values: Mapped[dict[str, Any]] = mapped_column(json_type())
    error: Mapped[str] = mapped_column(Text)
    log_paths: Mapped[list[str]] = mapped_column(json_type())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cached_from: Mapped[str | None] = mapped_column(String)  # the run whose result was reused
    io: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)  # tables read/written, MLflow runs


class TriggerFireRow(Base):
    """One firing of a job's trigger (a schedule tick, later an event): claimed once, across schedulers
    and restarts, by the unique (job, fire key); ``run_id`` is set when the run has started."""

    __tablename__ = "mlh_trigger_fires"
    __table_args__ = (UniqueConstraint("job_name", "fire_key"),
                      Index("ix_mlh_trigger_fires_job_name_fire_time", "job_name", "fire_time"))

    id: Mapped[int] = mapped_column(big_id_type(), primary_key=True, autoincrement=True)
    job_name: Mapped[str] = mapped_column(String)
    fire_key: Mapped[str] = mapped_column(String)
    fire_time: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String)
    claimed_by: Mapped[str] = mapped_column(String)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    run_id: Mapped[str | None] = mapped_column(String)


class TaskCacheRow(Base):
    """A cached task result, keyed by code, parameters and input table versions."""

    __tablename__ = "mlh_task_cache"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    job_name: Mapped[str] = mapped_column(String)
    task_key: Mapped[str] = mapped_column(String)
    run_id: Mapped[str] = mapped_column(String)
    task_values: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
