"""Jobs: deployed definitions, runs, task runs and trigger firings.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

(MLflow has tables named ``jobs`` and ``scheduler_leases``: these are ``mlh_*``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "mlh_jobs",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("definition", _json(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_mlh_jobs"),
    )
    op.create_table(
        "mlh_job_runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("job_name", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("definition", _json(), nullable=False),
        sa.Column("parameters", _json(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("ended_at", nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("repairs", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        _ts("heartbeat_at", nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_job_runs"),
    )
    op.create_index("ix_mlh_job_runs_job_name_created_at", "mlh_job_runs", ["job_name", "created_at"])
    op.create_table(
        "mlh_task_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("task_key", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("task_values", _json(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("log_paths", _json(), nullable=False),
        _ts("started_at", nullable=True),
        _ts("ended_at", nullable=True),
        sa.Column("cached_from", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_task_runs"),
        sa.ForeignKeyConstraint(["run_id"], ["mlh_job_runs.id"], name="fk_mlh_task_runs_run_id_mlh_job_runs"),
        sa.UniqueConstraint("run_id", "task_key", name="uq_mlh_task_runs_run_id_task_key"),
    )


    op.create_table(
        "mlh_trigger_fires",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("job_name", sa.String(), nullable=False),
        sa.Column("fire_key", sa.String(), nullable=False),
        _ts("fire_time"),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("claimed_by", sa.String(), nullable=False),
        _ts("claimed_at"),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_trigger_fires"),
        sa.UniqueConstraint("job_name", "fire_key", name="uq_mlh_trigger_fires_job_name_fire_key"),
    )
    op.create_index("ix_mlh_trigger_fires_job_name_fire_time", "mlh_trigger_fires", ["job_name", "fire_time"])
    op.create_table(
        "mlh_task_cache",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("job_name", sa.String(), nullable=False),
        sa.Column("task_key", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("task_values", _json(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("key", name="pk_mlh_task_cache"),
    )


def downgrade() -> None:
    op.drop_table("mlh_task_cache")
    op.drop_index("ix_mlh_trigger_fires_job_name_fire_time", table_name="mlh_trigger_fires")
    op.drop_table("mlh_trigger_fires")
    op.drop_table("mlh_task_runs")
    op.drop_index("ix_mlh_job_runs_job_name_created_at", table_name="mlh_job_runs")
    op.drop_table("mlh_job_runs")
    op.drop_table("mlh_jobs")
