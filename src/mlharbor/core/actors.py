"""Who is acting. Every state-changing service call takes an :class:`Actor`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Actor:
    """The acting principal and the request it acts in (for the audit log).

    ``is_local_admin`` marks the embedded default, which acts as an administrator of its own
    workspace without grants in the metadata store.
    """

    principal: str
    request_id: str = field(default_factory=new_request_id)
    is_local_admin: bool = False

    @classmethod
    def local_admin(cls, principal: str = "local-admin") -> Actor:
        return cls(principal=principal, is_local_admin=True)

    def with_request(self, request_id: str) -> Actor:
        return Actor(self.principal, request_id, self.is_local_admin)
