"""Lineage edges between versioned nodes, and walks over them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from mlharbor.core.clock import as_utc
from mlharbor.core.entities import LineageEdge, LineageNode
from mlharbor.errors import InvalidArgument
from mlharbor.meta.models import NO_VERSION, LineageEdgeRow
from mlharbor.meta.repositories._common import conflict_insert, execute_core

# Nodes matched per query while walking; keeps the OR list well below parameter limits.
_CHUNK = 200

_EDGE_KEY = [
    "source_kind",
    "source_name",
    "source_version",
    "target_kind",
    "target_name",
    "target_version",
    "relation",
]


def _node(kind: str, name: str, version: str) -> LineageNode:
    return LineageNode(kind=kind, name=name, version=None if version == NO_VERSION else version)


def _to_edge(row: LineageEdgeRow) -> LineageEdge:
    return LineageEdge(
        source=_node(row.source_kind, row.source_name, row.source_version),
        target=_node(row.target_kind, row.target_name, row.target_version),
        relation=row.relation,
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        details=dict(row.details),
    )


Columns = tuple[InstrumentedAttribute[str], InstrumentedAttribute[str], InstrumentedAttribute[str]]
_SOURCE: Columns = (
    LineageEdgeRow.source_kind,
    LineageEdgeRow.source_name,
    LineageEdgeRow.source_version,
)
_TARGET: Columns = (
    LineageEdgeRow.target_kind,
    LineageEdgeRow.target_name,
    LineageEdgeRow.target_version,
)


def _matches(columns: Columns, node: LineageNode) -> ColumnElement[bool]:
    kind, name, version = columns
    if node.version is None:
        return and_(kind == node.kind, name == node.name)
    return and_(kind == node.kind, name == node.name, version == node.version)


class LineageRepository:
    """Directed edges ``source -> target`` (e.g. a table version a model version was trained on).

    A node's version is optional; an empty string version is treated as no version.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, edge: LineageEdge) -> None:
        """Record the edge. Idempotent: an edge with the same source, target and relation is
        stored once (the first one's ``created_at``, ``created_by`` and ``details`` are kept)."""
        stmt = conflict_insert(self._session, LineageEdgeRow).values(
            source_kind=edge.source.kind,
            source_name=edge.source.name,
            source_version=edge.source.version or NO_VERSION,
            target_kind=edge.target.kind,
            target_name=edge.target.name,
            target_version=edge.target.version or NO_VERSION,
            relation=edge.relation,
            created_by=edge.created_by,
            created_at=edge.created_at,
            details=dict(edge.details),
        )
        execute_core(self._session, stmt.on_conflict_do_nothing(index_elements=_EDGE_KEY))

    def upstream(self, node: LineageNode, depth: int = 1) -> list[LineageEdge]:
        """Edges leading into ``node``, then into their sources, up to ``depth`` hops.

        A node without a version matches every version of its name. Edges come breadth first
        (hop 1, then hop 2, ...), in insertion order within a hop, each at most once.
        """
        return self._walk(node, depth, upstream=True)

    def downstream(self, node: LineageNode, depth: int = 1) -> list[LineageEdge]:
        """Edges leaving ``node``, then leaving their targets, up to ``depth`` hops.

        Same matching and ordering as :meth:`upstream`.
        """
        return self._walk(node, depth, upstream=False)

    def edges(self, name: str) -> list[LineageEdge]:
        """Every edge whose source or target has this name (any kind, any version), oldest first."""
        stmt = (
            select(LineageEdgeRow)
            .where(or_(LineageEdgeRow.source_name == name, LineageEdgeRow.target_name == name))
            .order_by(LineageEdgeRow.id)
        )
        return [_to_edge(row) for row in self._session.scalars(stmt)]

    def _walk(self, node: LineageNode, depth: int, *, upstream: bool) -> list[LineageEdge]:
        if depth < 1:
            raise InvalidArgument(f"depth must be at least 1, got {depth}")
        seen: set[int] = set()
        visited: set[LineageNode] = set()
        result: list[LineageEdge] = []
        frontier = [node]
        for _ in range(depth):
            frontier = list(dict.fromkeys(n for n in frontier if n not in visited))
            if not frontier:
                break
            visited.update(frontier)
            next_frontier: list[LineageNode] = []
            for row in self._edges_at(frontier, upstream=upstream):
                if row.id in seen:
                    continue
                seen.add(row.id)
                edge = _to_edge(row)
                result.append(edge)
                next_frontier.append(edge.source if upstream else edge.target)
            frontier = next_frontier
        return result

    def _edges_at(self, nodes: Sequence[LineageNode], *, upstream: bool) -> list[LineageEdgeRow]:
        columns = _TARGET if upstream else _SOURCE
        rows: dict[int, LineageEdgeRow] = {}
        for start in range(0, len(nodes), _CHUNK):
            chunk = nodes[start : start + _CHUNK]
            stmt = select(LineageEdgeRow).where(or_(*(_matches(columns, n) for n in chunk)))
            for row in self._session.scalars(stmt):
                rows[row.id] = row
        return [rows[key] for key in sorted(rows)]
