"""``RestAccess``: the Access interface over a server's identity routes."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlharbor.auth.access import ALL_PRINCIPALS, Access
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

if TYPE_CHECKING:
    from mlharbor.client.http import RestClient


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _principal(d: dict[str, Any]) -> Principal:
    return Principal(d["name"], PrincipalKind(d["kind"]), d["display_name"], datetime.fromisoformat(d["created_at"]),
                     d["created_by"], d["active"])


def _grant(d: dict[str, Any]) -> Grant:
    return Grant(d["principal"], Environment(d["environment"]), Role(d["role"]), d["granted_by"],
                 datetime.fromisoformat(d["granted_at"]))


def _token(d: dict[str, Any]) -> ApiToken:
    return ApiToken(id=d["id"], principal=d["principal"], name=d["name"], token_hash="", prefix=d["prefix"],
                    created_at=datetime.fromisoformat(d["created_at"]), expires_at=_dt(d["expires_at"]),
                    revoked_at=_dt(d["revoked_at"]), last_used_at=_dt(d["last_used_at"]))


class RestAccess(Access):
    """Identity calls through ``/api/v1``."""

    def __init__(self, client: RestClient) -> None:
        self._c = client

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self._c.json("GET", "/api/v1/whoami")
        return result

    def create_principal(self, name: str, kind: str = "user", display_name: str = "") -> Principal:
        body = {"name": name, "kind": kind, "display_name": display_name}
        return _principal(self._c.json("POST", "/api/v1/principals", json=body))

    def list_principals(self) -> builtins.list[Principal]:
        return [_principal(d) for d in self._c.json("GET", "/api/v1/principals")]

    def set_active(self, name: str, active: bool) -> Principal:
        return _principal(self._c.json("PATCH", f"/api/v1/principals/{quote(name, safe='')}", json={"active": active}))

    def grant(self, principal: str, role: str, environments: builtins.list[str] | None = None) -> builtins.list[Grant]:
        body = {"principal": principal, "role": role, "environments": environments}
        return [_grant(d) for d in self._c.json("PUT", "/api/v1/grants", json=body)]

    def revoke_grant(self, principal: str, environment: str) -> None:
        self._c.request("DELETE", f"/api/v1/grants/{quote(principal, safe='')}/{quote(environment, safe='')}")

    def list_grants(self, principal: str | None = None) -> builtins.list[Grant]:
        params = {"principal": principal} if principal else {}
        return [_grant(d) for d in self._c.json("GET", "/api/v1/grants", params=params)]

    def create_token(
        self, name: str, principal: str | None = None, ttl_days: float | None = None
    ) -> tuple[ApiToken, str]:
        body = {"name": name, "principal": principal, "ttl_days": ttl_days}
        d = self._c.json("POST", "/api/v1/tokens", json=body)
        return _token(d), str(d["token"])

    def list_tokens(self, principal: str | None = None) -> builtins.list[ApiToken]:
        params = {"principal": principal} if principal else {}
        return [_token(d) for d in self._c.json("GET", "/api/v1/tokens", params=params)]

    def revoke_token(self, token_id: str) -> ApiToken:
        return _token(self._c.json("DELETE", f"/api/v1/tokens/{quote(token_id, safe='')}"))

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
        params: dict[str, Any] = {"limit": limit}
        for key, value in {"principal": principal, "action": action, "resource": resource,
                           "decision": decision, "before_id": before_id}.items():
            if value is not None:
                params[key] = value
        if since is not None:
            params["since"] = since.isoformat()
        return [
            AuditEntry(id=d["id"], time=datetime.fromisoformat(d["time"]), actor=d["actor"], action=d["action"],
                       resource=d["resource"], decision=Decision(d["decision"]), request_id=d["request_id"],
                       details=d["details"])
            for d in self._c.json("GET", "/api/v1/audit", params=params)
        ]


__all__ = ["ALL_PRINCIPALS", "RestAccess"]
