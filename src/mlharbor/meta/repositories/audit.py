"""The append-only audit log."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlharbor.core.clock import as_utc
from mlharbor.core.entities import AuditEntry, Decision
from mlharbor.errors import InvalidArgument
from mlharbor.meta.models import AuditRow
from mlharbor.meta.repositories._common import enum_value

MAX_PAGE = 10_000


def _to_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        time=as_utc(row.time),
        actor=row.actor,
        action=row.action,
        resource=row.resource,
        decision=Decision(row.decision),
        request_id=row.request_id,
        details=dict(row.details),
    )


class AuditRepository:
    """Who did what to which resource, and whether it was allowed.

    Entries can only be appended: there are no update or delete methods, and triggers in the
    database reject UPDATE and DELETE on the table. An entry is written in the caller's
    transaction, so it is rolled back with it; record denials in a transaction of their own.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def append(
        self,
        *,
        time: datetime,
        actor: str,
        action: str,
        resource: str,
        decision: Decision | str,
        request_id: str,
        details: dict[str, Any],
    ) -> AuditEntry:
        """Append one entry and return it with its id.

        Ids increase with each append, so they order entries by insertion; ``details`` must be
        JSON-serialisable.
        """
        row = AuditRow(
            time=time,
            actor=actor,
            action=action,
            resource=resource,
            decision=enum_value(Decision, decision).value,
            request_id=request_id,
            details=dict(details),
        )
        self._session.add(row)
        self._session.flush()
        return _to_entry(row)

    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        decision: Decision | str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """Entries matching every given filter, newest first (by id), at most ``limit``.

        ``since`` keeps entries with ``time >= since``. Page backwards by passing the smallest id
        of the previous page as ``before_id``. ``limit`` must be between 1 and 10,000.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        stmt = select(AuditRow)
        if actor is not None:
            stmt = stmt.where(AuditRow.actor == actor)
        if action is not None:
            stmt = stmt.where(AuditRow.action == action)
        if resource is not None:
            stmt = stmt.where(AuditRow.resource == resource)
        if decision is not None:
            stmt = stmt.where(AuditRow.decision == enum_value(Decision, decision).value)
        if since is not None:
            stmt = stmt.where(AuditRow.time >= since)
        if before_id is not None:
            stmt = stmt.where(AuditRow.id < before_id)
        rows = self._session.scalars(stmt.order_by(AuditRow.id.desc()).limit(limit))
        return [_to_entry(row) for row in rows]
