"""Registry events (and the job-run events webhooks may subscribe to), written to the outbox in the
transaction of the change they report.

Subscribers (webhooks, the job scheduler's model-event triggers) read them from the outbox and get
each at least once; ``id`` is the delivery id a receiver deduplicates on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlharbor.core.entities import OutboxEvent
from mlharbor.jobs.records import RUN_EVENTS

if TYPE_CHECKING:
    from mlharbor.core.actors import Actor
    from mlharbor.meta import UnitOfWork

VERSION_REGISTERED = "model_version.registered"
TRANSITION_REQUESTED = "transition.requested"
TRANSITION_APPROVED = "transition.approved"
TRANSITION_REJECTED = "transition.rejected"
TRANSITION_CANCELLED = "transition.cancelled"
STAGE_CHANGED = "model_version.stage_changed"
ALIAS_CHANGED = "model_alias.changed"
CHECKS_COMPLETED = "checks.completed"
EVALUATION_COMPLETED = "evaluation.completed"
COMMENT_ADDED = "model_version.commented"

KINDS = (VERSION_REGISTERED, TRANSITION_REQUESTED, TRANSITION_APPROVED, TRANSITION_REJECTED, TRANSITION_CANCELLED,
         STAGE_CHANGED, ALIAS_CHANGED, CHECKS_COMPLETED, EVALUATION_COMPLETED, COMMENT_ADDED, *RUN_EVENTS)


def version_resource(name: str, version: int) -> str:
    return f"model:{name}@{version}"


def emit(tx: UnitOfWork, actor: Actor, kind: str, resource: str, payload: dict[str, Any]) -> OutboxEvent:
    """Append an event to the outbox inside the caller's transaction."""
    return tx.outbox.append(kind, resource, actor.principal, payload)
