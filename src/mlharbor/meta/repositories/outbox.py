"""The outbox: events written in the transaction of the change they report."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlharbor.core.clock import as_utc, utcnow
from mlharbor.core.entities import OutboxEvent
from mlharbor.meta.models import OutboxEventRow


def _event(row: OutboxEventRow) -> OutboxEvent:
    return OutboxEvent(row.id, as_utc(row.time), row.kind, row.resource, row.actor, dict(row.payload))


class OutboxRepository:
    """Append events; read them in id order for delivery."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def append(self, kind: str, resource: str, actor: str, payload: dict[str, Any]) -> OutboxEvent:
        """Add an event; it becomes visible to readers when the transaction commits."""
        row = OutboxEventRow(time=utcnow(), kind=kind, resource=resource, actor=actor, payload=payload)
        self._session.add(row)
        self._session.flush()
        return _event(row)

    def after(self, event_id: int = 0, limit: int = 100, kinds: builtins.list[str] | None = None,
              resource_prefix: str | None = None, newest: bool = False) -> builtins.list[OutboxEvent]:
        """Events with an id above ``event_id``, oldest first (newest first with ``newest``)."""
        stmt = select(OutboxEventRow).where(OutboxEventRow.id > event_id)
        if kinds:
            stmt = stmt.where(OutboxEventRow.kind.in_(kinds))
        if resource_prefix:
            stmt = stmt.where(OutboxEventRow.resource.startswith(resource_prefix, autoescape=True))
        order = OutboxEventRow.id.desc() if newest else OutboxEventRow.id
        return [_event(r) for r in self._session.scalars(stmt.order_by(order).limit(limit))]

    def get(self, event_id: int) -> OutboxEvent | None:
        row = self._session.get(OutboxEventRow, event_id)
        return None if row is None else _event(row)
