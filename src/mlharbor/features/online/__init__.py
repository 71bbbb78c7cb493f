"""Online stores: the latest feature rows by key, for serving.

``online_store_for("sqlite:///online.db")`` (the embedded default) or
``online_store_for("redis://host:6379/0", prefix="mlh")`` picks a backend by URI scheme and imports
it only then, so importing this package imports neither SQLite nor Redis code. Third-party
backends register under the entry point group ``mlharbor.online_stores`` as
``scheme = "package.module:ClassName"``; the class provides ``from_uri(uri, **options)``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from mlharbor._plugins import load_object
from mlharbor.errors import InvalidArgument
from mlharbor.features.online.base import OnlineRead, OnlineStore, OnlineTableSpec

__all__ = ["ONLINE_STORES", "OnlineRead", "OnlineStore", "OnlineTableSpec", "online_store_for"]

# scheme -> ("module:Class", the extra that provides its dependency)
ONLINE_STORES: dict[str, tuple[str, str | None]] = {
    "sqlite": ("mlharbor.features.online.sqlite:SQLiteOnlineStore", None),
    "redis": ("mlharbor.features.online.redis:RedisOnlineStore", "redis"),
    "rediss": ("mlharbor.features.online.redis:RedisOnlineStore", "redis"),
    "unix": ("mlharbor.features.online.redis:RedisOnlineStore", "redis"),
}


def online_store_for(uri: str, **options: Any) -> OnlineStore:
    """The online store at ``uri``, configured by ``options`` (the backend's config fields).

    InvalidArgument for an unknown scheme or option; MissingDependency when the backend's library
    is not installed (``install mlharbor[redis]``).
    """
    if not isinstance(uri, str) or "://" not in uri:
        raise InvalidArgument(f"an online store URI looks like sqlite:///online.db or redis://host:6379/0, not {uri!r}")
    scheme = uri.split("://", 1)[0].lower()
    spec, extra = ONLINE_STORES.get(scheme, (None, None))
    if spec is None:
        for entry in entry_points(group="mlharbor.online_stores"):
            if entry.name == scheme:
                spec = entry.value
                break
    if spec is None:
        raise InvalidArgument(f"no online store for URI scheme {scheme!r}; known: {sorted(ONLINE_STORES)}")
    cls: Any = load_object(spec, extra=extra)
    store: OnlineStore = cls.from_uri(uri, **options)
    return store
