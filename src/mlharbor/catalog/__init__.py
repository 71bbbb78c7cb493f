"""The table catalog: named lake tables with metadata, permissions, audit and lineage."""

from mlharbor.catalog.base import TableBackend, TableDescription
from mlharbor.catalog.tables import Tables

__all__ = ["TableBackend", "TableDescription", "Tables"]
