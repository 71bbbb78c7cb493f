"""``RestTables``: the TableBackend that calls a server's table routes."""

from __future__ import annotations

import base64
import builtins
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlharbor.catalog.base import TableBackend, TableDescription
from mlharbor.core.entities import LineageEdge, LineageNode, TableInfo
from mlharbor.lake.base import Commit, WriteMode, WriteResult

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.client.http import RestClient

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _info(d: dict[str, Any]) -> TableInfo:
    return TableInfo(
        name=d["name"], location=d["location"], owner=d["owner"], comment=d["comment"], tags=d["tags"],
        partition_by=tuple(d["partition_by"]), created_by=d["created_by"],
        created_at=datetime.fromisoformat(d["created_at"]), updated_at=datetime.fromisoformat(d["updated_at"]),
        kind=d.get("kind", "table"), properties=d.get("properties", {}),
    )


def _schema_b64(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


class _ResponseStream:
    """A read-only file over an httpx byte stream, for ``pa.ipc.open_stream``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self.closed = True


class RestTables(TableBackend):
    """Table operations over HTTP; Arrow travels as IPC streams."""

    def __init__(self, client: RestClient) -> None:
        self._c = client

    @staticmethod
    def _path(name: str, suffix: str = "") -> str:
        return f"/api/v1/tables/{quote(name, safe='')}{suffix}"

    def create(self, name: str, schema: pa.Schema, partition_by: list[str], comment: str,
               tags: dict[str, str], if_not_exists: bool, kind: str = "table",
               properties: dict[str, Any] | None = None) -> TableInfo:
        body = {"name": name, "schema_ipc": _schema_b64(schema), "partition_by": partition_by,
                "comment": comment, "tags": tags, "if_not_exists": if_not_exists, "kind": kind,
                "properties": properties or {}}
        return _info(self._c.json("POST", "/api/v1/tables", json=body))

    def list(self, catalog: str | None, schema: str | None, kind: str | None = None) -> builtins.list[TableInfo]:
        params = {k: v for k, v in {"catalog": catalog, "schema": schema, "kind": kind}.items() if v}
        return [_info(d) for d in self._c.json("GET", "/api/v1/tables", params=params)]

    def describe(self, name: str) -> TableDescription:
        import pyarrow as pa

        d = self._c.json("GET", self._path(name))
        schema = pa.ipc.read_schema(pa.BufferReader(base64.b64decode(d["schema_ipc"])))
        return TableDescription(info=_info(d["table"]), schema=schema, version=d["version"],
                                num_files=d["num_files"], size_bytes=d["size_bytes"], num_rows=d["num_rows"],
                                environment=d["environment"])

    def update(self, name: str, comment: str | None, tags: dict[str, str] | None, owner: str | None,
               properties: dict[str, Any] | None = None) -> TableInfo:
        body = {k: v for k, v in {"comment": comment, "tags": tags, "owner": owner,
                                  "properties": properties}.items() if v is not None}
        return _info(self._c.json("PATCH", self._path(name), json=body))

    def drop(self, name: str) -> None:
        self._c.request("DELETE", self._path(name))

    def write(self, name: str, data: pa.Table | pa.RecordBatchReader, mode: WriteMode, keys: builtins.list[str] | None,
              txn_id: str | None, schema_evolution: bool, sources: dict[str, int]) -> WriteResult:
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        batches = data.to_batches() if isinstance(data, pa.Table) else data
        with pa.ipc.new_stream(sink, data.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        params: dict[str, Any] = {"mode": mode, "schema_evolution": str(schema_evolution).lower()}
        if keys:
            params["keys"] = ",".join(keys)
        if txn_id:
            params["txn_id"] = txn_id
        if sources:
            params["sources"] = json.dumps(sources)
        d = self._c.json("POST", self._path(name, "/rows"), params=params, content=sink.getvalue().to_pybytes(),
                         headers={"Content-Type": ARROW_STREAM})
        return WriteResult(version=d["version"], applied=d["applied"], num_rows=d["num_rows"], metrics=d["metrics"])

    @staticmethod
    def _read_params(columns: builtins.list[str] | None, filter: str | None, version: int | None,
                     timestamp: datetime | None, limit: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"format": "arrow"}
        if columns:
            params["columns"] = ",".join(columns)
        if filter:
            params["filter"] = filter
        if version is not None:
            params["version"] = version
        if timestamp is not None:
            params["timestamp"] = timestamp.isoformat()
        if limit is not None:
            params["limit"] = limit
        return params

    def read(self, name: str, columns: builtins.list[str] | None, filter: str | None, version: int | None,
             timestamp: datetime | None, limit: int | None) -> pa.Table:
        import pyarrow as pa

        params = self._read_params(columns, filter, version, timestamp, limit)
        body = self._c.request("GET", self._path(name, "/rows"), params=params).content
        return pa.ipc.open_stream(pa.BufferReader(body)).read_all()

    def scan(self, name: str, columns: builtins.list[str] | None, filter: str | None, version: int | None,
             timestamp: datetime | None) -> pa.RecordBatchReader:
        import pyarrow as pa

        params = self._read_params(columns, filter, version, timestamp)
        stream_cm = self._c.stream("GET", self._path(name, "/rows"), params=params)
        response = stream_cm.__enter__()
        reader = pa.ipc.open_stream(_ResponseStream(response.iter_bytes()))

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                stream_cm.__exit__(None, None, None)

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def history(self, name: str, limit: int | None) -> builtins.list[Commit]:
        params = {"limit": limit} if limit else {}
        return [
            Commit(version=c["version"], timestamp=datetime.fromisoformat(c["timestamp"]), operation=c["operation"],
                   parameters=c["parameters"], metrics=c["metrics"], actor=c["actor"],
                   request_id=c["request_id"], txn_id=c["txn_id"])
            for c in self._c.json("GET", self._path(name, "/history"), params=params)
        ]

    def changes(self, name: str, from_version: int, to_version: int | None) -> pa.Table:
        import pyarrow as pa

        params: dict[str, Any] = {"from_version": from_version, "format": "arrow"}
        if to_version is not None:
            params["to_version"] = to_version
        body = self._c.request("GET", self._path(name, "/changes"), params=params).content
        return pa.ipc.open_stream(pa.BufferReader(body)).read_all()

    def optimize(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._c.json("POST", self._path(name, "/optimize"))
        return result

    def vacuum(self, name: str, retain_hours: float, dry_run: bool) -> builtins.list[str]:
        files: builtins.list[str] = self._c.json("POST", self._path(name, "/vacuum"),
                                        json={"retain_hours": retain_hours, "dry_run": dry_run})
        return files

    def lineage(self, name: str) -> builtins.list[LineageEdge]:
        return [
            LineageEdge(LineageNode.parse(d["source"]), LineageNode.parse(d["target"]), d["relation"],
                        datetime.fromisoformat(d["created_at"]), d["created_by"])
            for d in self._c.json("GET", f"/api/v1/lineage/{quote(name, safe='')}")
        ]

    def sql(self, query: str, params: builtins.list[Any] | dict[str, Any] | None) -> pa.Table:
        import pyarrow as pa

        payload = {"query": query, "params": params, "format": "arrow"}
        body = self._c.request("POST", "/api/v1/sql", json=payload).content
        return pa.ipc.open_stream(pa.BufferReader(body)).read_all()
