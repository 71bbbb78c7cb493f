"""A small string key-value table for markers and cursors."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mlharbor.meta.models import KeyValueRow
from mlharbor.meta.repositories._common import conflict_insert, execute_core


class KeyValueRepository:
    """String values by string key, written atomically (upserts, insert-if-absent)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or None if there is none."""
        stmt = select(KeyValueRow.value).where(KeyValueRow.key == key)
        return self._session.scalars(stmt).one_or_none()

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any previous value (atomic upsert)."""
        stmt = conflict_insert(self._session, KeyValueRow).values(key=key, value=value)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value})
        execute_core(self._session, stmt)

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it has no value)."""
        self._session.execute(delete(KeyValueRow).where(KeyValueRow.key == key))

    def set_if_absent(self, key: str, value: str) -> bool:
        """Store ``value`` only if ``key`` has no value; True if this call stored it.

        Atomic: of several concurrent callers (threads, processes, servers) exactly one gets True
        once their transactions commit.
        """
        stmt = conflict_insert(self._session, KeyValueRow).values(key=key, value=value)
        result = execute_core(self._session, stmt.on_conflict_do_nothing(index_elements=["key"]))
        return result.rowcount == 1
