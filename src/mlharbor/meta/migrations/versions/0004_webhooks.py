"""Webhooks, per-subscriber event deliveries (the delivery log) and outbox cursors.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "mlh_webhooks",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", _json(), nullable=False),
        sa.Column("model_name", sa.String(), nullable=True),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_webhooks"),
    )
    op.create_table(
        "mlh_event_deliveries",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mlh_event_deliveries"),
        sa.UniqueConstraint("subscriber", "event_id", name="uq_mlh_event_deliveries_subscriber_event_id"),
    )
    op.create_index("ix_mlh_event_deliveries_status_next_attempt_at", "mlh_event_deliveries",
                    ["status", "next_attempt_at"])
    op.create_table(
        "mlh_outbox_cursors",
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", name="pk_mlh_outbox_cursors"),
    )


def downgrade() -> None:
    op.drop_table("mlh_outbox_cursors")
    op.drop_index("ix_mlh_event_deliveries_status_next_attempt_at", table_name="mlh_event_deliveries")
    op.drop_table("mlh_event_deliveries")
    op.drop_table("mlh_webhooks")
