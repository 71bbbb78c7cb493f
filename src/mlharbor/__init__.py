"""mlharbor: the Lakehouse MLOps workflow on your own machines.

The public surface is small and imported lazily, so ``import mlharbor`` stays cheap::

    import mlharbor
    ws = mlharbor.Workspace.open()           # embedded default, or mlharbor.toml targets
    ws = mlharbor.Workspace.connect(url, token=...)   # through a mlharbor server
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlharbor.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    InvalidArgument,
    MissingDependency,
    MlharborError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    UserCodeError,
)

if TYPE_CHECKING:
    from mlharbor.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "BackendUnavailable",
    "Conflict",
    "InvalidArgument",
    "MissingDependency",
    "MlharborError",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "UserCodeError",
    "Workspace",
    "__version__",
]

_LAZY = {"Workspace": "mlharbor.workspace"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlharbor' has no attribute {name!r}")
