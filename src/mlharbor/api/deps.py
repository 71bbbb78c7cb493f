"""Request-scoped dependencies: the acting principal and the services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from mlharbor.catalog.service import TableService
from mlharbor.core.actors import Actor
from mlharbor.errors import Unauthenticated

if TYPE_CHECKING:
    from mlharbor.workspace import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def actor(request: Request) -> Actor:
    found = getattr(request.state, "actor", None)
    if not isinstance(found, Actor):  # the middleware always sets it; fail closed if it did not
        raise Unauthenticated("missing API token: send 'Authorization: Bearer <token>'")
    return found


def tables(request: Request) -> TableService:
    return TableService(services(request).catalog, actor(request))
