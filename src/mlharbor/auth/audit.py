"""Writing to the append-only audit log.

State changes are audited inside the transaction that makes them (``record``); denied attempts are
audited in a transaction of their own (``record_denied``) because nothing else is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlharbor.core.clock import utcnow
from mlharbor.core.entities import AuditEntry, Decision

if TYPE_CHECKING:
    from mlharbor.core.actors import Actor
    from mlharbor.meta import MetadataStore, UnitOfWork


def record(
    tx: UnitOfWork,
    actor: Actor,
    action: str,
    resource: str,
    details: dict[str, Any] | None = None,
    decision: Decision = Decision.ALLOWED,
) -> AuditEntry:
    """Append an audit entry inside the caller's transaction."""
    return tx.audit.append(
        time=utcnow(),
        actor=actor.principal,
        action=action,
        resource=resource,
        decision=decision,
        request_id=actor.request_id,
        details=details or {},
    )


def record_denied(
    store: MetadataStore, actor: Actor, action: str, resource: str, reason: str
) -> AuditEntry:
    """Append a denial in its own transaction."""
    with store.transaction() as tx:
        return record(tx, actor, action, resource, {"reason": reason}, Decision.DENIED)
