"""Task runs record what they read and wrote: table versions and MLflow runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # {"read": {table: version}, "written": {table: version}, "mlflow_runs": [run id, ...]}; NULL before 0006
    op.add_column("mlh_task_runs", sa.Column("io", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True))


def downgrade() -> None:
    op.drop_column("mlh_task_runs", "io")
