"""AuthService: permission checks, principals, grants, tokens and audit queries.

Checks live here so the SDK, CLI and REST API share them. Every state change is audited in the same
transaction; every denial is audited too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mlharbor.auth.audit import record, record_denied
from mlharbor.auth.policy import Permission, permissions_for
from mlharbor.auth.tokens import display_prefix, hash_secret, new_secret
from mlharbor.core.actors import Actor
from mlharbor.core.clock import utcnow
from mlharbor.core.entities import (
    ApiToken,
    AuditEntry,
    Decision,
    Environment,
    Grant,
    Principal,
    PrincipalKind,
    Role,
)
from mlharbor.core.ids import new_id
from mlharbor.core.names import check_identifier
from mlharbor.errors import InvalidArgument, PermissionDenied, Unauthenticated

if TYPE_CHECKING:
    from mlharbor.meta import MetadataStore

BOOTSTRAP_KEY = "auth.bootstrap_admin"
MAX_TOKEN_TTL_DAYS = 3650


def _environment(value: str | Environment) -> Environment:
    try:
        return Environment(value)
    except ValueError:
        raise InvalidArgument(
            f"unknown environment {value!r}; use one of {', '.join(e.value for e in Environment)}"
        ) from None


def _role(value: str | Role) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidArgument(f"unknown role {value!r}; use one of {', '.join(r.value for r in Role)}") from None


class AuthService:
    """Authorisation and identity over the metadata store."""

    def __init__(self, store: MetadataStore, default_token_ttl_days: int = 90) -> None:
        self._store = store
        self._ttl_days = default_token_ttl_days

    # --- checks -------------------------------------------------------------------------------

    def permissions(self, actor: Actor, environment: Environment) -> frozenset[Permission]:
        """What ``actor`` may do in ``environment`` (local admin: everything)."""
        if actor.is_local_admin:
            return frozenset(Permission)
        with self._store.transaction() as tx:
            principal = tx.principals.find(actor.principal)
            if principal is None or not principal.active:
                return frozenset()
            grant = tx.grants.get(actor.principal, environment)
        return permissions_for(grant.role, environment) if grant else frozenset()

    def authorize(
        self, actor: Actor, permission: Permission, environment: Environment, action: str, resource: str
    ) -> None:
        """Raise PermissionDenied (and audit the denial) unless ``actor`` holds ``permission``."""
        if permission in self.permissions(actor, environment):
            return
        reason = f"{actor.principal} lacks '{permission.value}' in {environment.value}"
        record_denied(self._store, actor, action, resource, reason)
        raise PermissionDenied(f"{reason} (needed for {action} on {resource})")

    def authorize_everywhere(self, actor: Actor, permission: Permission, action: str, resource: str) -> None:
        """Like ``authorize`` but ``permission`` is needed in every environment.

        Acts that are not scoped to one environment (principals, other principals' tokens, the
        audit log) need it: an admin of dev alone must not be able to mint a token for a prod admin.
        """
        if all(permission in self.permissions(actor, env) for env in Environment):
            return
        reason = f"{actor.principal} lacks '{permission.value}' in some environment (needed in all)"
        record_denied(self._store, actor, action, resource, reason)
        raise PermissionDenied(f"{reason} (needed for {action} on {resource})")

    def authorize_any(self, actor: Actor, permission: Permission, action: str, resource: str) -> None:
        """Like ``authorize`` but satisfied by ``permission`` in any environment."""
        if any(permission in self.permissions(actor, env) for env in Environment):
            return
        reason = f"{actor.principal} lacks '{permission.value}' in every environment"
        record_denied(self._store, actor, action, resource, reason)
        raise PermissionDenied(f"{reason} (needed for {action} on {resource})")

    # --- principals ---------------------------------------------------------------------------

    def create_principal(
        self, actor: Actor, name: str, kind: PrincipalKind | str = PrincipalKind.USER, display_name: str = ""
    ) -> Principal:
        """Create a user or service principal. Needs MANAGE somewhere. AlreadyExists on duplicates."""
        name = check_identifier(name, "principal name")
        try:
            kind = PrincipalKind(kind)
        except ValueError:
            raise InvalidArgument(f"principal kind must be 'user' or 'service', not {kind!r}") from None
        self.authorize_everywhere(actor, Permission.MANAGE, "principal.create", f"principal:{name}")
        principal = Principal(name, kind, display_name or name, utcnow(), actor.principal)
        with self._store.transaction() as tx:
            created = tx.principals.add(principal)
            record(tx, actor, "principal.create", f"principal:{name}", {"kind": kind.value})
        return created

    def list_principals(self, actor: Actor) -> list[Principal]:
        """Every principal. Any authenticated principal with a grant may list them."""
        self.authorize_any(actor, Permission.READ, "principal.list", "principals")
        with self._store.transaction() as tx:
            return tx.principals.list()

    def set_active(self, actor: Actor, name: str, active: bool) -> Principal:
        """Deactivate (or reactivate) a principal; a deactivated principal's tokens stop working."""
        self.authorize_everywhere(actor, Permission.MANAGE, "principal.update", f"principal:{name}")
        with self._store.transaction() as tx:
            updated = tx.principals.set_active(name, active)
            record(tx, actor, "principal.activate" if active else "principal.deactivate", f"principal:{name}")
        return updated

    # --- grants -------------------------------------------------------------------------------

    def grant(
        self, actor: Actor, principal: str, role: Role | str, environments: list[Environment | str] | None = None
    ) -> list[Grant]:
        """Give ``principal`` ``role`` in each environment (default: all). Needs MANAGE there."""
        role = _role(role)
        envs = [_environment(e) for e in (environments or list(Environment))]
        for env in envs:
            self.authorize(actor, Permission.MANAGE, env, "grant.put", f"principal:{principal}")
        now = utcnow()
        with self._store.transaction() as tx:
            tx.principals.get(principal)
            grants = [tx.grants.put(Grant(principal, env, role, actor.principal, now)) for env in envs]
            for env in envs:
                record(tx, actor, "grant.put", f"principal:{principal}", {"environment": env.value, "role": role.value})
        return grants

    def revoke_grant(self, actor: Actor, principal: str, environment: Environment | str) -> None:
        """Remove ``principal``'s role in ``environment``. NotFound if there is none."""
        env = _environment(environment)
        self.authorize(actor, Permission.MANAGE, env, "grant.delete", f"principal:{principal}")
        with self._store.transaction() as tx:
            tx.grants.delete(principal, env)
            record(tx, actor, "grant.delete", f"principal:{principal}", {"environment": env.value})

    def list_grants(self, actor: Actor, principal: str | None = None) -> list[Grant]:
        """Grants, optionally of one principal. Principals may see their own; others need READ."""
        if principal != actor.principal:
            self.authorize_any(actor, Permission.READ, "grant.list", "grants")
        with self._store.transaction() as tx:
            return tx.grants.list(principal=principal)

    # --- tokens -------------------------------------------------------------------------------

    def create_token(
        self, actor: Actor, name: str, principal: str | None = None, ttl_days: float | None = None
    ) -> tuple[ApiToken, str]:
        """Create a token; returns its record and the secret, which is never shown again.

        Principals create their own tokens; creating one for another principal needs MANAGE.
        """
        owner = principal or actor.principal
        name = name.strip() if isinstance(name, str) else ""
        if not name:
            raise InvalidArgument("a token needs a non-empty name (for example --name laptop)")
        if owner != actor.principal:
            self.authorize_everywhere(actor, Permission.MANAGE, "token.create", f"principal:{owner}")
        ttl = self._ttl_days if ttl_days is None else ttl_days
        if not 0 < ttl <= MAX_TOKEN_TTL_DAYS:
            raise InvalidArgument(f"ttl_days must be more than 0 and at most {MAX_TOKEN_TTL_DAYS}")
        secret = new_secret()
        now = utcnow()
        token = ApiToken(
            id=new_id(), principal=owner, name=name, token_hash=hash_secret(secret),
            prefix=display_prefix(secret), created_at=now, expires_at=now + timedelta(days=ttl),
        )
        with self._store.transaction() as tx:
            tx.principals.get(owner)
            created = tx.tokens.add(token)
            record(tx, actor, "token.create", f"token:{token.id}", {"principal": owner, "name": name})
        return created, secret

    def list_tokens(self, actor: Actor, principal: str | None = None) -> list[ApiToken]:
        """Token records (never secrets). Others' tokens need MANAGE."""
        if principal != actor.principal:
            self.authorize_everywhere(actor, Permission.MANAGE, "token.list", "tokens")
        with self._store.transaction() as tx:
            return tx.tokens.list(principal=principal)

    def revoke_token(self, actor: Actor, token_id: str) -> ApiToken:
        """Revoke a token at once. Own tokens, or anyone's with MANAGE. Idempotent."""
        with self._store.transaction() as tx:
            token = tx.tokens.get(token_id)
        if token.principal != actor.principal:
            self.authorize_everywhere(actor, Permission.MANAGE, "token.revoke", f"token:{token_id}")
        with self._store.transaction() as tx:
            revoked = tx.tokens.revoke(token_id, utcnow())
            record(tx, actor, "token.revoke", f"token:{token_id}", {"principal": token.principal})
        return revoked

    def authenticate(self, secret: str | None, request_id: str | None = None) -> Actor:
        """Map a token secret to its principal's Actor, or raise Unauthenticated."""
        if not secret:
            raise Unauthenticated("missing API token: send 'Authorization: Bearer <token>'")
        now = utcnow()
        with self._store.transaction() as tx:
            token = tx.tokens.find_by_hash(hash_secret(secret))
            if token is None or not token.is_valid_at(now):
                raise Unauthenticated("invalid, expired or revoked API token")
            principal = tx.principals.find(token.principal)
            if principal is None or not principal.active:
                raise Unauthenticated(f"principal {token.principal!r} is deactivated")
            if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
                tx.tokens.touch(token.id, now)
        actor = Actor(principal=token.principal)
        return actor.with_request(request_id) if request_id else actor

    # --- audit and bootstrap ------------------------------------------------------------------

    def audit_log(
        self,
        actor: Actor,
        *,
        principal: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        decision: Decision | str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, newest first. Admins only (MANAGE in some environment)."""
        self.authorize_everywhere(actor, Permission.MANAGE, "audit.list", "audit")
        if not 1 <= limit <= 1000:
            raise InvalidArgument("limit must be between 1 and 1000")
        dec = Decision(decision) if decision else None
        with self._store.transaction() as tx:
            return tx.audit.list(
                actor=principal, action=action, resource=resource, decision=dec,
                since=since, before_id=before_id, limit=limit,
            )

    def bootstrap_admin(self, name: str = "admin") -> str | None:
        """On a store's first server start: create admin ``name`` with admin in every environment and
        return a one-time token secret. Returns None if bootstrap already happened (atomic)."""
        name = check_identifier(name, "principal name")
        system = Actor(principal="system")
        now = utcnow()
        secret = new_secret()
        with self._store.transaction() as tx:
            if not tx.kv.set_if_absent(BOOTSTRAP_KEY, now.isoformat()):
                return None
            if tx.principals.find(name) is None:
                tx.principals.add(Principal(name, PrincipalKind.USER, "Administrator", now, system.principal))
            for env in Environment:
                tx.grants.put(Grant(name, env, Role.ADMIN, system.principal, now))
            token = ApiToken(
                id=new_id(), principal=name, name="bootstrap", token_hash=hash_secret(secret),
                prefix=display_prefix(secret), created_at=now,
                expires_at=now + timedelta(days=self._ttl_days),
            )
            tx.tokens.add(token)
            record(tx, system, "auth.bootstrap", f"principal:{name}", {"token_id": token.id})
        return secret

    def ensure_local_admin(self, actor: Actor) -> None:
        """Make sure the embedded default's local admin exists as a principal, so it can own tokens.

        It gets no grants: its rights come from acting locally (``Actor.is_local_admin``), not from
        the store, so a token it creates for itself carries no rights on a server until granted.
        """
        if not actor.is_local_admin:
            return
        with self._store.transaction() as tx:
            if tx.principals.find(actor.principal) is None:
                tx.principals.add(
                    Principal(actor.principal, PrincipalKind.USER, f"{actor.principal} (local)", utcnow(), "system")
                )
                record(tx, actor, "principal.create", f"principal:{actor.principal}", {"local_admin": True})

    def whoami(self, actor: Actor) -> dict[str, object]:
        """The actor's name and effective roles per environment."""
        if actor.is_local_admin:
            return {"principal": actor.principal, "roles": {e.value: Role.ADMIN.value for e in Environment}}
        with self._store.transaction() as tx:
            grants = tx.grants.list(principal=actor.principal)
        return {"principal": actor.principal, "roles": {g.environment.value: g.role.value for g in grants}}


__all__ = ["AuthService"]
