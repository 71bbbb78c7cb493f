"""Helpers shared by the repositories: dialect-aware upserts and duplicate detection."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Executable, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlharbor.errors import AlreadyExists, InvalidArgument
from mlharbor.meta.models import Base

ConflictInsert = postgresql.Insert | sqlite.Insert
E = TypeVar("E", bound=StrEnum)


def enum_value(enum: type[E], value: E | str) -> E:
    """``value`` as a member of ``enum``; InvalidArgument listing the valid values otherwise."""
    try:
        return enum(value)
    except ValueError:
        valid = ", ".join(member.value for member in enum)
        raise InvalidArgument(f"invalid {enum.__name__} {value!r}: use one of {valid}") from None


def conflict_insert(session: Session, model: type[Base]) -> ConflictInsert:
    """An INSERT into ``model``'s table that supports ``ON CONFLICT`` on the session's dialect."""
    table = cast(Table, model.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def execute_core(session: Session, statement: Executable) -> CursorResult[Any]:
    """Run a Core DML statement in the session's transaction, after flushing pending ORM changes.

    Callers that read rows afterwards use ``populate_existing`` so the identity map is refreshed.
    ``rowcount`` of the result is reliable: it is read before SQLAlchemy closes the cursor (with
    psycopg 3.3 an INSERT's rowcount otherwise reads -1).
    """
    session.flush()
    return session.connection().execute(statement, execution_options={"preserve_rowcount": True})


def add_unique(session: Session, row: Base, what: str) -> None:
    """Insert ``row`` now, inside a SAVEPOINT; raise AlreadyExists naming ``what`` on a duplicate.

    The SAVEPOINT keeps the enclosing transaction usable after the failed insert, so a caller may
    catch AlreadyExists and carry on.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise AlreadyExists(f"{what} already exists") from exc
