"""The app factory of ``mlharbor server``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mlharbor import __version__
from mlharbor.api import routes_auth, routes_features, routes_jobs, routes_models, routes_tables
from mlharbor.api.errors import install_error_handlers
from mlharbor.api.middleware import OPEN_PATHS, TokenAuthMiddleware
from mlharbor.api.mlflow_gate import MlflowGate
from mlharbor.config import Settings
from mlharbor.workspace import Services

_BEARER = "bearerToken"


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the control-plane app over ``services`` (built from ``settings`` when not given)."""
    if services is None:
        if settings is None:
            from mlharbor.config import load_settings

            settings = load_settings()
        services = Services.build(settings)
    app = FastAPI(
        title="mlharbor",
        version=__version__,
        description="Control-plane API of mlharbor. Every route except /health needs "
        "'Authorization: Bearer <token>'. MLflow's own REST API (/api/2.0/mlflow/...) is served too, "
        "for plain mlflow clients with MLFLOW_TRACKING_TOKEN set to an mlharbor token.",
    )
    app.state.services = services
    install_error_handlers(app)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, Any]:
        """Liveness; the only route that needs no token."""
        return {"status": "ok", "version": __version__}

    app.include_router(routes_tables.router)
    app.include_router(routes_auth.router)
    app.include_router(routes_features.router)
    app.include_router(routes_models.router)
    app.include_router(routes_jobs.router)
    # MLflow's REST API (plain mlflow clients) sits behind the same authentication: the token
    # middleware is added last, so it runs first
    app.add_middleware(MlflowGate, services=services)  # type: ignore[arg-type]
    app.add_middleware(TokenAuthMiddleware, authenticate=services.auth.authenticate)  # type: ignore[arg-type]
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The spec as the server behaves: bearer auth everywhere but the open paths, and no 422.

    The middleware, not a route dependency, checks tokens, so FastAPI cannot see the security
    requirement; and invalid requests are answered 400 with ``ErrorBody`` (``errors.py``), not
    FastAPI's 422 ``HTTPValidationError``.
    """
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})[_BEARER] = {"type": "http", "scheme": "bearer"}
    spec["security"] = [{_BEARER: []}]
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            if path in OPEN_PATHS:
                operation["security"] = []
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    app.openapi_schema = spec
    return spec
