"""Shared logic of online stores that keep each row as one encoded value under one encoded key.

:class:`KeyValueOnlineStore` implements the whole :class:`~.base.OnlineStore` contract once —
validation, key and row encoding (:mod:`.codec`), last-wins batching, aligning results with the
requested keys, and a cache of decoded specs — on top of eight byte-level primitives, which are
all a backend provides (``sqlite.py`` and ``redis.py`` hold nothing else).

Specs are cached per process (the first read of a table loads its spec), but every ``read`` fetches
the stored spec bytes together with the rows, in the same round trip, and compares them with the
cache, so a table dropped or redeclared by another process is noticed at once; a row written for
another layout decodes as missing.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from mlharbor.errors import Conflict, InvalidArgument, NotFound
from mlharbor.features.online.base import OnlineRead, OnlineStore, OnlineTableSpec, check_table_name
from mlharbor.features.online.codec import RowCodec
from mlharbor.features.online.layout import check_spec, layout_fingerprint

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["KeyValueOnlineStore", "iter_batches"]

_MAX_SPEC_RETRIES = 3


def iter_batches(rows: Any, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The record batches of a Table, RecordBatch or RecordBatchReader, at most ``batch_size`` rows each."""
    import pyarrow as pa

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(rows, pa.Table):
        yield from rows.to_batches(max_chunksize=batch_size)
        return
    if isinstance(rows, pa.RecordBatch):
        batches: Any = [rows]
    elif isinstance(rows, pa.RecordBatchReader):
        batches = rows
    else:
        raise InvalidArgument(f"rows must be a pyarrow Table or RecordBatchReader, not {type(rows).__name__}")
    for batch in batches:
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size)


class KeyValueOnlineStore(OnlineStore):
    """An online store over byte-level primitives: specs, and values under (table, key)."""

    def __init__(self) -> None:
        self._codecs: dict[str, tuple[bytes, RowCodec]] = {}
        self._codecs_lock = threading.Lock()

    # -- primitives a backend provides ---------------------------------------------------------

    @abstractmethod
    def _load_specs(self, tables: Sequence[str]) -> list[bytes | None]:
        """The stored spec bytes of each table (None when absent)."""

    @abstractmethod
    def _store_spec(self, table: str, spec: bytes, clear_rows: bool) -> None:
        """Store ``spec`` for ``table``; with ``clear_rows``, also remove its rows."""

    @abstractmethod
    def _fetch(
        self, tables: Sequence[str], keys: Sequence[Sequence[bytes]]
    ) -> tuple[list[bytes | None], list[list[bytes | None]]]:
        """In one round trip: the spec bytes of each table, and the live value of each of its keys."""

    @abstractmethod
    def _put(self, table: str, keys: list[bytes], values: list[bytes], ttl_seconds: int | None) -> None:
        """Upsert distinct ``keys`` with ``values``; they expire after ``ttl_seconds`` if given."""

    @abstractmethod
    def _remove(self, table: str, keys: list[bytes]) -> int:
        """Remove distinct ``keys``; how many live ones there were."""

    @abstractmethod
    def _drop(self, table: str) -> None:
        """Remove the spec, the rows and the markers of ``table``."""

    @abstractmethod
    def _set_marker(self, table: str, key: str, value: str) -> bool:
        """Store a marker; False (and nothing stored) when the table does not exist."""

    @abstractmethod
    def _get_marker(self, table: str, key: str) -> str | None:
        """A marker, or None."""

    # -- the interface -----------------------------------------------------------------------------

    def ensure_table(self, spec: OnlineTableSpec) -> None:
        check_table_name(spec.name)
        check_spec(spec)
        stored = self._load_specs([spec.name])[0]
        spec = OnlineTableSpec(spec.name, list(spec.key_columns), spec.schema.remove_metadata(), spec.ttl_seconds)
        data = spec.to_bytes()
        if stored == data:
            return
        relayout = stored is not None and layout_fingerprint(OnlineTableSpec.from_bytes(stored)) != (
            layout_fingerprint(spec)
        )
        self._store_spec(spec.name, data, clear_rows=relayout)
        self._forget(spec.name)

    def write(self, table: str, rows: pa.Table | pa.RecordBatchReader, batch_size: int = 10_000) -> int:
        codec = self._codec_now(table)
        ttl = codec.spec.ttl_seconds
        written = 0
        for batch in iter_batches(rows, batch_size):
            keys, values = codec.encode_rows(batch)
            if len(set(keys)) < len(keys):
                latest = dict(zip(keys, values, strict=True))  # later occurrences overwrite earlier ones
                keys, values = list(latest), list(latest.values())
            if keys:
                self._put(table, keys, values, ttl)
            written += batch.num_rows
        return written

    def delete(self, table: str, keys: pa.Table) -> int:
        codec = self._codec_now(table)
        encoded = [key for key in dict.fromkeys(codec.encode_keys(keys)) if key is not None]
        return self._remove(table, encoded) if encoded else 0

    def read(self, requests: list[OnlineRead]) -> list[pa.Table]:
        if not requests:
            return []
        tables = list(dict.fromkeys(check_table_name(request.table) for request in requests))
        for _ in range(_MAX_SPEC_RETRIES):
            codecs = self._cached_codecs(tables)
            plans = [codecs[r.table].read_plan(r.features) for r in requests]
            encoded = [codecs[r.table].encode_keys(r.keys) for r in requests]
            wanted: dict[str, dict[bytes | None, None]] = {table: {} for table in tables}
            for request, keys in zip(requests, encoded, strict=True):
                wanted[request.table].update(dict.fromkeys(keys))
            for keys_of_table in wanted.values():
                keys_of_table.pop(None, None)  # keys with a null part are never fetched
            key_lists = [cast("list[bytes]", list(wanted[table])) for table in tables]
            specs, values = self._fetch(tables, key_lists)
            if all(self._is_current(table, spec) for table, spec in zip(tables, specs, strict=True)):
                break
        else:  # pragma: no cover - a spec changing on every attempt
            raise Conflict(f"online tables {tables} were redeclared while being read; retry")
        found: dict[str, dict[bytes | None, bytes | None]] = {
            table: dict(zip(keys, vals, strict=True))
            for table, keys, vals in zip(tables, key_lists, values, strict=True)
        }
        results = []
        for request, keys, plan in zip(requests, encoded, plans, strict=True):
            present = found[request.table]
            results.append(codecs[request.table].decode([present.get(key) for key in keys], plan))
        return results

    def drop_table(self, table: str) -> None:
        self._drop(check_table_name(table))
        self._forget(table)

    def table_spec(self, table: str) -> OnlineTableSpec | None:
        stored = self._load_specs([check_table_name(table)])[0]
        return None if stored is None else OnlineTableSpec.from_bytes(stored)

    def set_marker(self, table: str, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgument("marker keys and values are strings")
        if not self._set_marker(check_table_name(table), key, value):
            raise NotFound(f"online table {table} does not exist")

    def get_marker(self, table: str, key: str) -> str | None:
        return self._get_marker(check_table_name(table), key)

    # -- spec cache ----------------------------------------------------------------------------------

    def _forget(self, table: str) -> None:
        with self._codecs_lock:
            self._codecs.pop(table, None)

    def _remember(self, table: str, data: bytes) -> RowCodec:
        codec = RowCodec(OnlineTableSpec.from_bytes(data))
        with self._codecs_lock:
            self._codecs[table] = (data, codec)
        return codec

    def _codec_now(self, table: str) -> RowCodec:
        """The codec of the spec stored now (writes never use a stale layout). NotFound if absent."""
        stored = self._load_specs([check_table_name(table)])[0]
        if stored is None:
            raise NotFound(f"online table {table} does not exist")
        cached = self._codecs.get(table)
        return cached[1] if cached is not None and cached[0] == stored else self._remember(table, stored)

    def _cached_codecs(self, tables: list[str]) -> dict[str, RowCodec]:
        """Codecs for ``tables``, loading the specs not cached yet in one call. NotFound if absent."""
        codecs: dict[str, RowCodec] = {}
        for table in tables:
            cached = self._codecs.get(table)
            if cached is not None:
                codecs[table] = cached[1]
        missing = [table for table in tables if table not in codecs]
        if missing:
            for table, stored in zip(missing, self._load_specs(missing), strict=True):
                if stored is None:
                    raise NotFound(f"online table {table} does not exist")
                codecs[table] = self._remember(table, stored)
        return codecs

    def _is_current(self, table: str, stored: bytes | None) -> bool:
        """Whether the cached spec of ``table`` is ``stored``; refreshes the cache when it is not."""
        if stored is None:
            self._forget(table)
            raise NotFound(f"online table {table} does not exist")
        cached = self._codecs.get(table)
        if cached is not None and cached[0] == stored:
            return True
        self._remember(table, stored)
        return False
