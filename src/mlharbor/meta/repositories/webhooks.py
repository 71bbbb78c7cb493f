"""Webhooks, per-subscriber deliveries of outbox events, and the subscribers' outbox cursors."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mlharbor.core.clock import as_utc
from mlharbor.core.entities import EventDelivery, Webhook
from mlharbor.core.ids import new_id
from mlharbor.errors import NotFound
from mlharbor.meta.models import EventDeliveryRow, OutboxCursorRow, WebhookRow
from mlharbor.meta.repositories._common import conflict_insert, execute_core

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(row.id, row.name, row.url, tuple(row.events), row.model_name, row.active, row.created_by,
                   as_utc(row.created_at))


def _delivery(row: EventDeliveryRow) -> EventDelivery:
    return EventDelivery(row.id, row.subscriber, row.event_id, row.status, row.attempts, as_utc(row.next_attempt_at),
                         row.last_error, row.last_status_code, as_utc(row.created_at),
                         None if row.delivered_at is None else as_utc(row.delivered_at))


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # --- webhooks ------------------------------------------------------------------------------

    def add(self, hook: Webhook, secret_encrypted: str) -> Webhook:
        row = WebhookRow(id=hook.id, name=hook.name, url=hook.url, events=list(hook.events),
                         model_name=hook.model_name, secret_encrypted=secret_encrypted, active=hook.active,
                         created_by=hook.created_by, created_at=hook.created_at)
        self._session.add(row)
        self._session.flush()
        return _webhook(row)

    def _row(self, hook_id: str) -> WebhookRow:
        row = self._session.get(WebhookRow, hook_id)
        if row is None:
            raise NotFound(f"webhook {hook_id} does not exist")
        return row

    def get(self, hook_id: str) -> Webhook:
        return _webhook(self._row(hook_id))

    def secret(self, hook_id: str) -> str:
        """The encrypted secret (decrypted by the caller, who holds the key)."""
        return self._row(hook_id).secret_encrypted

    def list(self) -> builtins.list[Webhook]:
        return [_webhook(r) for r in self._session.scalars(select(WebhookRow).order_by(WebhookRow.created_at))]

    def set_active(self, hook_id: str, active: bool) -> Webhook:
        row = self._row(hook_id)
        row.active = active
        self._session.flush()
        return _webhook(row)

    def remove(self, hook_id: str) -> None:
        self._session.delete(self._row(hook_id))
        self._session.flush()

    # --- cursors and deliveries ----------------------------------------------------------------

    def cursor(self, subscriber: str) -> int:
        row = self._session.get(OutboxCursorRow, subscriber)
        return 0 if row is None else int(row.last_event_id)

    def set_cursor(self, subscriber: str, event_id: int) -> None:
        stmt = conflict_insert(self._session, OutboxCursorRow).values(subscriber=subscriber, last_event_id=event_id)
        execute_core(self._session, stmt.on_conflict_do_update(index_elements=["subscriber"],
                                                               set_={"last_event_id": event_id}))

    def add_delivery(self, subscriber: str, event_id: int, now: datetime) -> bool:
        """Create the delivery of ``event_id`` to ``subscriber`` unless it exists; True if created."""
        stmt = conflict_insert(self._session, EventDeliveryRow).values(
            id=new_id(), subscriber=subscriber, event_id=event_id, status=PENDING, attempts=0, next_attempt_at=now,
            last_error="", last_status_code=None, created_at=now, delivered_at=None)
        result = execute_core(self._session, stmt.on_conflict_do_nothing(index_elements=["subscriber", "event_id"]))
        return bool(result.rowcount)

    def due(self, now: datetime, limit: int, subscriber_prefix: str = "") -> builtins.list[EventDelivery]:
        """Pending deliveries whose next attempt is due, oldest event first. On PostgreSQL the rows are
        locked (``SKIP LOCKED``) so that two dispatchers never send the same delivery at once."""
        stmt = (select(EventDeliveryRow)
                .where(EventDeliveryRow.status == PENDING, EventDeliveryRow.next_attempt_at <= now)
                .order_by(EventDeliveryRow.event_id).limit(limit))
        if subscriber_prefix:
            stmt = stmt.where(EventDeliveryRow.subscriber.startswith(subscriber_prefix, autoescape=True))
        if self._session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return [_delivery(r) for r in self._session.scalars(stmt)]

    def finish(self, delivery_id: str, *, status: str, attempts: int, next_attempt_at: datetime, error: str,
               status_code: int | None, delivered_at: datetime | None) -> None:
        self._session.execute(update(EventDeliveryRow).where(EventDeliveryRow.id == delivery_id).values(
            status=status, attempts=attempts, next_attempt_at=next_attempt_at, last_error=error[:2000],
            last_status_code=status_code, delivered_at=delivered_at))

    def deliveries(self, subscriber: str | None = None, status: str | None = None,
                   limit: int = 100) -> builtins.list[EventDelivery]:
        """The delivery log, newest event first."""
        stmt = select(EventDeliveryRow)
        if subscriber is not None:
            stmt = stmt.where(EventDeliveryRow.subscriber == subscriber)
        if status is not None:
            stmt = stmt.where(EventDeliveryRow.status == status)
        return [_delivery(r) for r in self._session.scalars(stmt.order_by(EventDeliveryRow.event_id.desc())
                                                            .limit(limit))]
