"""Recording and querying lineage edges.

Edges point from what was read to what was written: ``table:dev.raw.trips@3 → table:dev.features.x@5``.
Recording happens inside the writer's metadata transaction, so a change and its lineage commit together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlharbor.core.clock import utcnow
from mlharbor.core.entities import LineageEdge, LineageNode

if TYPE_CHECKING:
    from mlharbor.core.actors import Actor
    from mlharbor.meta import MetadataStore, UnitOfWork

DERIVED_FROM = "derived_from"


def table_node(name: str, version: int | None = None) -> LineageNode:
    """The lineage node of a lake table (at a version, or any version when None)."""
    return LineageNode("table", name, None if version is None else str(version))


class LineageService:
    """Lineage edges over the metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    @staticmethod
    def record(
        tx: UnitOfWork,
        actor: Actor,
        sources: list[LineageNode],
        target: LineageNode,
        relation: str = DERIVED_FROM,
        details: dict[str, Any] | None = None,
    ) -> list[LineageEdge]:
        """Add one edge per source into ``target`` inside the caller's transaction. Idempotent."""
        now = utcnow()
        edges = [
            LineageEdge(src, target, relation, now, actor.principal, details or {})
            for src in sources
            if src != target
        ]
        for edge in edges:
            tx.lineage.add(edge)
        return edges

    def upstream(self, node: LineageNode, depth: int = 1) -> list[LineageEdge]:
        """Edges leading into ``node``, ``depth`` hops back."""
        with self._store.transaction() as tx:
            return tx.lineage.upstream(node, depth)

    def downstream(self, node: LineageNode, depth: int = 1) -> list[LineageEdge]:
        """Edges leaving ``node``, ``depth`` hops forward."""
        with self._store.transaction() as tx:
            return tx.lineage.downstream(node, depth)

    def edges(self, name: str) -> list[LineageEdge]:
        """Every edge touching ``name``, any version."""
        with self._store.transaction() as tx:
            return tx.lineage.edges(name)
