"""The embedded online store: one SQLite file in WAL mode.

Three tables: ``online_tables`` (name → id and spec), ``online_rows`` (``(table_id, key)`` primary
key, the encoded row as a BLOB and an expiry time in epoch milliseconds; ``WITHOUT ROWID`` so a
lookup is one B-tree descent) and ``online_markers``. A read is two statements: the specs of the
tables it touches, then the rows of all its keys (``table_id = ? AND key IN (…)`` per table, joined
with ``UNION ALL``). Expired rows are filtered out at read time and purged by the next write.

Writes are upserts in key (B-tree) order, one transaction per batch. Changing one row rewrites its
whole page (into the WAL, then into the file at the checkpoint), so a publish of rows at random keys
costs about a page per row: a new file gets 1 KiB pages (``page_size``) rather than SQLite's 4 KiB.
A file keeps the page size it was made with; files made with other sizes work unchanged.

Connections come from a small pool (one per concurrent caller), so the store can be shared by the
threads of a server; WAL lets readers proceed while one writer commits.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlharbor.errors import BackendUnavailable, InvalidArgument, NotFound
from mlharbor.features.online.kv import KeyValueOnlineStore

__all__ = ["SQLiteOnlineStore", "SQLiteOnlineStoreConfig"]

_CHUNK = 5_000  # keys per statement, well under SQLITE_MAX_VARIABLE_NUMBER
_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_tables (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, spec BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS online_rows (
    table_id INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, expires_at INTEGER,
    PRIMARY KEY (table_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS online_rows_expiry ON online_rows (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS online_markers (
    table_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (table_id, key)) WITHOUT ROWID;
"""
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_PAGE_SIZE = 1024  # bytes, for new files; see the module docstring


class SQLiteOnlineStoreConfig(BaseModel):
    """Options of the SQLite online store (``sqlite:///relative.db``, ``sqlite:////absolute.db``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sqlite"] = "sqlite"
    path: str = Field(min_length=1)
    busy_timeout_seconds: float = Field(default=30.0, gt=0)
    synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"
    mmap_size: int = Field(default=256 * 1024 * 1024, ge=0)
    page_size: int = Field(default=_PAGE_SIZE, ge=512, le=65536)

    @field_validator("page_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("page_size must be a power of two between 512 and 65536")
        return value


class SQLiteOnlineStore(KeyValueOnlineStore):
    """Online tables in one SQLite file. ``clock`` (epoch seconds) decides expiry; tests inject one."""

    supports_ttl = True

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_seconds: float = 30.0,
        synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL",
        mmap_size: int = 256 * 1024 * 1024,
        page_size: int = _PAGE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise InvalidArgument("the SQLite online store needs a file path (connections are pooled)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._options = (busy_timeout_seconds, synchronous, int(mmap_size), int(page_size))
        self._clock = clock
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        with self._connection() as conn:
            conn.executescript(_SCHEMA)

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> SQLiteOnlineStore:
        """The store of ``sqlite:///path.db`` (three slashes: relative; four: absolute) with ``options``
        of :class:`SQLiteOnlineStoreConfig` (``clock`` is passed through)."""
        if not uri.lower().startswith("sqlite:///"):
            raise InvalidArgument(f"not a SQLite online store URI: {uri!r} (use sqlite:///path/to/online.db)")
        clock = options.pop("clock", time.time)
        try:
            config = SQLiteOnlineStoreConfig(path=uri[len("sqlite:///") :].split("?", 1)[0], **options)
        except ValidationError as exc:
            raise InvalidArgument(f"invalid SQLite online store options: {exc}") from None
        return cls(
            config.path,
            busy_timeout_seconds=config.busy_timeout_seconds,
            synchronous=config.synchronous,
            mmap_size=config.mmap_size,
            page_size=config.page_size,
            clock=clock,
        )

    # -- connections ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        timeout, synchronous, mmap_size, page_size = self._options
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA page_size={page_size}")  # takes effect only in a file without pages yet
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(f"PRAGMA mmap_size={mmap_size}")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: publishes touch many pages between commits
        with self._lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise BackendUnavailable(f"the online store {self.path} is closed")
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"SQLite online store {self.path}: {exc}") from exc
        finally:
            if self._closed:
                conn.close()
            else:
                self._idle.put(conn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: the write lock is taken up front)."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        self._closed = True
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- primitives -----------------------------------------------------------------------------

    def _load_specs(self, tables: Sequence[str]) -> list[bytes | None]:
        with self._connection() as conn:
            return [spec for _, spec in self._table_rows(conn, tables)]

    @staticmethod
    def _table_rows(conn: sqlite3.Connection, tables: Sequence[str]) -> list[tuple[int | None, bytes | None]]:
        marks = ",".join("?" * len(tables))
        found = {
            name: (table_id, spec)
            for name, table_id, spec in conn.execute(
                f"SELECT name, id, spec FROM online_tables WHERE name IN ({marks})", list(tables)
            )
        }
        return [found.get(table, (None, None)) for table in tables]

    def _store_spec(self, table: str, spec: bytes, clear_rows: bool) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO online_tables (name, spec) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
                (table, spec),
            )
            if clear_rows:
                conn.execute(
                    "DELETE FROM online_rows WHERE table_id = (SELECT id FROM online_tables WHERE name = ?)", (table,)
                )

    def _fetch(
        self, tables: Sequence[str], keys: Sequence[Sequence[bytes]]
    ) -> tuple[list[bytes | None], list[list[bytes | None]]]:
        now = self._now_ms()
        with self._connection() as conn:
            table_rows = self._table_rows(conn, tables)
            found: dict[tuple[int, bytes], bytes] = {}
            group: list[tuple[int, Sequence[bytes]]] = []
            size = 0
            for (table_id, _), table_keys in zip(table_rows, keys, strict=True):
                for start in range(0, len(table_keys) if table_id is not None else 0, _CHUNK):
                    chunk = table_keys[start : start + _CHUNK]
                    if size + len(chunk) > _CHUNK:
                        found.update(self._select(conn, group, now))
                        group, size = [], 0
                    group.append((cast(int, table_id), chunk))
                    size += len(chunk)
            if group:
                found.update(self._select(conn, group, now))
        values: list[list[bytes | None]] = [
            [found.get((table_id, key)) for key in table_keys] if table_id is not None else [None] * len(table_keys)
            for (table_id, _), table_keys in zip(table_rows, keys, strict=True)
        ]
        return [spec for _, spec in table_rows], values

    @staticmethod
    def _select(
        conn: sqlite3.Connection, lookups: list[tuple[int, Sequence[bytes]]], now: int
    ) -> dict[tuple[int, bytes], bytes]:
        """The live rows of several (table id, keys) lookups, in one statement."""
        parts: list[str] = []
        params: list[Any] = []
        for table_id, chunk in lookups:
            parts.append(
                "SELECT table_id, key, value FROM online_rows "
                f"WHERE table_id = ? AND key IN ({','.join('?' * len(chunk))}) AND {_LIVE}"
            )
            params += (table_id, *chunk, now)
        rows = conn.execute(" UNION ALL ".join(parts), params).fetchall()
        return {(table_id, key): value for table_id, key, value in rows}

    def _table_id(self, conn: sqlite3.Connection, table: str) -> int:
        row = conn.execute("SELECT id FROM online_tables WHERE name = ?", (table,)).fetchone()
        if row is None:
            raise NotFound(f"online table {table} does not exist")
        return int(row[0])

    def _put(self, table: str, keys: list[bytes], values: list[bytes], ttl_seconds: int | None) -> None:
        now = self._now_ms()
        expires = None if ttl_seconds is None else now + ttl_seconds * 1000
        rows = sorted(zip(keys, values, strict=True), key=itemgetter(0))  # B-tree order: each page once, in turn
        with self._transaction() as conn:
            table_id = self._table_id(conn, table)
            conn.execute("DELETE FROM online_rows WHERE expires_at <= ?", (now,))
            conn.executemany(
                "INSERT INTO online_rows (table_id, key, value, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (table_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                [(table_id, key, value, expires) for key, value in rows],
            )

    def _remove(self, table: str, keys: list[bytes]) -> int:
        removed = 0
        with self._transaction() as conn:
            table_id = self._table_id(conn, table)
            conn.execute("DELETE FROM online_rows WHERE expires_at <= ?", (self._now_ms(),))
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                cursor = conn.execute(
                    f"DELETE FROM online_rows WHERE table_id = ? AND key IN ({','.join('?' * len(chunk))})",
                    (table_id, *chunk),
                )
                removed += cursor.rowcount
        return removed

    def _drop(self, table: str) -> None:
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM online_tables WHERE name = ?", (table,)).fetchone()
            if row is None:
                return
            for statement in (
                "DELETE FROM online_rows WHERE table_id = ?",
                "DELETE FROM online_markers WHERE table_id = ?",
                "DELETE FROM online_tables WHERE id = ?",
            ):
                conn.execute(statement, (row[0],))

    def _set_marker(self, table: str, key: str, value: str) -> bool:
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO online_markers (table_id, key, value) SELECT id, ?, ? FROM online_tables WHERE name = ? "
                "ON CONFLICT (table_id, key) DO UPDATE SET value = excluded.value",
                (key, value, table),
            )
            return cursor.rowcount > 0

    def _get_marker(self, table: str, key: str) -> str | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT m.value FROM online_markers m JOIN online_tables t ON m.table_id = t.id "
                "WHERE t.name = ? AND m.key = ?",
                (table, key),
            ).fetchone()
        return None if row is None else str(row[0])
