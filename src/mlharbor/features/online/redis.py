"""The team online store: Redis (the only mlharbor module that imports ``redis``).

Keys, under a configurable prefix (default ``mlh``)::

    {prefix}:{table}:spec        string: the table's spec (see OnlineTableSpec.to_bytes)
    {prefix}:{table}:markers     hash: the table's markers
    {prefix}:{table}:[…]         string: one encoded row per entity key (keys are JSON arrays)

A read is a **single MGET** of the specs of the tables it touches and of every requested key, so
one round trip answers many keys across several tables, and the spec check comes with it. Writes
are pipelined per batch (``MSET``, or ``SET … PX`` for tables with a TTL, which Redis expires
itself). Dropping a table or changing its layout removes its rows with ``SCAN`` + ``UNLINK``; rows
written concurrently with a drop may survive it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlharbor.errors import BackendUnavailable, InvalidArgument
from mlharbor.features.online.kv import KeyValueOnlineStore

__all__ = ["RedisOnlineStore", "RedisOnlineStoreConfig"]

_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_UNLINK_CHUNK = 10_000
# Set a marker only while the table's spec exists, atomically (a dropped table gets no markers).
_SET_MARKER = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
return 0
"""


class RedisOnlineStoreConfig(BaseModel):
    """Options of the Redis online store (``redis://host:port/db``, ``rediss://`` for TLS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["redis"] = "redis"
    url: str = Field(min_length=1)
    prefix: str = "mlh"
    socket_timeout_seconds: float | None = Field(default=5.0, gt=0)
    socket_connect_timeout_seconds: float | None = Field(default=5.0, gt=0)
    max_connections: int | None = Field(default=None, gt=0)

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError("prefix: letters, digits, '_', '.' and '-' only (at most 64)")
        return value


class RedisOnlineStore(KeyValueOnlineStore):
    """Online tables in Redis; safe to share between threads (redis-py pools its connections)."""

    supports_ttl = True

    def __init__(self, config: RedisOnlineStoreConfig) -> None:
        super().__init__()
        self.config = config
        options: dict[str, Any] = {
            "socket_timeout": config.socket_timeout_seconds,
            "socket_connect_timeout": config.socket_connect_timeout_seconds,
        }
        if config.max_connections is not None:
            options["max_connections"] = config.max_connections
        try:
            self._redis = redis.Redis.from_url(config.url, **options)
        except ValueError as exc:
            raise InvalidArgument(f"invalid Redis URL: {exc}") from None
        pool = self._redis.connection_pool.connection_kwargs
        self._where = f"{pool.get('host', pool.get('path', '?'))}:{pool.get('port', '')}/{pool.get('db', 0)}"
        self._set_marker_script = self._redis.register_script(_SET_MARKER)
        self._command: Callable[..., Any] = self._redis.execute_command

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> RedisOnlineStore:
        """The store at ``redis://host:port/db`` with ``options`` of :class:`RedisOnlineStoreConfig`."""
        try:
            return cls(RedisOnlineStoreConfig(url=uri, **options))
        except ValidationError as exc:
            raise InvalidArgument(f"invalid Redis online store options: {exc}") from None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BackendUnavailable(f"cannot reach Redis at {self._where}: {exc}") from exc
        except redis.RedisError as exc:
            raise BackendUnavailable(f"Redis at {self._where} failed: {exc}") from exc

    def _ns(self, table: str) -> bytes:
        return f"{self.config.prefix}:{table}:".encode()

    def close(self) -> None:
        self._redis.close()
        self._redis.connection_pool.disconnect()

    # -- primitives -----------------------------------------------------------------------------

    def _load_specs(self, tables: Sequence[str]) -> list[bytes | None]:
        with self._errors():
            specs: list[bytes | None] = self._command("MGET", *[self._ns(t) + b"spec" for t in tables])
        return specs

    def _store_spec(self, table: str, spec: bytes, clear_rows: bool) -> None:
        with self._errors():
            self._redis.set(self._ns(table) + b"spec", spec)
            if clear_rows:
                self._clear_rows(table)

    def _fetch(
        self, tables: Sequence[str], keys: Sequence[Sequence[bytes]]
    ) -> tuple[list[bytes | None], list[list[bytes | None]]]:
        names = [self._ns(table) + b"spec" for table in tables]
        for table, table_keys in zip(tables, keys, strict=True):
            ns = self._ns(table)
            names += [ns + key for key in table_keys]
        with self._errors():
            answer: list[bytes | None] = self._command("MGET", *names)
        values, at = [], len(tables)
        for table_keys in keys:
            values.append(answer[at : at + len(table_keys)])
            at += len(table_keys)
        return answer[: len(tables)], values

    def _put(self, table: str, keys: list[bytes], values: list[bytes], ttl_seconds: int | None) -> None:
        ns = self._ns(table)
        with self._errors():
            if ttl_seconds is None:
                pairs: list[bytes] = []
                for key, value in zip(keys, values, strict=True):
                    pairs += (ns + key, value)
                self._command("MSET", *pairs)
                return
            milliseconds = ttl_seconds * 1000
            pipe = self._redis.pipeline(transaction=False)
            for key, value in zip(keys, values, strict=True):
                pipe.set(ns + key, value, px=milliseconds)
            pipe.execute()

    def _remove(self, table: str, keys: list[bytes]) -> int:
        ns = self._ns(table)
        removed = 0
        with self._errors():
            for start in range(0, len(keys), _UNLINK_CHUNK):
                chunk = [ns + key for key in keys[start : start + _UNLINK_CHUNK]]
                removed += int(self._command("UNLINK", *chunk))
        return removed

    def _clear_rows(self, table: str) -> None:
        pattern = self._ns(table) + b"[[]*"  # row keys only: they start with "["
        batch: list[bytes] = []
        for key in self._redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= _UNLINK_CHUNK:
                self._command("UNLINK", *batch)
                batch = []
        if batch:
            self._command("UNLINK", *batch)

    def _drop(self, table: str) -> None:
        ns = self._ns(table)
        with self._errors():
            self._command("DEL", ns + b"spec", ns + b"markers")
            self._clear_rows(table)

    def _set_marker(self, table: str, key: str, value: str) -> bool:
        ns = self._ns(table)
        with self._errors():
            return bool(self._set_marker_script(keys=[ns + b"spec", ns + b"markers"], args=[key, value]))

    def _get_marker(self, table: str, key: str) -> str | None:
        with self._errors():
            value = self._redis.hget(self._ns(table) + b"markers", key)
        if value is None:
            return None
        return value if isinstance(value, str) else bytes(value).decode("utf-8")
