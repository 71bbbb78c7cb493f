"""The table store interface: data only, addressed by location. Metadata lives in ``meta``.

A backend implements this small interface; naming, permissions, catalog metadata and lineage are
handled once above it (``mlharbor.catalog``). Arrow crosses the interface, nothing backend-specific.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

WriteMode = Literal["append", "overwrite", "merge"]

# Columns added by ``changes()`` next to the table's own columns.
CHANGE_TYPE = "_change_type"  # insert | update_preimage | update_postimage | delete
COMMIT_VERSION = "_commit_version"
COMMIT_TIMESTAMP = "_commit_timestamp"


@dataclass(frozen=True)
class WriteResult:
    """Outcome of a write. ``applied`` is False when ``txn_id`` had already been committed."""

    version: int
    applied: bool
    num_rows: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Commit:
    """One entry of a table's history, newest first in ``history()``."""

    version: int
    timestamp: datetime
    operation: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    actor: str | None
    request_id: str | None
    txn_id: str | None


class TableStore(ABC):
    """Versioned tables at locations (local paths or object-store URIs).

    Contract shared by every backend (tested by ``tests/contract/test_table_store.py``):

    * every successful ``write`` creates exactly one new version, atomically: readers see all of it
      or none of it, and a crash mid-write leaves the previous version readable;
    * a write carrying ``txn_id`` that was already committed is not applied again and returns
      ``applied=False`` with the version that holds it — retries are safe;
    * concurrent appends never lose rows (conflicts are retried inside the store);
    * ``merge`` upserts on ``keys``: source rows whose keys match update the target row, the others
      are inserted; duplicate keys in the source are an error;
    * schema changes are refused unless ``schema_evolution=True`` (then new columns are added).
    """

    #: the backend can return row-level changes from a change data feed
    supports_change_feed: bool = False
    #: the backend can read a version as of a timestamp
    supports_time_travel: bool = False

    @abstractmethod
    def create(
        self,
        location: str,
        schema: pa.Schema,
        partition_by: list[str] | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Create an empty table; returns its version (0). AlreadyExists if a table is there."""

    @abstractmethod
    def exists(self, location: str) -> bool:
        """True if a table exists at ``location``."""

    @abstractmethod
    def write(
        self,
        location: str,
        data: pa.Table | pa.RecordBatchReader,
        mode: WriteMode = "append",
        keys: list[str] | None = None,
        txn_id: str | None = None,
        schema_evolution: bool = False,
        actor: str | None = None,
        request_id: str | None = None,
    ) -> WriteResult:
        """Write ``data`` as one new version (see the class contract)."""

    @abstractmethod
    def dataset(self, location: str, version: int | None = None, timestamp: datetime | None = None) -> pads.Dataset:
        """An Arrow dataset of the table at a version (default: latest), for scans and SQL."""

    def snapshot(
        self, location: str, version: int | None = None, timestamp: datetime | None = None
    ) -> tuple[pads.Dataset, int]:
        """``dataset(...)`` together with the version it holds. Backends that can answer both
        from one read of their log override this; the default asks twice."""
        if timestamp is not None:
            version = self.resolve_version(location, timestamp)
        resolved = self.version(location) if version is None else version
        return self.dataset(location, version=resolved), resolved

    @abstractmethod
    def version(self, location: str) -> int:
        """The latest committed version."""

    @abstractmethod
    def resolve_version(self, location: str, timestamp: datetime) -> int:
        """The version that was current at ``timestamp``; InvalidArgument if before the first."""

    @abstractmethod
    def schema(self, location: str) -> pa.Schema:
        """The current Arrow schema."""

    @abstractmethod
    def history(self, location: str, limit: int | None = None) -> list[Commit]:
        """Commits, newest first."""

    @abstractmethod
    def changes(self, location: str, from_version: int, to_version: int | None = None) -> pa.Table:
        """Rows inserted, updated (pre and post image) and deleted in versions
        ``from_version + 1 .. to_version`` (inclusive), with ``_change_type``,
        ``_commit_version`` and ``_commit_timestamp`` columns."""

    @abstractmethod
    def optimize(self, location: str, target_size: int | None = None) -> dict[str, Any]:
        """Compact small files into larger ones; returns metrics. Data and versions readable as before."""

    @abstractmethod
    def vacuum(self, location: str, retain_hours: float, dry_run: bool = False) -> list[str]:
        """Delete files unreferenced for longer than ``retain_hours``; returns the files (to be) removed."""

    @abstractmethod
    def delete(self, location: str) -> None:
        """Remove the table and all its files. Missing tables are ignored."""

    @abstractmethod
    def stats(self, location: str) -> dict[str, Any]:
        """Cheap figures for ``describe``: num_files, size_bytes, num_rows (from file stats), version."""
