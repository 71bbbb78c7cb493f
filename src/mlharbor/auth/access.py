"""``ws.access``: principals, grants, tokens and the audit log, as the workspace's principal.

``Access`` is the interface; ``LocalAccess`` binds the acting principal to the AuthService, and the
REST client (``mlharbor.client.access.RestAccess``) sends the same calls to a server. Both apply
the same checks, because the checks live in the service.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlharbor.auth.tokens import token_view
from mlharbor.core.entities import ApiToken, AuditEntry, Grant, Principal

if TYPE_CHECKING:
    from mlharbor.auth.service import AuthService
    from mlharbor.core.actors import Actor

ALL_PRINCIPALS = "*"


class Access(ABC):
    """Identity and access management for one acting principal."""

    @abstractmethod
    def whoami(self) -> dict[str, Any]:
        """``{"principal": name, "roles": {environment: role}}``."""

    @abstractmethod
    def create_principal(self, name: str, kind: str = "user", display_name: str = "") -> Principal:
        """Create a user or service principal (admins). AlreadyExists for a taken name."""

    @abstractmethod
    def list_principals(self) -> builtins.list[Principal]:
        """Every principal, sorted by name."""

    @abstractmethod
    def set_active(self, name: str, active: bool) -> Principal:
        """Deactivate or reactivate a principal (admins); deactivated principals' tokens stop working."""

    @abstractmethod
    def grant(self, principal: str, role: str, environments: builtins.list[str] | None = None) -> builtins.list[Grant]:
        """Give ``role`` in each environment (default all); replaces the role held there."""

    @abstractmethod
    def revoke_grant(self, principal: str, environment: str) -> None:
        """Remove the principal's role in one environment. NotFound if none."""

    @abstractmethod
    def list_grants(self, principal: str | None = None) -> builtins.list[Grant]:
        """Grants, of one principal or all."""

    @abstractmethod
    def create_token(
        self, name: str, principal: str | None = None, ttl_days: float | None = None
    ) -> tuple[ApiToken, str]:
        """A new API token and its secret, which is shown only now (never stored)."""

    @abstractmethod
    def list_tokens(self, principal: str | None = None) -> builtins.list[ApiToken]:
        """Token records without secrets: yours by default, ``"*"`` for everyone's (admins)."""

    @abstractmethod
    def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke at once; idempotent."""

    @abstractmethod
    def audit_log(
        self,
        *,
        principal: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        decision: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """Audit entries newest first (admins); page with ``before_id``."""


class LocalAccess(Access):
    """Access over the local AuthService, acting as ``actor``."""

    def __init__(self, service: AuthService, actor: Actor) -> None:
        self._svc = service
        self._actor = actor

    def whoami(self) -> dict[str, Any]:
        return self._svc.whoami(self._actor)

    def create_principal(self, name: str, kind: str = "user", display_name: str = "") -> Principal:
        return self._svc.create_principal(self._actor, name, kind, display_name)

    def list_principals(self) -> builtins.list[Principal]:
        return self._svc.list_principals(self._actor)

    def set_active(self, name: str, active: bool) -> Principal:
        return self._svc.set_active(self._actor, name, active)

    def grant(self, principal: str, role: str, environments: builtins.list[str] | None = None) -> builtins.list[Grant]:
        return self._svc.grant(self._actor, principal, role, list(environments) if environments else None)

    def revoke_grant(self, principal: str, environment: str) -> None:
        self._svc.revoke_grant(self._actor, principal, environment)

    def list_grants(self, principal: str | None = None) -> builtins.list[Grant]:
        return self._svc.list_grants(self._actor, principal)

    def create_token(
        self, name: str, principal: str | None = None, ttl_days: float | None = None
    ) -> tuple[ApiToken, str]:
        token, secret = self._svc.create_token(self._actor, name, principal, ttl_days)
        return token_view(token), secret

    def list_tokens(self, principal: str | None = None) -> builtins.list[ApiToken]:
        who = None if principal == ALL_PRINCIPALS else (principal or self._actor.principal)
        return [token_view(t) for t in self._svc.list_tokens(self._actor, who)]

    def revoke_token(self, token_id: str) -> ApiToken:
        return token_view(self._svc.revoke_token(self._actor, token_id))

    def audit_log(
        self,
        *,
        principal: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        decision: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        return self._svc.audit_log(
            self._actor, principal=principal, action=action, resource=resource, decision=decision,
            since=since, before_id=before_id, limit=limit,
        )
