"""The online store interface: latest feature rows by key, for serving.

A backend implements :class:`OnlineStore`; Arrow tables and the plain dataclasses below cross it,
nothing backend-specific. The contract, shared by every backend and tested by
``tests/contract/test_online_store.py``:

* a table is declared with :meth:`OnlineStore.ensure_table` before it is written or read;
* ``write`` upserts one row per key: within one call, the last occurrence of a key wins;
* ``read`` answers every request of one call in **one round trip** to the store; each result has
  one row per requested key, in the order of the keys (duplicates repeated), with the feature
  columns typed as the table's schema says; a key that is missing, expired, or has a null part
  gives a row of nulls;
* rows of a table with ``ttl_seconds`` expire that long after they were written;
* nothing is pickled: rows are stored in the typed encoding of :mod:`.layout`.
"""

from __future__ import annotations

import base64
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from mlharbor.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["OnlineRead", "OnlineStore", "OnlineTableSpec", "check_table_name"]

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")


def check_table_name(name: str) -> str:
    """``name`` if it is a valid online table name (letters, digits, ``_ . -``), else InvalidArgument.

    The restriction keeps backend namespaces unambiguous (no ``:``, ``*`` or ``[`` in a name).
    """
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise InvalidArgument(
            f"invalid online table name {name!r}: use letters, digits, '_', '.' and '-' (at most 255)"
        )
    return name


@dataclass(frozen=True)
class OnlineTableSpec:
    """What an online table holds: its key columns and the Arrow types of keys and features.

    ``schema`` holds the key columns and the feature columns; the feature columns are the fields
    that are not keys, in schema order. ``ttl_seconds``: rows expire this long after they were
    written (``None``: never).
    """

    name: str
    key_columns: list[str]
    schema: pa.Schema
    ttl_seconds: int | None = None

    @property
    def feature_columns(self) -> list[str]:
        """The non-key columns, in schema order."""
        keys = set(self.key_columns)
        return [name for name in self.schema.names if name not in keys]

    def to_bytes(self) -> bytes:
        """A deterministic serialization (JSON with the schema as Arrow IPC), stored by backends."""
        return orjson.dumps(
            {
                "name": self.name,
                "key_columns": list(self.key_columns),
                "ttl_seconds": self.ttl_seconds,
                "schema": base64.b64encode(self.schema.serialize().to_pybytes()).decode("ascii"),
            },
            option=orjson.OPT_SORT_KEYS,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> OnlineTableSpec:
        """The spec :meth:`to_bytes` wrote."""
        import pyarrow as pa

        raw: dict[str, Any] = orjson.loads(data)
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(raw["schema"])))
        return cls(
            name=raw["name"], key_columns=list(raw["key_columns"]), schema=schema, ttl_seconds=raw["ttl_seconds"]
        )


@dataclass(frozen=True)
class OnlineRead:
    """One lookup: the rows of ``table`` for the entities in ``keys``.

    ``keys`` has a column per key column of the table (other columns are ignored; values are cast
    to the key types). ``features`` selects and orders the feature columns of the result (default:
    all, in schema order).
    """

    table: str
    keys: pa.Table
    features: list[str] | None = field(default=None)


class OnlineStore(ABC):
    """Latest feature rows by key (see the module docstring for the shared contract).

    Stores are safe to use from several threads. ``supports_ttl`` says whether rows can expire.
    """

    supports_ttl: bool = False

    @abstractmethod
    def ensure_table(self, spec: OnlineTableSpec) -> None:
        """Declare a table; idempotent.

        A spec equal to the stored one changes nothing. A different ``ttl_seconds`` replaces the
        spec and applies to later writes (stored rows keep the expiry they were written with). A
        different schema or different key columns replace the spec and remove the stored rows,
        which were encoded for the old layout. InvalidArgument for an invalid spec (unknown or
        float key columns, no feature column, a feature type the encoding cannot hold).
        """

    @abstractmethod
    def write(self, table: str, rows: pa.Table | pa.RecordBatchReader, batch_size: int = 10_000) -> int:
        """Upsert ``rows`` (key and feature columns; other columns ignored) in batches of ``batch_size``.

        Rows are applied in order, so the last occurrence of a key wins. Values are cast to the
        spec's types. Returns the number of input rows applied. NotFound for an unknown table;
        InvalidArgument for a missing column, a value that does not cast, or a null key part.
        Batches are written one after the other: a failure leaves earlier batches written.
        """

    @abstractmethod
    def delete(self, table: str, keys: pa.Table) -> int:
        """Remove the rows of ``keys``; returns how many live rows were removed.

        Missing keys and keys with a null part are ignored. NotFound for an unknown table.
        """

    @abstractmethod
    def read(self, requests: list[OnlineRead]) -> list[pa.Table]:
        """Answer every request in one round trip to the store; one result table per request.

        (A store's first read of a table also loads the table's spec, once per process.)

        Each result has the requested feature columns (nullable, typed by the spec) and one row per
        row of the request's keys, in order: duplicate keys repeat, and missing, expired or
        partly-null keys give nulls. NotFound for an unknown table; InvalidArgument for an
        unknown feature or a missing key column.
        """

    @abstractmethod
    def drop_table(self, table: str) -> None:
        """Remove a table: its spec, rows and markers. Dropping an unknown table does nothing."""

    @abstractmethod
    def table_spec(self, table: str) -> OnlineTableSpec | None:
        """The stored spec of ``table``, or None when it was never declared (or was dropped)."""

    @abstractmethod
    def set_marker(self, table: str, key: str, value: str) -> None:
        """Store a small string under ``key`` for ``table`` (overwrites). NotFound for an unknown table.

        Publishers keep the published version and resume checkpoints here; markers go with the
        table when it is dropped, and stay when its spec changes.
        """

    @abstractmethod
    def get_marker(self, table: str, key: str) -> str | None:
        """The marker stored under ``key`` for ``table``, or None."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent; the store is not used afterwards."""

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
