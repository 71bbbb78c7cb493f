"""Lineage: edges between versioned things, and graph queries over them."""

from mlharbor.lineage.service import LineageService, table_node

__all__ = ["LineageService", "table_node"]
