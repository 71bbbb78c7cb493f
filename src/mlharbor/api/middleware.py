"""Pure ASGI middleware: request ids and token authentication (fail closed).

Every HTTP path except the ones listed as open (``/health``) needs a valid bearer token, including
routes added later, ``/openapi.json`` and ``/docs``: the check sits in front of the router, not in
each route.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from mlharbor.core.actors import new_request_id
from mlharbor.errors import MlharborError, Unauthenticated

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


async def send_error(
    send: Send, error: MlharborError, request_id: str, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps(error.to_dict())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TokenAuthMiddleware:
    """Authenticate the bearer token and put the Actor in ``scope['state']['actor']``."""

    def __init__(
        self, app: ASGIApp, authenticate: Callable[[str | None, str], Any], open_paths: frozenset[str] = OPEN_PATHS
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # fail closed for websockets and anything added later
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = rid if _REQUEST_ID.match(rid) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        if scope["path"] not in self.open_paths:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, token = auth.partition(" ")
            secret = token.strip() if scheme.lower() == "bearer" else None
            try:
                state["actor"] = await run_in_threadpool(self.authenticate, secret, request_id)
            except Unauthenticated as exc:
                await send_error(send, exc, request_id, [(b"www-authenticate", b"Bearer")])
                return
            except MlharborError as exc:
                await send_error(send, exc, request_id)
                return
        await self.app(scope, receive, send_with_id)
