"""Identity routes: whoami, principals, tokens, grants and the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from mlharbor.api import deps
from mlharbor.api.schemas import (
    ERROR_RESPONSES,
    INT64_MAX,
    AuditOut,
    GrantIn,
    GrantOut,
    PrincipalCreate,
    PrincipalOut,
    PrincipalUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UtcDatetime,
    WhoAmI,
)
from mlharbor.core.actors import Actor
from mlharbor.workspace import Services

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=ERROR_RESPONSES)
Svc = Annotated[Services, Depends(deps.services)]
Me = Annotated[Actor, Depends(deps.actor)]


@router.get("/whoami", response_model=WhoAmI)
def whoami(svc: Svc, me: Me) -> WhoAmI:
    info = svc.auth.whoami(me)
    return WhoAmI(principal=str(info["principal"]), roles=dict(info["roles"]))  # type: ignore[call-overload]


@router.get("/principals", response_model=list[PrincipalOut])
def list_principals(svc: Svc, me: Me) -> list[PrincipalOut]:
    return [PrincipalOut.of(p) for p in svc.auth.list_principals(me)]


@router.post("/principals", response_model=PrincipalOut, status_code=201)
def create_principal(svc: Svc, me: Me, body: PrincipalCreate) -> PrincipalOut:
    return PrincipalOut.of(svc.auth.create_principal(me, body.name, body.kind, body.display_name))


@router.patch("/principals/{name}", response_model=PrincipalOut)
def update_principal(svc: Svc, me: Me, name: str, body: PrincipalUpdate) -> PrincipalOut:
    return PrincipalOut.of(svc.auth.set_active(me, name, body.active))


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(svc: Svc, me: Me, principal: str | None = None) -> list[TokenOut]:
    """Your tokens, or (admins) another principal's or everyone's (``principal=*``)."""
    who = None if principal == "*" else (principal or me.principal)
    return [TokenOut.of(t) for t in svc.auth.list_tokens(me, who)]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(svc: Svc, me: Me, body: TokenCreate) -> TokenCreated:
    """Create a token; the secret is in this response only."""
    token, secret = svc.auth.create_token(me, body.name, body.principal, body.ttl_days)
    return TokenCreated(**TokenOut.of(token).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(svc: Svc, me: Me, token_id: str) -> TokenOut:
    return TokenOut.of(svc.auth.revoke_token(me, token_id))


@router.get("/grants", response_model=list[GrantOut])
def list_grants(svc: Svc, me: Me, principal: str | None = None) -> list[GrantOut]:
    return [GrantOut.of(g) for g in svc.auth.list_grants(me, principal)]


@router.put("/grants", response_model=list[GrantOut])
def put_grants(svc: Svc, me: Me, body: GrantIn) -> list[GrantOut]:
    envs: list[str] | None = list(body.environments) if body.environments else None
    return [GrantOut.of(g) for g in svc.auth.grant(me, body.principal, body.role, envs)]  # type: ignore[arg-type]


@router.delete("/grants/{principal}/{environment}", status_code=204)
def delete_grant(svc: Svc, me: Me, principal: str, environment: Literal["dev", "staging", "prod"]) -> Response:
    svc.auth.revoke_grant(me, principal, environment)
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    svc: Svc, me: Me,
    principal: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    decision: Literal["allowed", "denied"] | None = None,
    since: UtcDatetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    entries = svc.auth.audit_log(me, principal=principal, action=action, resource=resource, decision=decision,
                                 since=since, before_id=before_id, limit=limit)
    return [AuditOut.of(e) for e in entries]
