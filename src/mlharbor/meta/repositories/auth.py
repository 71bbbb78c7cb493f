"""Principals, their role grants per environment, and API token records."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mlharbor.core.clock import as_utc
from mlharbor.core.entities import ApiToken, Environment, Grant, Principal, PrincipalKind, Role
from mlharbor.errors import NotFound
from mlharbor.meta.models import GrantRow, PrincipalRow, TokenRow
from mlharbor.meta.repositories._common import (
    add_unique,
    conflict_insert,
    enum_value,
    execute_core,
)


def _optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _to_principal(row: PrincipalRow) -> Principal:
    return Principal(
        name=row.name,
        kind=PrincipalKind(row.kind),
        display_name=row.display_name,
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        active=row.active,
    )


def _to_grant(row: GrantRow) -> Grant:
    return Grant(
        principal=row.principal,
        environment=Environment(row.environment),
        role=Role(row.role),
        granted_by=row.granted_by,
        granted_at=as_utc(row.granted_at),
    )


def _to_token(row: TokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        principal=row.principal,
        name=row.name,
        token_hash=row.token_hash,
        prefix=row.prefix,
        created_at=as_utc(row.created_at),
        expires_at=_optional_utc(row.expires_at),
        revoked_at=_optional_utc(row.revoked_at),
        last_used_at=_optional_utc(row.last_used_at),
    )


def _require_principal(session: Session, name: str) -> PrincipalRow:
    row = session.get(PrincipalRow, name)
    if row is None:
        raise NotFound(f"principal {name!r} does not exist")
    return row


class PrincipalRepository:
    """Users and service principals, keyed by name (case-sensitive, stored as given)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, principal: Principal) -> Principal:
        """Create the principal and return it; raise AlreadyExists if the name is taken."""
        row = PrincipalRow(
            name=principal.name,
            kind=enum_value(PrincipalKind, principal.kind).value,
            display_name=principal.display_name,
            active=principal.active,
            created_by=principal.created_by,
            created_at=principal.created_at,
        )
        add_unique(self._session, row, f"principal {principal.name!r}")
        return _to_principal(row)

    def get(self, name: str) -> Principal:
        """Return the principal; raise NotFound if it does not exist."""
        return _to_principal(_require_principal(self._session, name))

    def find(self, name: str) -> Principal | None:
        """Return the principal, or None if it does not exist."""
        row = self._session.get(PrincipalRow, name)
        return None if row is None else _to_principal(row)

    def list(self, kind: PrincipalKind | str | None = None) -> builtins.list[Principal]:
        """All principals (of ``kind`` if given), sorted by name; inactive ones included."""
        stmt = select(PrincipalRow).order_by(PrincipalRow.name)
        if kind is not None:
            stmt = stmt.where(PrincipalRow.kind == enum_value(PrincipalKind, kind).value)
        return [_to_principal(row) for row in self._session.scalars(stmt)]

    def set_active(self, name: str, active: bool) -> Principal:
        """Activate or deactivate the principal (idempotent); raise NotFound if it does not exist."""
        row = _require_principal(self._session, name)
        row.active = active
        self._session.flush()
        return _to_principal(row)


class GrantRepository:
    """Roles of principals per environment: at most one role per (principal, environment)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def put(self, grant: Grant) -> Grant:
        """Set the principal's role in the environment, replacing any previous grant (upsert).

        Atomic under concurrency. Raises NotFound if the principal does not exist.
        """
        _require_principal(self._session, grant.principal)
        stmt = conflict_insert(self._session, GrantRow).values(
            principal=grant.principal,
            environment=enum_value(Environment, grant.environment).value,
            role=enum_value(Role, grant.role).value,
            granted_by=grant.granted_by,
            granted_at=grant.granted_at,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["principal", "environment"],
            set_={
                "role": stmt.excluded.role,
                "granted_by": stmt.excluded.granted_by,
                "granted_at": stmt.excluded.granted_at,
            },
        )
        execute_core(self._session, stmt)
        return Grant(
            principal=grant.principal,
            environment=enum_value(Environment, grant.environment),
            role=enum_value(Role, grant.role),
            granted_by=grant.granted_by,
            granted_at=as_utc(grant.granted_at),
        )

    def get(self, principal: str, environment: Environment | str) -> Grant | None:
        """The principal's grant in the environment, or None if it has none there."""
        row = self._session.get(
            GrantRow, (principal, enum_value(Environment, environment).value), populate_existing=True
        )
        return None if row is None else _to_grant(row)

    def list(
        self, principal: str | None = None, environment: Environment | str | None = None
    ) -> builtins.list[Grant]:
        """Grants matching the given filters, sorted by principal then environment."""
        stmt = select(GrantRow).order_by(GrantRow.principal, GrantRow.environment)
        if principal is not None:
            stmt = stmt.where(GrantRow.principal == principal)
        if environment is not None:
            stmt = stmt.where(GrantRow.environment == enum_value(Environment, environment).value)
        rows = self._session.scalars(stmt.execution_options(populate_existing=True))
        return [_to_grant(row) for row in rows]

    def delete(self, principal: str, environment: Environment | str) -> None:
        """Remove the grant; raise NotFound if the principal has no grant in that environment."""
        env = enum_value(Environment, environment).value
        row = self._session.get(GrantRow, (principal, env), populate_existing=True)
        if row is None:
            raise NotFound(f"principal {principal!r} has no grant in environment {env!r}")
        self._session.delete(row)
        self._session.flush()


class TokenRepository:
    """API token records. Secrets are never stored, only their SHA-256 ``token_hash``."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, token: ApiToken) -> ApiToken:
        """Store the token record and return it.

        Raises NotFound if the principal does not exist, AlreadyExists if the id or the hash is
        already stored.
        """
        _require_principal(self._session, token.principal)
        row = TokenRow(
            id=token.id,
            principal=token.principal,
            name=token.name,
            token_hash=token.token_hash,
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )
        add_unique(self._session, row, f"API token {token.id!r} (or one with the same hash)")
        return _to_token(row)

    def get(self, id: str) -> ApiToken:
        """Return the token record; raise NotFound if there is none with that id."""
        return _to_token(self._row(id))

    def find_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to ``token_hash`` (unique index), or None.

        Revoked and expired tokens are returned too: callers check ``is_valid_at``.
        """
        stmt = select(TokenRow).where(TokenRow.token_hash == token_hash)
        row = self._session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
        return None if row is None else _to_token(row)

    def list(self, principal: str | None = None) -> builtins.list[ApiToken]:
        """Token records (of ``principal`` if given), newest first (by created_at, then id)."""
        stmt = select(TokenRow).order_by(TokenRow.created_at.desc(), TokenRow.id.desc())
        if principal is not None:
            stmt = stmt.where(TokenRow.principal == principal)
        rows = self._session.scalars(stmt.execution_options(populate_existing=True))
        return [_to_token(row) for row in rows]

    def revoke(self, id: str, at: datetime) -> ApiToken:
        """Mark the token revoked at ``at`` and return it; raise NotFound if it does not exist.

        Idempotent: revoking a revoked token keeps the first ``revoked_at``, also when two
        revocations race.
        """
        execute_core(
            self._session,
            update(TokenRow).where(TokenRow.id == id, TokenRow.revoked_at.is_(None)).values(revoked_at=at),
        )
        return _to_token(self._row(id))

    def touch(self, id: str, at: datetime) -> None:
        """Record a use of the token at ``at``; raise NotFound if it does not exist.

        ``last_used_at`` only moves forward, so out-of-order touches from parallel requests keep
        the latest time.
        """
        result = execute_core(
            self._session,
            update(TokenRow)
            .where(
                TokenRow.id == id,
                or_(TokenRow.last_used_at.is_(None), TokenRow.last_used_at < at),
            )
            .values(last_used_at=at),
        )
        if result.rowcount == 0:
            self._row(id)  # raises NotFound if the token does not exist

    def _row(self, id: str) -> TokenRow:
        row = self._session.get(TokenRow, id, populate_existing=True)
        if row is None:
            raise NotFound(f"API token {id!r} does not exist")
        return row
