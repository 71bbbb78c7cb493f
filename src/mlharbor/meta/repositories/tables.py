"""Catalog entries of lake tables and feature tables."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlharbor.core.clock import as_utc, utcnow
from mlharbor.core.entities import TableInfo
from mlharbor.core.names import check_identifier, parse_name
from mlharbor.errors import NotFound
from mlharbor.meta.models import TableRow
from mlharbor.meta.repositories._common import add_unique


def _to_info(row: TableRow) -> TableInfo:
    return TableInfo(
        name=row.name,
        location=row.location,
        owner=row.owner,
        comment=row.comment,
        tags=dict(row.tags),
        partition_by=tuple(row.partition_by),
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        kind=row.kind,
        properties=dict(row.properties),
    )


class TableRepository:
    """Catalog entries keyed by their full ``catalog.schema.table`` name.

    Names are validated and normalised (lower case) with :func:`mlharbor.core.names.parse_name`,
    so lookups are case-insensitive and an invalid name raises ``InvalidArgument``.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, info: TableInfo) -> TableInfo:
        """Register ``info`` and return it as stored (normalised name).

        Raises AlreadyExists if a table of that name is registered, whatever its kind.
        """
        name = parse_name(info.name)
        row = TableRow(
            name=str(name),
            catalog_name=name.catalog,
            schema_name=name.schema,
            table_name=name.name,
            kind=info.kind,
            location=info.location,
            owner=info.owner,
            comment=info.comment,
            tags=dict(info.tags),
            properties=dict(info.properties),
            partition_by=list(info.partition_by),
            created_by=info.created_by,
            created_at=info.created_at,
            updated_at=info.updated_at,
        )
        add_unique(self._session, row, f"table {name}")
        return _to_info(row)

    def get(self, name: str) -> TableInfo:
        """Return the table named ``name``; raise NotFound if it is not registered."""
        return _to_info(self._row(name))

    def find(self, name: str) -> TableInfo | None:
        """Return the table named ``name``, or None if it is not registered."""
        row = self._session.get(TableRow, str(parse_name(name)))
        return None if row is None else _to_info(row)

    def list(
        self, catalog: str | None = None, schema: str | None = None, kind: str | None = None
    ) -> builtins.list[TableInfo]:
        """Tables matching every given filter (catalog, schema, kind), sorted by full name."""
        stmt = select(TableRow)
        if catalog is not None:
            stmt = stmt.where(TableRow.catalog_name == check_identifier(catalog, "catalog"))
        if schema is not None:
            stmt = stmt.where(TableRow.schema_name == check_identifier(schema, "schema"))
        if kind is not None:
            stmt = stmt.where(TableRow.kind == kind)
        rows = self._session.scalars(stmt.order_by(TableRow.name))
        return [_to_info(row) for row in rows]

    def update(
        self,
        name: str,
        *,
        owner: str | None = None,
        comment: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> TableInfo:
        """Change only the given fields and set ``updated_at`` to now; return the new entry.

        ``tags`` and ``properties`` replace the stored mappings wholesale (merge before calling to
        add keys). Raises NotFound if the table is not registered.
        """
        row = self._row(name)
        if owner is not None:
            row.owner = owner
        if comment is not None:
            row.comment = comment
        if tags is not None:
            row.tags = dict(tags)
        if properties is not None:
            row.properties = dict(properties)
        row.updated_at = utcnow()
        self._session.flush()
        return _to_info(row)

    def delete(self, name: str) -> None:
        """Remove the catalog entry (never the data); raise NotFound if it is not registered."""
        self._session.delete(self._row(name))
        self._session.flush()

    def _row(self, name: str) -> TableRow:
        full = str(parse_name(name))
        row = self._session.get(TableRow, full)
        if row is None:
            raise NotFound(f"table {full} is not registered")
        return row
