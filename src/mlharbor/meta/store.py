"""The metadata store: engine set-up per dialect, migrations, transactions."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from mlharbor.errors import Conflict, InvalidArgument, MissingDependency
from mlharbor.meta._errors import translate_errors, unavailable_on_connect
from mlharbor.meta.models import VERSION_TABLE
from mlharbor.meta.unit_of_work import UnitOfWork

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# SQLite waits this long for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_S = 30
# PostgreSQL: fail fast when the server cannot be reached.
PG_CONNECT_TIMEOUT_S = 10
# Key of the PostgreSQL advisory lock that serialises migrations ("mlharbor" in ASCII).
_MIGRATION_LOCK_KEY = 0x6D6C6861_72626F72

# Alembic installs its ``context``/``op`` proxies globally per process, so migrations run by
# several threads at once must take turns; processes are serialised by the database lock.
_ALEMBIC_LOCK = threading.Lock()

_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def _parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidArgument(f"invalid metadata store URL {url!r}: {exc}") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise InvalidArgument(
            f"unsupported metadata store URL scheme {parsed.drivername!r}: use "
            "'sqlite:////absolute/path.db' or 'postgresql+psycopg://user@host:5432/db'"
        )
    return parsed.set(drivername=driver)


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL unless it is already (reading the mode takes no lock).

    Changing the mode needs the file to itself, and SQLite does not always wait for the busy
    timeout there: while another connection of a brand-new database is migrating, the change
    fails at once with "database is locked". Retry until the timeout instead.
    """
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        mode = cursor.execute("PRAGMA journal_mode").fetchone()
        if mode and str(mode[0]).lower() in ("wal", "memory"):
            return
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver (it skips it for DDL and SAVEPOINT); the "begin"
    # listener below emits it, so migrations and savepoints are truly transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        _enable_wal(cursor)
        # NORMAL is the documented setting for WAL: commits survive a crash of the process and the
        # file cannot be corrupted; only a power loss can roll back the last commits. FULL would
        # fsync on every commit and cost a few milliseconds per metadata transaction.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a transaction that reads and then writes cannot
    # fail with SQLITE_BUSY half-way, it waits (busy_timeout) for other writers at BEGIN instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_engine(url: URL) -> Engine:
    if _is_memory(url):
        # One shared connection, or each checkout would see its own empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _postgresql_engine(url: URL) -> Engine:
    try:
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})
    except ModuleNotFoundError as exc:
        raise MissingDependency(
            "a PostgreSQL metadata store needs psycopg 3: install mlharbor[postgres]"
        ) from exc


def alembic_config() -> Config:
    """An Alembic configuration pointing at the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _current_heads(connection: Connection) -> set[str]:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return set(context.get_current_heads())


class MetadataStore:
    """The metadata database of a workspace, on SQLite or PostgreSQL.

    ``url`` is a SQLAlchemy URL: ``sqlite:////abs/path.db`` (the parent directory is created;
    WAL journal, foreign keys on, 30 s busy timeout) or ``postgresql+psycopg://user@host/db``
    (``postgresql://`` means the same). Nothing connects until :meth:`upgrade` or
    :meth:`transaction` is called. The store is safe to share between threads.
    """

    url: str
    dialect: str

    def __init__(self, url: str) -> None:
        parsed = _parse_url(url)
        self.url = parsed.render_as_string(hide_password=False)
        self.dialect = parsed.get_backend_name()
        self._display_url = parsed.render_as_string(hide_password=True)
        if self.dialect == "sqlite":
            self._engine = _sqlite_engine(parsed)
        else:
            self._engine = _postgresql_engine(parsed)

    def __repr__(self) -> str:
        return f"MetadataStore({self._display_url!r})"

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision shipped with this version of mlharbor.

        Idempotent and cheap when the schema is current (one query). Safe when several
        processes or threads upgrade the same database at once: migrations run inside one
        transaction holding a lock (PostgreSQL advisory lock, SQLite write lock). Raises
        Conflict if the database was migrated by a newer mlharbor, BackendUnavailable if it
        cannot be reached.
        """
        config = alembic_config()
        script = ScriptDirectory.from_config(config)
        # SQLite: the BEGIN IMMEDIATE of connection.begin() holds the write lock from here on.
        with self._connect() as connection, translate_errors(self._display_url), connection.begin():
            if _current_heads(connection) == set(script.get_heads()):
                return
            if self.dialect == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
            self._migrate_locked(connection, config, script)

    def _migrate_locked(self, connection: Connection, config: Config, script: ScriptDirectory) -> None:
        """Run the pending migrations; the caller holds the migration lock in this transaction."""
        current = _current_heads(connection)  # again: another process may have just migrated
        if current == set(script.get_heads()):
            return
        unknown = current - {revision.revision for revision in script.walk_revisions()}
        if unknown:
            raise Conflict(
                f"the metadata store {self._display_url} is at revision {', '.join(sorted(unknown))}, "
                "unknown to this version of mlharbor: upgrade mlharbor"
            )
        config.attributes["connection"] = connection
        with _ALEMBIC_LOCK:
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """One database transaction: commit when the block exits, roll back if it raises.

        Database errors surface as mlharbor errors (AlreadyExists, Conflict,
        BackendUnavailable). On SQLite every transaction takes the write lock at BEGIN
        (``BEGIN IMMEDIATE``), so transactions run one at a time across processes: keep them
        short, and do not nest transactions of one store (the inner one would wait for the
        outer one's lock, then fail after the busy timeout).
        """
        with (
            self._connect() as connection,
            translate_errors(self._display_url),
            Session(bind=connection, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield UnitOfWork(session)

    def dispose(self) -> None:
        """Close every pooled connection. The store reconnects if it is used again."""
        self._engine.dispose()

    def _connect(self) -> Connection:
        with unavailable_on_connect(self._display_url):
            return self._engine.connect()
