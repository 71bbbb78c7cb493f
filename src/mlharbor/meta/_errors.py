"""Translation of SQLAlchemy errors into the mlharbor error tree at the store's boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from mlharbor.errors import AlreadyExists, BackendUnavailable, Conflict

# PostgreSQL SQLSTATE class 40: serialization failure, deadlock; the transaction may be retried.
_RETRYABLE_SQLSTATE_CLASS = "40"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", "") or "")


@contextmanager
def unavailable_on_connect(display_url: str) -> Iterator[None]:
    """Any failure while connecting means the store cannot be reached."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise BackendUnavailable(
            f"cannot connect to the metadata store {display_url}: {_first_line(exc)}"
        ) from exc


@contextmanager
def translate_errors(display_url: str) -> Iterator[None]:
    """Map database errors raised inside a transaction to mlharbor errors.

    Integrity violations not handled by a repository become AlreadyExists; lost connections,
    locked SQLite files and driver failures become BackendUnavailable; PostgreSQL serialization
    failures and deadlocks become Conflict (retry the transaction).
    """
    try:
        yield
    except IntegrityError as exc:
        raise AlreadyExists(f"the change conflicts with an existing record: {_first_line(exc)}") from exc
    except (OperationalError, InterfaceError) as exc:
        if _sqlstate(exc).startswith(_RETRYABLE_SQLSTATE_CLASS):
            raise Conflict(
                f"the metadata transaction conflicted with a concurrent one, retry: {_first_line(exc)}"
            ) from exc
        if isinstance(exc, InterfaceError) or exc.connection_invalidated or "locked" in str(exc):
            raise BackendUnavailable(
                f"the metadata store {display_url} is unavailable: {_first_line(exc)}"
            ) from exc
        raise
