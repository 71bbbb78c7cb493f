"""Fixtures shared by every test directory.

PostgreSQL: tests get throwaway databases on the server at ``MLHARBOR_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, trust auth). When the server cannot be reached,
tests that need it fail with a message saying so; they are never skipped, because CI starts it
(``.ci/run``).

- ``postgres_server``: creates and drops databases (session scope).
- ``postgres_database``: one fresh database for the whole session, dropped at the end.
- ``fresh_postgres_database``: a fresh, empty database per test.
- ``metadata_url``: a fresh, empty metadata store URL per test, for SQLite and PostgreSQL (the
  PostgreSQL case carries the ``integration`` marker).
- ``ray_cluster``: a local Ray started once for the session (this process is its driver); its address.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

PG_SERVER_ENV = "MLHARBOR_TEST_PG"
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresServer:
    """Creates and drops uniquely named test databases (``mlh_test_<hex>``) on one server."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self._created: list[str] = []

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.server_url, autocommit=True, connect_timeout=10)

    def create_database(self) -> str:
        """Create an empty database; return its SQLAlchemy URL (``postgresql+psycopg://``)."""
        from psycopg import sql

        name = f"mlh_test_{secrets.token_hex(6)}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        url = make_url(self.server_url).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` even if connections to it are still open."""
        from psycopg import sql

        name = make_url(url).database
        assert name is not None and name.startswith("mlh_test_")
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self._created:
            self._created.remove(name)

    def drop_all(self) -> None:
        """Drop every database this object created and has not dropped yet."""
        for name in list(self._created):
            self.drop_database(f"postgresql+psycopg:///{name}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The test PostgreSQL server; fails the requesting test clearly when it is unreachable."""
    server_url = os.environ.get(PG_SERVER_ENV, DEFAULT_PG_SERVER)
    try:
        import psycopg
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[dev]'", pytrace=False)
    error: Exception | None = None
    try:
        psycopg.connect(server_url, autocommit=True, connect_timeout=5).close()
    except psycopg.Error as exc:
        error = exc
    if error is not None:
        pytest.fail(
            f"PostgreSQL is not reachable at {server_url}: {error}. Start it (.ci/run does) or "
            f"point {PG_SERVER_ENV} at a server with trust auth.",
            pytrace=False,
        )
    server = PostgresServer(server_url)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> str:
    """One fresh database shared by the whole session (dropped at its end): its SQLAlchemy URL."""
    return postgres_server.create_database()


@pytest.fixture
def fresh_postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards: its SQLAlchemy URL."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh, empty (not migrated) metadata store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"
    url: str = request.getfixturevalue("fresh_postgres_database")
    return url


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray (2 CPUs, no dashboard) started for the whole session by this process, which stays
    connected as its driver, and shut down at the end; yields its address for other drivers."""
    import contextlib

    import ray

    # Ray's processes keep the working directory they start in: one that outlives every test
    with contextlib.chdir(tmp_path_factory.getbasetemp()):
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="mlharbor-tests")
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def _wait_until(predicate: Any, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {getattr(predicate, '__name__', predicate)}")


@pytest.fixture
def wait_until() -> Any:
    """``wait_until(predicate, timeout=60)``: poll until ``predicate()`` is true; AssertionError at the timeout."""
    return _wait_until
