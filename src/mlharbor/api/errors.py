"""One error tree → HTTP statuses with a JSON body ``{"error_code", "message"}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlharbor.errors import InvalidArgument, MlharborError, NotFound

log = logging.getLogger("mlharbor.api")

_STATUS_CODES = {404: NotFound, 400: InvalidArgument}


def _respond(error: MlharborError, status: int | None = None) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=status or error.http_status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts[:10])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MlharborError)
    async def on_mlharbor_error(request: Request, exc: MlharborError) -> JSONResponse:
        return _respond(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _respond(InvalidArgument(_validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _STATUS_CODES.get(exc.status_code, InvalidArgument if exc.status_code < 500 else MlharborError)
        error = cls(str(exc.detail) if exc.detail else f"HTTP {exc.status_code}")
        # keep the headers the status needs (Allow on 405)
        return JSONResponse(error.to_dict(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _respond(MlharborError("internal error; see the server log"))
