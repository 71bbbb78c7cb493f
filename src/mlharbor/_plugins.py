"""Backends chosen by URI scheme and imported lazily.

``table_store_for("s3://bucket/lake")`` imports the Delta backend only when a table store is needed.
Third-party backends register under the entry point group ``mlharbor.table_stores`` as
``scheme = "package.module:ClassName"``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from mlharbor.errors import InvalidArgument, MissingDependency

if TYPE_CHECKING:
    from mlharbor.lake.base import TableStore

_DELTA = "mlharbor.lake.delta:DeltaTableStore"
TABLE_STORES: dict[str, str] = {
    "file": _DELTA,
    "s3": _DELTA,
    "s3a": _DELTA,
    "gs": _DELTA,
    "az": _DELTA,
    "abfs": _DELTA,
    "abfss": _DELTA,
}


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else "file"


def load_object(spec: str, extra: str | None = None) -> object:
    """Import ``module:attr``; a missing optional dependency names the extra to install."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; install mlharbor[{extra}]" if extra else ""
        raise MissingDependency(f"cannot import {module_name} ({exc}){hint}") from exc
    return getattr(module, attr)


def table_store_for(lake_uri: str, storage_options: dict[str, str] | None = None) -> TableStore:
    """A table store for the lake at ``lake_uri`` (by scheme; entry points may add schemes)."""
    scheme = _scheme(lake_uri)
    spec = TABLE_STORES.get(scheme)
    if spec is None:
        for ep in entry_points(group="mlharbor.table_stores"):
            if ep.name == scheme:
                spec = ep.value
                break
    if spec is None:
        raise InvalidArgument(f"no table store for lake URI scheme {scheme!r}; known: {sorted(TABLE_STORES)}")
    cls = load_object(spec)
    store: TableStore = cls(storage_options=storage_options or None)  # type: ignore[operator]
    return store
