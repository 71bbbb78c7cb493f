"""Model registry: registered models, versions with stages, stage history, transition requests,
comments, and the outbox of events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Two partial unique indexes carry the registry's invariants in the database itself, on SQLite and
PostgreSQL alike: at most one Production version per model, and at most one pending request per
version and target stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False)


def _ts(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    _models_and_versions()
    _history_requests_comments()
    _outbox()


def _models_and_versions() -> None:
    op.create_table(
        "mlh_registered_models",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("catalog_name", sa.String(), nullable=False),
        sa.Column("schema_name", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("checks", _json(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_mlh_registered_models"),
    )
    op.create_index("ix_mlh_registered_models_catalog_name_schema_name", "mlh_registered_models",
                    ["catalog_name", "schema_name"])
    op.create_table(
        "mlh_model_versions",
        _id(),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("manifest", _json(), nullable=False),
        sa.Column("feature_spec", _json(), nullable=True),
        sa.Column("flavor", sa.String(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("evaluation", _json(), nullable=True),
        sa.Column("checks", _json(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_model_versions"),
        sa.ForeignKeyConstraint(["name"], ["mlh_registered_models.name"],
                                name="fk_mlh_model_versions_name_mlh_registered_models"),
        sa.UniqueConstraint("name", "version", name="uq_mlh_model_versions_name_version"),
    )
    one_production = sa.text("stage = 'Production'")
    op.create_index("ix_mlh_model_versions_one_production", "mlh_model_versions", ["name"], unique=True,
                    sqlite_where=one_production, postgresql_where=one_production)


def _history_requests_comments() -> None:
    op.create_table(
        "mlh_model_stage_history",
        _id(),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(), nullable=False),
        sa.Column("to_stage", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        _ts("time"),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_model_stage_history"),
    )
    op.create_index("ix_mlh_model_stage_history_name_version", "mlh_model_stage_history", ["name", "version"])
    op.create_table(
        "mlh_transition_requests",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("to_stage", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        _ts("requested_at"),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        _ts("decided_at", nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_transition_requests"),
    )
    op.create_index("ix_mlh_transition_requests_name_version", "mlh_transition_requests", ["name", "version"])
    pending = sa.text("status = 'pending'")
    op.create_index("ix_mlh_transition_requests_one_pending", "mlh_transition_requests",
                    ["name", "version", "to_stage"], unique=True, sqlite_where=pending, postgresql_where=pending)
    op.create_table(
        "mlh_model_comments",
        _id(),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        _ts("time"),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_model_comments"),
    )
    op.create_index("ix_mlh_model_comments_name_version", "mlh_model_comments", ["name", "version"])


def _outbox() -> None:
    op.create_table(
        "mlh_outbox_events",
        _id(),
        _ts("time"),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("resource", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_outbox_events"),
    )
    op.create_index("ix_mlh_outbox_events_kind", "mlh_outbox_events", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_mlh_outbox_events_kind", table_name="mlh_outbox_events")
    op.drop_table("mlh_outbox_events")
    op.drop_index("ix_mlh_model_comments_name_version", table_name="mlh_model_comments")
    op.drop_table("mlh_model_comments")
    op.drop_index("ix_mlh_transition_requests_one_pending", table_name="mlh_transition_requests")
    op.drop_index("ix_mlh_transition_requests_name_version", table_name="mlh_transition_requests")
    op.drop_table("mlh_transition_requests")
    op.drop_index("ix_mlh_model_stage_history_name_version", table_name="mlh_model_stage_history")
    op.drop_table("mlh_model_stage_history")
    op.drop_index("ix_mlh_model_versions_one_production", table_name="mlh_model_versions")
    op.drop_table("mlh_model_versions")
    op.drop_index("ix_mlh_registered_models_catalog_name_schema_name", table_name="mlh_registered_models")
    op.drop_table("mlh_registered_models")
