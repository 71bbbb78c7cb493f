"""Locked-down DuckDB connections for SQL over lake tables.

Every connection handed out here can read only the Arrow objects registered on it:

* ``enable_external_access=false`` — no file, URL or database access from SQL (``read_csv``,
  ``read_text``, ``glob``, ``COPY … TO``, ``ATTACH 'file'``, ``INSTALL``/``LOAD`` all fail);
* no extension auto-install or auto-load, no community or unsigned extensions;
* ``python_enable_replacements=false`` — SQL cannot reach Python variables by name;
* ``lock_configuration=true`` — none of the above can be changed back from SQL;
* bounded ``threads`` and ``memory_limit``.

Creating a DuckDB database costs ~15 ms, so :class:`ConnectionPool` keeps a few idle connections.
A connection goes back to the pool only after the catalogs and views a query added are dropped;
one whose clean-up fails is discarded.
"""

from __future__ import annotations

import atexit
import functools
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlharbor.errors import InvalidArgument, MlharborError, PermissionDenied

if TYPE_CHECKING:
    import duckdb

#: databases every DuckDB connection has; a lake catalog may not use these names
RESERVED_CATALOGS = frozenset({"main", "temp", "system"})
#: the name of the connection's own in-memory database
DEFAULT_CATALOG = "memory"


def default_threads() -> int:
    """Threads per query: the machine's cores, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def default_temp_directory() -> str:
    """Where DuckDB spills when a query outgrows its memory limit (not the working directory)."""
    return os.path.join(tempfile.gettempdir(), "mlharbor-duckdb")


def base_config(threads: int | None, memory_limit: str | None, temp_directory: str | None) -> dict[str, Any]:
    """Settings every connection starts with (external access is handled by the caller)."""
    config: dict[str, Any] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "python_enable_replacements": False,
        "threads": threads or default_threads(),
        "temp_directory": temp_directory or default_temp_directory(),
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    return config


def locked_connection(
    threads: int | None = None, memory_limit: str | None = None, temp_directory: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection with external access disabled and its settings locked.

    ``memory_limit`` is DuckDB syntax (``"4GB"``, ``"50%"``); each connection is its own database,
    so concurrent queries each get this much. Beyond it, queries spill to ``temp_directory``.
    """
    import duckdb

    config = base_config(threads, memory_limit, temp_directory)
    config["enable_external_access"] = False
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")
    con.execute("SET lock_configuration = true")
    return con


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB and DataFusion: wrap in double quotes, double inner ones."""
    return '"' + name.replace('"', '""') + '"'


def translate_duckdb_error(exc: Exception, what: str = "query") -> MlharborError:
    """Map a DuckDB exception to the mlharbor error tree, keeping DuckDB's message."""
    import duckdb

    message = str(exc).strip()
    if isinstance(exc, duckdb.PermissionException):
        return PermissionDenied(f"{what} refused: {message} (SQL may read lake tables only)")
    if isinstance(exc, duckdb.InterruptException):
        return InvalidArgument(f"{what} was interrupted (time limit exceeded)")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return InvalidArgument(f"{what} needs more memory than allowed: {message}")
    if isinstance(
        exc,
        (
            duckdb.ParserException,
            duckdb.BinderException,
            duckdb.CatalogException,
            duckdb.InvalidInputException,
            duckdb.ConversionException,
            duckdb.OutOfRangeException,
            duckdb.NotImplementedException,
            duckdb.TypeMismatchException,
            duckdb.ConstraintException,
            duckdb.ProgrammingError,
            duckdb.DataError,
        ),
    ):
        return InvalidArgument(f"invalid {what}: {message}")
    return MlharborError(f"{what} failed: {message}")


class ConnectionPool:
    """A small thread-safe pool of locked-down connections.

    ``acquire()`` yields a connection used by one thread at a time. The caller reports what it added
    (attached catalogs, registered view names) through :meth:`Lease.attach` / :meth:`Lease.register`
    so the pool can remove them before the connection is reused.
    """

    def __init__(
        self,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: str | None = None,
        max_idle: int = 4,
        max_native: int = 4,
    ) -> None:
        self._threads = threads
        self._memory_limit = memory_limit
        self._temp_directory = temp_directory
        self._max_idle = max_idle
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._spare: duckdb.DuckDBPyConnection | None = None
        self._max_native = max_native
        self._native_idle: OrderedDict[tuple[str, ...], duckdb.DuckDBPyConnection] = OrderedDict()
        self._lock = threading.Lock()

    def new_connection(self) -> duckdb.DuckDBPyConnection:
        """A fresh connection that is not managed by the pool (for streaming results)."""
        return locked_connection(self._threads, self._memory_limit, self._temp_directory)

    @contextmanager
    def acquire(self) -> Iterator[Lease]:
        """Lend a connection; it is cleaned and returned (or closed) when the block ends."""
        with self._lock:
            con = self._idle.pop() if self._idle else None
        if con is None:
            con = self.new_connection()
        lease = Lease(con)
        try:
            yield lease
        finally:
            self._release(lease)

    @contextmanager
    def acquire_native(self, files: list[str]) -> Iterator[Lease]:
        """Lend a dedicated connection that may read exactly ``files``.

        Such a connection is confined to its files for good (``allowed_paths`` is locked), so after
        use it is kept, cleaned, for the next query over the *same* files: a warm database answers
        about twice as fast as a new one (its Parquet metadata and buffers are cached). The few most
        recently used file sets keep one connection each. A new one is made from a spare prepared
        off the query's path, because creating a database costs ~15 ms.
        """
        from mlharbor.lake.native_scan import confine_to_files

        key = tuple(sorted(files))
        with self._lock:
            con = self._native_idle.pop(key, None)
            fresh = con is None
            if fresh:
                con, self._spare = self._spare, None
        if con is None:
            con = self._unconfined_connection()
        lease = Lease(con)
        try:
            if fresh:
                confine_to_files(con, list(key))
            yield lease
        finally:
            self._release_native(key, lease)
            if fresh:
                # not a daemon: interpreter shutdown waits for it, so no DuckDB database is being
                # built while the runtime is torn down (that aborted the process)
                threading.Thread(target=self._prepare_spare, name="mlharbor-duckdb").start()

    def _unconfined_connection(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        return duckdb.connect(":memory:", config=base_config(self._threads, self._memory_limit, self._temp_directory))

    def _prepare_spare(self) -> None:
        """Leave a fresh unconfined connection for the next new file set."""
        fresh = self._unconfined_connection()
        with self._lock:
            keep = self._spare is None
            if keep:
                self._spare = fresh
        if not keep:
            fresh.close()

    def _release_native(self, key: tuple[str, ...], lease: Lease) -> None:
        evicted: list[duckdb.DuckDBPyConnection] = []
        if lease.clean():
            with self._lock:
                if key in self._native_idle:
                    evicted.append(lease.con)
                else:
                    self._native_idle[key] = lease.con
                    while len(self._native_idle) > self._max_native:
                        evicted.append(self._native_idle.popitem(last=False)[1])
        else:
            evicted.append(lease.con)
        for con in evicted:
            con.close()

    def _release(self, lease: Lease) -> None:
        if not lease.clean():
            lease.con.close()
            return
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(lease.con)
                return
        lease.con.close()

    def close(self) -> None:
        """Close the idle connections (the pool stays usable; it makes new ones)."""
        with self._lock:
            idle, self._idle = self._idle, []
            native = list(self._native_idle.values())
            self._native_idle.clear()
            spare, self._spare = self._spare, None
        for con in [*idle, *native, *([spare] if spare is not None else [])]:
            con.close()


@functools.cache
def shared_pool(
    threads: int | None = None, memory_limit: str | None = None, temp_directory: str | None = None
) -> ConnectionPool:
    """One pool per distinct settings for the process, so engines created per request reuse connections.

    Shared pools are closed at exit, before the interpreter finalises, so no DuckDB connection is
    destroyed during finalisation.
    """
    pool = ConnectionPool(threads=threads, memory_limit=memory_limit, temp_directory=temp_directory)
    atexit.register(pool.close)
    return pool


class Lease:
    """A connection on loan from a :class:`ConnectionPool`, with what was added to it."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._catalogs: list[str] = []
        self._schemas: list[str] = []
        self._registered: list[str] = []

    def attach(self, catalog: str) -> None:
        """Make ``catalog`` exist as an in-memory database (the default one for ``memory``)."""
        if catalog in RESERVED_CATALOGS:
            raise InvalidArgument(f"catalog name {catalog!r} is reserved by the SQL engine")
        if catalog == DEFAULT_CATALOG or catalog in self._catalogs:
            return
        self.con.execute(f"ATTACH ':memory:' AS {quote_ident(catalog)}")
        self._catalogs.append(catalog)

    def create_schema(self, catalog: str, schema: str) -> None:
        """``CREATE SCHEMA IF NOT EXISTS catalog.schema``."""
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(catalog)}.{quote_ident(schema)}")
        if catalog == DEFAULT_CATALOG:
            self._schemas.append(schema)

    def register(self, name: str, obj: Any) -> None:
        """Register an Arrow object as the temporary view ``name``."""
        self.con.register(name, obj)
        self._registered.append(name)

    def clean(self) -> bool:
        """Drop what this lease added; False if the connection should not be reused."""
        try:
            for name in self._registered:
                self.con.unregister(name)
            for schema in self._schemas:
                self.con.execute(f"DROP SCHEMA IF EXISTS {quote_ident(DEFAULT_CATALOG)}.{quote_ident(schema)} CASCADE")
            for catalog in self._catalogs:
                self.con.execute(f"DETACH {quote_ident(catalog)}")
        except Exception:
            return False
        return True
