"""``ws.features``: feature tables (Delta tables with primary keys and an optional timestamp key).

Built on the public ``Tables`` API, so it works the same on an embedded workspace and through a
server, with the same permissions. The feature store's own facts (keys, timestamp key, sources)
live in the table's catalog properties; data lives in Delta like every table.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlharbor.catalog.functions import FunctionBackend
from mlharbor.catalog.tables import Tables, split_sources, to_arrow
from mlharbor.core.entities import FunctionInfo, TableInfo
from mlharbor.errors import InvalidArgument
from mlharbor.features.definitions import FeatureFunction, FeatureLookup
from mlharbor.features.publish import OnlineBackend, OnlineStatus, PublishResult
from mlharbor.features.spec import FeatureSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pyarrow as pa

    from mlharbor.features.training import TrainingSet
    from mlharbor.lake.base import WriteResult

FEATURE_TABLE = "feature_table"


@dataclass(frozen=True)
class FeatureTable:
    """A feature table as ``describe`` shows it."""

    name: str
    primary_keys: list[str]
    timestamp_keys: list[str]
    features: list[str]
    description: str
    tags: dict[str, str]
    owner: str
    schema: pa.Schema
    version: int
    num_rows: int | None
    source_tables: list[str]
    latest_timestamp: datetime | None
    last_write: datetime | None
    created_at: datetime
    used_by: list[str]  # tables (training sets, derived tables) written from it
    online: dict[str, Any] | None = None  # store, version and time last published, TTL
    models: list[str] = field(default_factory=list)  # model versions trained on it: "dev.ml.churn v3"


def _keys_of(info: TableInfo) -> tuple[list[str], list[str]]:
    props = info.properties
    return list(props.get("primary_keys", [])), list(props.get("timestamp_keys", []))


def _check_columns(schema: pa.Schema, primary_keys: list[str], timestamp_keys: list[str]) -> None:
    import pyarrow as pa

    if not primary_keys:
        raise InvalidArgument("a feature table needs at least one primary key column")
    if len(timestamp_keys) > 1:
        raise InvalidArgument("a feature table has at most one timestamp key")
    missing = [c for c in [*primary_keys, *timestamp_keys] if c not in schema.names]
    if missing:
        raise InvalidArgument(f"key columns {missing} are not in the data's columns {schema.names}")
    for ts in timestamp_keys:
        t = schema.field(ts).type
        if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            raise InvalidArgument(f"timestamp key {ts!r} must be a timestamp or date column, not {t}")
    if len(set(primary_keys + timestamp_keys)) == len(schema.names):
        raise InvalidArgument("a feature table needs at least one feature column besides its keys")


class FeatureStore:
    """Feature tables, on-demand functions, training sets, offline scoring, online publishing and
    lookups over a workspace's tables."""

    def __init__(self, tables: Tables, functions: FunctionBackend, online: OnlineBackend) -> None:
        self._tables = tables
        self._functions = functions
        self._online = online

    # --- feature tables -----------------------------------------------------------------------

    def create_table(
        self,
        name: str,
        df: Any = None,
        *,
        primary_keys: str | builtins.list[str],
        timestamp_keys: str | builtins.list[str] | None = None,
        schema: pa.Schema | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> FeatureTable:
        """Create a feature table from a DataFrame/Arrow table, a table name, a SQL query, or a schema.

        ``df`` as a string is a SQL query when it starts with SELECT/WITH, else a table name; rows
        read that way record lineage from the source table versions. Merge-writes later upsert on
        primary keys plus the timestamp key.
        """
        pks = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys)
        tks = [] if timestamp_keys is None else [timestamp_keys] if isinstance(timestamp_keys, str) else list(
            timestamp_keys
        )
        data = self._resolve_data(df)
        if data is None and schema is None:
            raise InvalidArgument("create_table needs df (data, a table name or SQL) or a schema")
        arrow, sources = split_sources(data) if data is not None else (None, {})
        table_schema = schema if schema is not None else arrow.schema  # type: ignore[union-attr]
        _check_columns(table_schema, pks, tks)
        props = {"primary_keys": pks, "timestamp_keys": tks, "source_tables": sorted(sources)}
        self._tables.create(name, table_schema, comment=description, tags=tags or {},
                            kind=FEATURE_TABLE, properties=props)
        if data is not None:
            self.write_table(name, data, mode="merge")
        return self.get_table(name)

    def _resolve_data(self, df: Any) -> pa.Table | pa.RecordBatchReader | None:
        if df is None:
            return None
        if isinstance(df, str):
            text = df.strip()
            if text.split(None, 1)[0].lower() in ("select", "with", "from"):
                return self._tables.sql(text)
            return self._tables.read(text)
        return to_arrow(df)

    def _info(self, name: str) -> TableInfo:
        info = self._tables.describe(name).info
        if info.kind != FEATURE_TABLE:
            raise InvalidArgument(f"{name} is a plain table, not a feature table (create it with create_table)")
        return info

    def write_table(self, name: str, df: Any, mode: str = "merge", txn_id: str | None = None) -> WriteResult:
        """Write features: ``merge`` upserts on primary keys + timestamp key; ``append`` adds rows."""
        if mode not in ("merge", "append"):
            raise InvalidArgument(f"mode must be 'merge' or 'append', not {mode!r}")
        pks, tks = _keys_of(self._info(name))
        data = self._resolve_data(df)
        keys = [*pks, *tks]
        return self._tables.write(name, data, mode="merge" if mode == "merge" else "append",
                                  keys=keys if mode == "merge" else None, txn_id=txn_id)

    def get_table(self, name: str) -> FeatureTable:
        """Schema, keys, freshness (latest timestamp and last write), sources and users of a table."""
        d = self._tables.describe(name)
        if d.info.kind != FEATURE_TABLE:
            raise InvalidArgument(f"{name} is a plain table, not a feature table")
        pks, tks = _keys_of(d.info)
        latest = None
        if tks:
            q = self._tables.sql(f"SELECT max({_quote(tks[0])}) AS t FROM {d.info.name}")
            latest = q.column("t")[0].as_py()
        history = self._tables.history(name, limit=1)
        downstream = [e for e in self._tables.lineage(d.info.name) if e.source.name == d.info.name]
        used_by = sorted({e.target.name for e in downstream if e.target.kind != "model"})
        models = sorted({f"{e.target.name} v{e.target.version}" for e in downstream if e.target.kind == "model"},
                        key=lambda m: (m.rsplit(" v", 1)[0], int(m.rsplit(" v", 1)[1] or 0)))
        return FeatureTable(
            name=d.info.name, primary_keys=pks, timestamp_keys=tks,
            features=[c for c in d.schema.names if c not in pks and c not in tks],
            description=d.info.comment, tags=d.info.tags, owner=d.info.owner, schema=d.schema,
            version=d.version, num_rows=d.num_rows, source_tables=list(d.info.properties.get("source_tables", [])),
            latest_timestamp=latest, last_write=history[0].timestamp if history else None,
            created_at=d.info.created_at, used_by=used_by, online=d.info.properties.get("online"), models=models,
        )

    def list_tables(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[TableInfo]:
        """Feature tables you may read."""
        return self._tables.list(catalog, schema, kind=FEATURE_TABLE)

    def search(self, text: str | None = None, tags: dict[str, str] | None = None) -> builtins.list[TableInfo]:
        """Feature tables whose name, description or key names contain ``text`` (case-insensitive)
        and that carry every tag in ``tags``."""
        needle = (text or "").lower()
        found = []
        for info in self.list_tables():
            haystack = " ".join([info.name, info.comment, *info.properties.get("primary_keys", [])]).lower()
            if needle and needle not in haystack:
                continue
            if tags and any(info.tags.get(k) != v for k, v in tags.items()):
                continue
            found.append(info)
        return found

    def drop_table(self, name: str) -> None:
        """Drop a feature table, its data and its online copy."""
        self._info(name)
        self._online.unpublish(name)
        self._tables.drop(name)

    # --- training sets and scoring ------------------------------------------------------------

    def create_training_set(
        self,
        df: Any,
        feature_lookups: Sequence[FeatureLookup | FeatureFunction],
        label: str | None,
        exclude_columns: builtins.list[str] | None = None,
    ) -> TrainingSet:
        """Join features to labelled rows point-in-time correctly; see :mod:`mlharbor.features.training`."""
        from mlharbor.features.training import build_training_set

        frame = self._resolve_data(df)
        if frame is None:
            raise InvalidArgument("create_training_set needs a DataFrame, a table name or SQL")
        return build_training_set(self._tables, self._functions, frame, feature_lookups, label, exclude_columns or [])

    def score_frame(self, spec: FeatureSpec, df: Any, point_in_time: bool = True) -> pa.Table:
        """Evaluate a feature spec offline on ``df`` (latest values when ``point_in_time`` is False
        or the spec has no timestamp lookup key). Columns already in ``df`` win."""
        from mlharbor.features.training import evaluate_spec

        frame = self._resolve_data(df)
        if frame is None:
            raise InvalidArgument("score_frame needs a DataFrame, a table name or SQL")
        return evaluate_spec(self._tables, self._functions, spec, frame, point_in_time)

    # --- on-demand functions --------------------------------------------------------------------

    def register_function(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str,
        return_type: str,
        source: str | None = None,
        entry_point: str | None = None,
        description: str = "",
    ) -> FunctionInfo:
        """Register a Python function as the next version of ``name`` (``catalog.schema.fn``).

        Pass the function itself (its source is read with ``inspect``) or ``source`` plus
        ``entry_point``. The function must be self-contained: imports inside its body, no
        decorators, plain named parameters. ``return_type`` is an Arrow type name (``double``,
        ``int64``, ``string``, ``bool``, ``timestamp[us, tz=UTC]``...).
        """
        from mlharbor.features.functions import source_of

        if fn is not None:
            if source is not None:
                raise InvalidArgument("give the function or its source, not both")
            source, entry_point = source_of(fn)
        if source is None or not entry_point:
            raise InvalidArgument("register_function needs the function, or source=... and entry_point=...")
        return self._functions.register(name, source, entry_point, return_type, description)

    def get_function(self, name: str, version: int | None = None) -> FunctionInfo:
        """A registered version (default: the latest), with its source."""
        return self._functions.get(name, version)

    def list_functions(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[FunctionInfo]:
        """The latest version of every function you may read."""
        return self._functions.list(catalog, schema)

    def function_versions(self, name: str) -> builtins.list[FunctionInfo]:
        """Every version of ``name``, oldest first."""
        return self._functions.versions(name)

    def drop_function(self, name: str) -> None:
        """Delete every version of a function (specs that pin it stop evaluating)."""
        self._functions.drop(name)

    # --- online -------------------------------------------------------------------------------

    def publish(self, name: str, mode: str = "incremental", *, ttl_seconds: int | None = None,
                batch_size: int = 10_000, progress: bool | None = None) -> PublishResult:
        """Write the latest row per key of a feature table to its target's online store.

        ``incremental`` (default) writes only keys changed since the last published version and
        falls back to ``snapshot`` the first time; ``ttl_seconds`` makes rows expire (kept for
        later publishes); ``progress`` shows a bar on stderr (default: when it is a terminal).
        Resumable: re-running after a crash continues after the rows already written.
        """
        return self._online.publish(name, mode, ttl_seconds, batch_size, progress)

    def online_status(self, name: str) -> OnlineStatus:
        """The version and time last published, how many versions behind, and the TTL."""
        return self._online.status(name)

    def unpublish(self, name: str) -> None:
        """Remove a table from its online store."""
        self._online.unpublish(name)

    def read_online(self, name: str, keys: Any, features: builtins.list[str] | None = None) -> pa.Table:
        """The online rows of one feature table for ``keys`` (columns named like its primary keys):
        one row per key, in order, nulls where a key is missing or expired."""
        from mlharbor.features.online import OnlineRead

        frame = _as_table(keys)
        return self._online.read([OnlineRead(name, frame, features)])[0]

    def lookup_online(self, spec: FeatureSpec, keys: Any) -> pa.Table:
        """Evaluate a feature spec online: ``keys`` (DataFrame, Arrow, dict of lists or list of dicts)
        with the spec's key columns; returns them with every looked-up and computed feature.

        One round trip per online store for all lookups; defaults fill missing keys; columns
        already present in ``keys`` win; functions run the pinned code, as in training.
        """
        from mlharbor.features.online_lookup import lookup_online

        return lookup_online(self._online, self._functions, spec, _as_table(keys))


def _as_table(data: Any) -> pa.Table:
    """Keys as Arrow: a DataFrame, Arrow table, dict of lists, or list of dicts."""
    import pyarrow as pa

    if isinstance(data, dict):
        try:
            return pa.table({k: v if isinstance(v, (list, tuple, pa.Array)) else [v] for k, v in data.items()})
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidArgument(f"keys do not make a table: {exc}") from None
    if isinstance(data, list):
        if not data or not all(isinstance(r, dict) for r in data):
            raise InvalidArgument("keys as a list must be a non-empty list of dicts (one per row)")
        return pa.Table.from_pylist(data)
    arrow, _ = split_sources(to_arrow(data))
    return arrow if isinstance(arrow, pa.Table) else arrow.read_all()


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'
