"""Initial metadata schema: tables, principals, grants, tokens, audit log, lineage, key-values.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand to run unchanged on SQLite and PostgreSQL. The audit log is append-only in the
database itself: triggers reject UPDATE and DELETE (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_MESSAGE = "audit_log is append-only"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create_catalog_and_auth_tables() -> None:
    op.create_table(
        "catalog_tables",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("catalog_name", sa.String(), nullable=False),
        sa.Column("schema_name", sa.String(), nullable=False),
        sa.Column("table_name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("properties", _json(), nullable=False),
        sa.Column("partition_by", _json(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_catalog_tables"),
    )
    op.create_index(
        "ix_catalog_tables_catalog_name_schema_name", "catalog_tables", ["catalog_name", "schema_name"]
    )
    op.create_table(
        "principals",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_principals"),
    )
    op.create_table(
        "role_grants",
        sa.Column("principal", sa.String(), nullable=False),
        sa.Column("environment", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("granted_by", sa.String(), nullable=False),
        sa.Column("granted_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal"], ["principals.name"], name="fk_role_grants_principal_principals"
        ),
        sa.PrimaryKeyConstraint("principal", "environment", name="pk_role_grants"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("principal", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=True),
        sa.Column("revoked_at", _timestamp(), nullable=True),
        sa.Column("last_used_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal"], ["principals.name"], name="fk_api_tokens_principal_principals"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
    )
    op.create_index("ix_api_tokens_token_hash", "api_tokens", ["token_hash"], unique=True)
    op.create_index("ix_api_tokens_principal", "api_tokens", ["principal"])


def _create_audit_lineage_kv_tables() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("time", _timestamp(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("resource", sa.String(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    for column in ("time", "actor", "action", "resource"):
        op.create_index(f"ix_audit_log_{column}", "audit_log", [column])
    op.create_table(
        "lineage_edges",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("source_kind", sa.String(), nullable=False),
        sa.Column("source_name", sa.String(), nullable=False),
        sa.Column("source_version", sa.String(), nullable=False),
        sa.Column("target_kind", sa.String(), nullable=False),
        sa.Column("target_name", sa.String(), nullable=False),
        sa.Column("target_version", sa.String(), nullable=False),
        sa.Column("relation", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
        sa.UniqueConstraint(
            "source_kind",
            "source_name",
            "source_version",
            "target_kind",
            "target_name",
            "target_version",
            "relation",
            name="uq_lineage_edges_edge",
        ),
    )
    op.create_index("ix_lineage_edges_source_name", "lineage_edges", ["source_name"])
    op.create_index("ix_lineage_edges_target_name", "lineage_edges", ["target_name"])
    op.create_table(
        "key_values",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_key_values"),
    )


def _create_audit_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END; $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
        )


def upgrade() -> None:
    _create_catalog_and_auth_tables()
    _create_audit_lineage_kv_tables()
    _create_audit_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for table in ("key_values", "lineage_edges", "audit_log", "api_tokens", "role_grants"):
        op.drop_table(table)
    op.drop_table("principals")
    op.drop_table("catalog_tables")
