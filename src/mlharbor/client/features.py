"""``RestFunctions`` and ``RestOnline``: the function catalog and online store through a server.

Functions are fetched from the server and run here, in the client, like in a local workspace.
"""

from __future__ import annotations

import base64
import builtins
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from mlharbor.catalog.functions import FunctionBackend
from mlharbor.core.entities import FunctionInfo
from mlharbor.errors import InvalidArgument
from mlharbor.features.publish import OnlineBackend, OnlineStatus, PublishResult

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.client.http import RestClient
    from mlharbor.features.online import OnlineRead


def _path(name: str) -> str:
    return quote(name, safe="")


def _function(d: dict[str, Any]) -> FunctionInfo:
    return FunctionInfo(
        name=d["name"], version=d["version"], entry_point=d["entry_point"], source=d["source"], sha256=d["sha256"],
        parameters=tuple(d["parameters"]), return_type=d["return_type"], description=d["description"],
        created_by=d["created_by"], created_at=datetime.fromisoformat(d["created_at"]),
    )


class RestFunctions(FunctionBackend):
    def __init__(self, client: RestClient) -> None:
        self._c = client

    def register(self, name: str, source: str, entry_point: str, return_type: str,
                 description: str = "") -> FunctionInfo:
        body = {"name": name, "source": source, "entry_point": entry_point, "return_type": return_type,
                "description": description}
        return _function(self._c.json("POST", "/api/v1/functions", json=body))

    def get(self, name: str, version: int | None = None) -> FunctionInfo:
        params = {} if version is None else {"version": version}
        return _function(self._c.json("GET", f"/api/v1/functions/{_path(name)}", params=params))

    def list(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[FunctionInfo]:
        params = {k: v for k, v in {"catalog": catalog, "schema": schema}.items() if v is not None}
        return [_function(d) for d in self._c.json("GET", "/api/v1/functions", params=params)]

    def versions(self, name: str) -> builtins.list[FunctionInfo]:
        return [_function(d) for d in self._c.json("GET", f"/api/v1/functions/{_path(name)}/versions")]

    def drop(self, name: str) -> None:
        self._c.json("DELETE", f"/api/v1/functions/{_path(name)}")


class RestOnline(OnlineBackend):
    def __init__(self, client: RestClient) -> None:
        self._c = client

    def publish(self, name: str, mode: str = "incremental", ttl_seconds: int | None = None,
                batch_size: int = 10_000, progress: bool | None = None) -> PublishResult:
        body = {"mode": mode, "ttl_seconds": ttl_seconds, "batch_size": batch_size}
        d = self._c.json("POST", f"/api/v1/features/{_path(name)}/publish", json=body)
        return PublishResult(**{**d, "published_at": datetime.fromisoformat(d["published_at"])})

    def status(self, name: str) -> OnlineStatus:
        d = self._c.json("GET", f"/api/v1/features/{_path(name)}/online")
        at = d.get("published_at")
        return OnlineStatus(table=d["table"], store=d["store"], published_version=d["published_version"],
                            published_at=datetime.fromisoformat(at) if at else None,
                            table_version=d["table_version"], ttl_seconds=d["ttl_seconds"])

    def read(self, requests: builtins.list[OnlineRead]) -> builtins.list[pa.Table]:
        import pyarrow as pa

        if not requests:
            return []
        body = {"format": "arrow", "requests": [
            {"table": r.table, "keys": r.keys.to_pydict(), "features": r.features} for r in requests]}
        try:
            payload = orjson.dumps(body)
        except TypeError as exc:
            raise InvalidArgument(f"keys must be JSON values (numbers, strings, booleans): {exc}") from None
        d = self._c.json("POST", "/api/v1/features/online/read", content=payload,
                         headers={"Content-Type": "application/json"})
        return [pa.ipc.open_stream(pa.py_buffer(base64.b64decode(r["arrow_ipc"]))).read_all() for r in d["results"]]

    def unpublish(self, name: str) -> None:
        self._c.json("DELETE", f"/api/v1/features/{_path(name)}/online")
