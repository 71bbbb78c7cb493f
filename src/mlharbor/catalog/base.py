"""The table backend interface shared by the local service and the REST client.

``Tables`` (the public facade, ``ws.tables``) normalises user input to Arrow and calls a
``TableBackend``: either :class:`mlharbor.catalog.service.TableService` (direct access to the stores,
acting as one principal) or the REST client (``mlharbor.client``), which sends the same calls to a
``mlharbor server``. Both raise the same errors.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlharbor.core.entities import LineageEdge, TableInfo

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.lake.base import Commit, WriteMode, WriteResult


@dataclass(frozen=True)
class TableDescription:
    """What ``describe`` shows: the catalog entry, the Delta schema and cheap statistics."""

    info: TableInfo
    schema: pa.Schema
    version: int
    num_files: int
    size_bytes: int
    num_rows: int | None
    environment: str


class TableBackend(ABC):
    """Operations on named tables, as one principal. Names are ``catalog.schema.table``."""

    @abstractmethod
    def create(
        self,
        name: str,
        schema: pa.Schema,
        partition_by: list[str],
        comment: str,
        tags: dict[str, str],
        if_not_exists: bool,
        kind: str = "table",
        properties: dict[str, Any] | None = None,
    ) -> TableInfo:
        """Register and create an empty table. AlreadyExists unless ``if_not_exists``.

        ``kind`` and ``properties`` let subsystems above the catalog (the feature store) keep their
        own facts about a table (primary keys, timestamp key) in the catalog entry."""

    @abstractmethod
    def list(self, catalog: str | None, schema: str | None, kind: str | None = None) -> builtins.list[TableInfo]:
        """Tables the principal may read, sorted by name; ``kind`` filters (``"feature_table"``)."""

    @abstractmethod
    def describe(self, name: str) -> TableDescription:
        """Catalog entry, schema and statistics."""

    @abstractmethod
    def update(
        self,
        name: str,
        comment: str | None,
        tags: dict[str, str] | None,
        owner: str | None,
        properties: dict[str, Any] | None = None,
    ) -> TableInfo:
        """Change catalog metadata only (``tags`` and ``properties`` are replaced whole)."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Remove the table and its data."""

    @abstractmethod
    def write(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        mode: WriteMode,
        keys: builtins.list[str] | None,
        txn_id: str | None,
        schema_evolution: bool,
        sources: dict[str, int],
    ) -> WriteResult:
        """Write one new version; creates the table from the data's schema if it does not exist.
        ``sources`` (table name → version read) become lineage edges into the new version."""

    @abstractmethod
    def read(
        self,
        name: str,
        columns: builtins.list[str] | None,
        filter: str | None,
        version: int | None,
        timestamp: datetime | None,
        limit: int | None,
    ) -> pa.Table:
        """Rows at a version (default latest). The result's schema metadata names its source."""

    @abstractmethod
    def scan(
        self,
        name: str,
        columns: builtins.list[str] | None,
        filter: str | None,
        version: int | None,
        timestamp: datetime | None,
    ) -> pa.RecordBatchReader:
        """Like ``read`` but streamed batch by batch."""

    @abstractmethod
    def history(self, name: str, limit: int | None) -> builtins.list[Commit]:
        """Versions, newest first."""

    @abstractmethod
    def changes(self, name: str, from_version: int, to_version: int | None) -> pa.Table:
        """Rows added, updated and deleted after ``from_version`` up to ``to_version``."""

    @abstractmethod
    def optimize(self, name: str) -> dict[str, Any]:
        """Compact small files."""

    @abstractmethod
    def vacuum(self, name: str, retain_hours: float, dry_run: bool) -> builtins.list[str]:
        """Delete unreferenced files older than ``retain_hours``."""

    @abstractmethod
    def lineage(self, name: str) -> builtins.list[LineageEdge]:
        """Lineage edges touching the table (any version), only between tables the principal may read."""

    @abstractmethod
    def sql(self, query: str, params: builtins.list[Any] | dict[str, Any] | None) -> pa.Table:
        """Run DuckDB SQL over tables referenced by full name; result carries its sources."""
