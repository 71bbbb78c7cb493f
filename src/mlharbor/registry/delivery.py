"""Delivering outbox events at least once: to webhooks (signed HTTP POST) and to internal subscribers.

Each pass does two things:

1. **fan-out** — for every subscriber, events after its cursor that it wants become delivery rows
   (one per subscriber and event; the row's id is the *delivery id*). Events commit out of id order
   under concurrency, so the cursor only moves past events older than :data:`SETTLE_SECONDS`, and the
   recent ones are looked at again next time (creating a delivery is idempotent).
2. **delivery** — due deliveries are *claimed* in a short transaction (their next attempt is pushed a
   lease into the future), sent outside any transaction, then marked delivered, or rescheduled with
   exponential backoff (failed after ``webhook_max_attempts``). A dispatcher that dies mid-send leaves
   its claims to expire and be retried: receivers deduplicate on ``X-Mlharbor-Delivery``.

Webhook requests carry ``X-Mlharbor-Event``, ``X-Mlharbor-Delivery``, ``X-Mlharbor-Timestamp`` and
``X-Mlharbor-Signature: sha256=<HMAC-SHA256 of "<timestamp>.<body>" with the webhook's secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from mlharbor.auth.secrets import SecretBox
from mlharbor.core.clock import utcnow
from mlharbor.core.entities import EventDelivery, OutboxEvent, Webhook
from mlharbor.errors import MlharborError
from mlharbor.registry.webhooks import check_destination, webhook_subscriber

if TYPE_CHECKING:
    from mlharbor.config import Settings
    from mlharbor.meta import MetadataStore, UnitOfWork

log = logging.getLogger(__name__)

SETTLE_SECONDS = 60.0
CLAIM_SECONDS = 120.0
MAX_BACKOFF_SECONDS = 3600.0
HTTP_TIMEOUT_SECONDS = 10.0
FAN_OUT_BATCH = 1000


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of ``X-Mlharbor-Signature`` for a request body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def event_body(event: OutboxEvent, delivery_id: str) -> bytes:
    return json.dumps({"delivery_id": delivery_id, "event_id": event.id, "kind": event.kind,
                       "resource": event.resource, "actor": event.actor, "time": event.time.isoformat(),
                       "payload": event.payload}, sort_keys=True, default=str).encode()


@dataclass(frozen=True)
class InternalSubscriber:
    """An in-process consumer of events (the job scheduler's model-event triggers, for example).
    ``handle`` raising means "retry later"; returning means delivered."""

    name: str
    kinds: tuple[str, ...]
    handle: Callable[[OutboxEvent], None]

    @property
    def subscriber(self) -> str:
        return f"internal:{self.name}"


def _wants(event: OutboxEvent, kinds: tuple[str, ...], model: str | None) -> bool:
    if kinds and event.kind not in kinds:
        return False
    return model is None or event.resource in (f"model:{model}",) or event.resource.startswith(f"model:{model}@")


class EventDispatcher:
    """Fans the outbox out to webhooks and internal subscribers and delivers due events."""

    def __init__(self, store: MetadataStore, settings: Settings,
                 internal: list[InternalSubscriber] | None = None,
                 post: Callable[[str, bytes, dict[str, str]], int] | None = None) -> None:
        self._store = store
        self._settings = settings
        self._internal = {s.subscriber: s for s in internal or []}
        self._post = post or _http_post
        self._box: SecretBox | None = None

    def add_subscriber(self, subscriber: InternalSubscriber) -> None:
        self._internal[subscriber.subscriber] = subscriber

    def run_once(self, limit: int = 100) -> dict[str, int]:
        """One fan-out and one delivery pass; returns counts (``created``, ``delivered``, ``retried``,
        ``failed``)."""
        created = self.fan_out()
        counts = self.deliver_due(limit)
        return {"created": created, **counts}

    def run_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Pass after pass until ``stop`` is set (errors are logged, never fatal)."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the dispatcher outlives a failing store or receiver
                log.exception("event delivery pass failed")
            stop.wait(interval)

    # --- fan-out -------------------------------------------------------------------------------

    def fan_out(self) -> int:
        now = utcnow()
        settled = now - timedelta(seconds=SETTLE_SECONDS)
        created = 0
        with self._store.transaction() as tx:
            hooks = [h for h in tx.webhooks.list() if h.active]
        targets: list[tuple[str, tuple[str, ...], str | None]] = [
            (webhook_subscriber(h.id), h.events, h.model_name) for h in hooks]
        targets += [(s.subscriber, s.kinds, None) for s in self._internal.values()]
        for subscriber, kinds, model in targets:
            with self._store.transaction() as tx:
                cursor = tx.webhooks.cursor(subscriber)
                batch = tx.outbox.after(cursor, limit=FAN_OUT_BATCH)
                advance, contiguous = cursor, True
                for event in batch:
                    if _wants(event, kinds, model) and tx.webhooks.add_delivery(subscriber, event.id, now):
                        created += 1
                    # the cursor moves over the settled prefix only; the rest is seen again next pass
                    contiguous = contiguous and event.time <= settled
                    if contiguous:
                        advance = event.id
                if advance != cursor:
                    tx.webhooks.set_cursor(subscriber, advance)
        return created

    # --- delivery ------------------------------------------------------------------------------

    def _claim(self, limit: int) -> list[EventDelivery]:
        now = utcnow()
        with self._store.transaction() as tx:
            due = tx.webhooks.due(now, limit)
            for d in due:
                tx.webhooks.finish(d.id, status="pending", attempts=d.attempts,
                                   next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), error=d.last_error,
                                   status_code=d.last_status_code, delivered_at=None)
        return due

    def deliver_due(self, limit: int = 100) -> dict[str, int]:
        counts = {"delivered": 0, "retried": 0, "failed": 0}
        for delivery in self._claim(limit):
            ok, code, error = self._send(delivery)
            counts[self._record(delivery, ok, code, error)] += 1
        return counts

    def _send(self, delivery: EventDelivery) -> tuple[bool, int | None, str]:
        with self._store.transaction() as tx:
            event = tx.outbox.get(delivery.event_id)
            hook, sealed = self._webhook(tx, delivery.subscriber)
        if event is None:
            return False, None, "the event no longer exists"
        if delivery.subscriber in self._internal:
            try:
                self._internal[delivery.subscriber].handle(event)
            except Exception as exc:
                return False, None, f"{type(exc).__name__}: {exc}"
            return True, None, ""
        if hook is None or sealed is None:
            return False, None, f"no subscriber {delivery.subscriber} in this process"
        try:
            check_destination(hook.url, self._settings.policy.webhook_allow_private)
            secret = self._secrets().decrypt(sealed)
        except MlharborError as exc:
            return False, None, exc.message
        body = event_body(event, delivery.id)
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "mlharbor-webhooks",
                   "X-Mlharbor-Event": event.kind, "X-Mlharbor-Delivery": delivery.id,
                   "X-Mlharbor-Timestamp": stamp, "X-Mlharbor-Signature": signature(secret, stamp, body)}
        try:
            code = self._post(hook.url, body, headers)
        except Exception as exc:
            return False, None, f"{type(exc).__name__}: {exc}"
        return 200 <= code < 300, code, "" if 200 <= code < 300 else f"HTTP {code}"

    def _webhook(self, tx: UnitOfWork, subscriber: str) -> tuple[Webhook | None, str | None]:
        if not subscriber.startswith("webhook:"):
            return None, None
        hook_id = subscriber.removeprefix("webhook:")
        try:
            return tx.webhooks.get(hook_id), tx.webhooks.secret(hook_id)
        except MlharborError:
            return None, None

    def _record(self, delivery: EventDelivery, ok: bool, code: int | None, error: str) -> str:
        now = utcnow()
        attempts = delivery.attempts + 1
        policy = self._settings.policy
        if ok:
            status, outcome, next_at = "delivered", "delivered", now
        elif attempts >= policy.webhook_max_attempts or (delivery.subscriber.startswith("webhook:")
                                                         and error.startswith("no subscriber")):
            status, outcome, next_at = "failed", "failed", now
        else:
            delay = min(policy.webhook_backoff_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
            status, outcome, next_at = "pending", "retried", now + timedelta(seconds=delay)
        with self._store.transaction() as tx:
            tx.webhooks.finish(delivery.id, status=status, attempts=attempts, next_attempt_at=next_at, error=error,
                               status_code=code, delivered_at=now if ok else None)
        return outcome

    def _secrets(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox(self._settings.home)
        return self._box


def _http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    import httpx

    response = httpx.post(url, content=body, headers=headers, timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False)
    return int(response.status_code)


def verify_signature(secret: str, timestamp: str, body: bytes, header: str, tolerance_s: float = 300.0,
                     now: float | None = None) -> bool:
    """For receivers: whether ``header`` signs ``body`` with ``secret`` and the timestamp is recent."""
    current = time.time() if now is None else now
    try:
        fresh = abs(current - int(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), header)
