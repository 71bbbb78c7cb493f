"""Which table versions an Arrow table was computed from, carried in its schema metadata.

``SqlEngine.query`` stamps its result with ``{"catalog.schema.table": version}`` under the schema
metadata key :data:`SOURCES_KEY`, as JSON. A later write of that table (or of anything derived with
the metadata kept) can record lineage edges without user code; the writer strips the key first.
Only pyarrow is needed here, so callers can use it without importing DuckDB or Delta.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

SOURCES_KEY = b"mlharbor.sources"


def with_sources(table: pa.Table, sources: Mapping[str, int]) -> pa.Table:
    """Return ``table`` with ``sources`` (full name -> version) merged into its schema metadata.

    Sources already present are kept; for a name in both, the given version wins.
    """
    merged = {**sources_of(table), **{str(k): int(v) for k, v in sources.items()}}
    metadata = dict(table.schema.metadata or {})
    metadata[SOURCES_KEY] = json.dumps(merged, sort_keys=True).encode()
    return table.replace_schema_metadata(metadata)


def sources_of(table: pa.Table | pa.Schema) -> dict[str, int]:
    """The ``{full name: version}`` a table was read from; empty when it carries none.

    Malformed metadata (not a JSON object of integers) is ignored rather than trusted.
    """
    schema = table if _is_schema(table) else table.schema
    raw = (schema.metadata or {}).get(SOURCES_KEY)
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {str(k): v for k, v in decoded.items() if isinstance(v, int) and not isinstance(v, bool)}


def strip_sources(table: pa.Table) -> pa.Table:
    """Return ``table`` without the sources key (other metadata is kept)."""
    metadata = dict(table.schema.metadata or {})
    if SOURCES_KEY not in metadata:
        return table
    del metadata[SOURCES_KEY]
    return table.replace_schema_metadata(metadata or None)


def _is_schema(obj: object) -> bool:
    import pyarrow as pa

    return isinstance(obj, pa.Schema)
