"""Versions of registered Python functions (on-demand features)."""

from __future__ import annotations

import builtins

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mlharbor.core.clock import as_utc
from mlharbor.core.entities import FunctionInfo
from mlharbor.core.names import check_identifier, parse_name
from mlharbor.meta.models import FunctionRow
from mlharbor.meta.repositories._common import add_unique


def _to_info(row: FunctionRow) -> FunctionInfo:
    return FunctionInfo(
        name=row.name, version=row.version, entry_point=row.entry_point, source=row.source, sha256=row.sha256,
        parameters=tuple(row.parameters), return_type=row.return_type, description=row.description,
        created_by=row.created_by, created_at=as_utc(row.created_at),
    )


class FunctionRepository:
    """Function versions keyed by full name (``catalog.schema.fn``, lower case) and version (1, 2, ...)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, info: FunctionInfo) -> FunctionInfo:
        """Store ``info`` as the next version of its name (the version in ``info`` is ignored).

        Two concurrent registrations of one name cannot take the same version: the unique
        constraint on (name, version) makes the loser's transaction fail with AlreadyExists.
        """
        name = parse_name(info.name, "function name")
        current = self._session.scalar(select(func.max(FunctionRow.version)).where(FunctionRow.name == str(name)))
        row = FunctionRow(
            name=str(name), catalog_name=name.catalog, schema_name=name.schema, version=(current or 0) + 1,
            entry_point=info.entry_point, source=info.source, sha256=info.sha256, parameters=list(info.parameters),
            return_type=info.return_type, description=info.description, created_by=info.created_by,
            created_at=info.created_at,
        )
        add_unique(self._session, row, f"function {name} version {row.version}")
        return _to_info(row)

    def find(self, name: str, version: int | None = None) -> FunctionInfo | None:
        """The given version of ``name`` (default: the latest), or None."""
        stmt = select(FunctionRow).where(FunctionRow.name == str(parse_name(name, "function name")))
        stmt = stmt.where(FunctionRow.version == version) if version is not None else stmt
        row = self._session.scalars(stmt.order_by(FunctionRow.version.desc()).limit(1)).one_or_none()
        return None if row is None else _to_info(row)

    def list(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[FunctionInfo]:
        """The latest version of every function, sorted by name, optionally in one catalog and schema."""
        latest = select(FunctionRow.name, func.max(FunctionRow.version).label("v")).group_by(FunctionRow.name)
        if catalog is not None:
            latest = latest.where(FunctionRow.catalog_name == check_identifier(catalog, "catalog name"))
        if schema is not None:
            latest = latest.where(FunctionRow.schema_name == check_identifier(schema, "schema name"))
        sub = latest.subquery()
        stmt = select(FunctionRow).join(sub, (FunctionRow.name == sub.c.name) & (FunctionRow.version == sub.c.v))
        return [_to_info(r) for r in self._session.scalars(stmt.order_by(FunctionRow.name))]

    def versions(self, name: str) -> builtins.list[FunctionInfo]:
        """Every version of ``name``, oldest first."""
        stmt = select(FunctionRow).where(FunctionRow.name == str(parse_name(name, "function name")))
        return [_to_info(r) for r in self._session.scalars(stmt.order_by(FunctionRow.version))]

    def remove(self, name: str) -> int:
        """Delete every version of ``name``; returns how many were deleted."""
        stmt = delete(FunctionRow).where(FunctionRow.name == str(parse_name(name, "function name")))
        return int(self._session.execute(stmt).rowcount)  # type: ignore[attr-defined]
