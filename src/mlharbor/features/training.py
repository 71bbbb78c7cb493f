"""Training sets: point-in-time correct feature lookups for labelled rows, and offline scoring.

Each label row gets, per lookup, the latest feature row whose timestamp is at or before the row's
lookup time (inclusive), within the lookback window if one is given; no match gives null or the
lookup's default. Label rows are never dropped or reordered, duplicates survive, and columns the
input already has are not looked up (the input wins). A lookup on a time-series table without a
``timestamp_lookup_key`` takes the latest row per key. The join (``mlharbor.lake.asof``: a numpy
sort-merge for integer and string keys, DuckDB otherwise) reads the feature tables at pinned
versions, which the spec records.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlharbor.catalog.tables import Tables, split_sources
from mlharbor.errors import InvalidArgument
from mlharbor.features.definitions import FeatureFunction, FeatureLookup
from mlharbor.features.spec import Column, FeatureSpec, FunctionSpec, LookupSpec

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.catalog.functions import FunctionBackend
    from mlharbor.lake.asof import AsOfSource

_NOW = "__mlh_latest"


@dataclass
class TrainingSet:
    """The joined frame, its feature spec and the versions of every table it read."""

    spec: FeatureSpec
    source_versions: dict[str, int]
    _frame: pa.Table = field(repr=False)

    def load_df(self) -> pa.Table:
        """Label rows with their features, as Arrow (``.to_pandas()`` for pandas)."""
        return self._frame

    @property
    def table_versions(self) -> dict[str, int]:
        """Feature table → version read."""
        return self.spec.table_versions


def _as_table(frame: pa.Table | pa.RecordBatchReader) -> pa.Table:
    import pyarrow as pa

    return frame if isinstance(frame, pa.Table) else frame.read_all()


def resolve_lookup(tables: Tables, lookup: FeatureLookup, frame_columns: builtins.list[str]) -> LookupSpec:
    """Check a lookup against its feature table and pin the table's current version."""
    from mlharbor.features.store import FEATURE_TABLE

    d = tables.describe(lookup.table_name)
    if d.info.kind != FEATURE_TABLE:
        raise InvalidArgument(f"{lookup.table_name} is not a feature table")
    pks = list(d.info.properties.get("primary_keys", []))
    tks = list(d.info.properties.get("timestamp_keys", []))
    if len(lookup.keys) != len(pks):
        raise InvalidArgument(f"lookup_key {lookup.keys} must name one frame column per primary key {pks} of "
                              f"{lookup.table_name}")
    missing = [c for c in [*lookup.keys, *filter(None, [lookup.timestamp_lookup_key])] if c not in frame_columns]
    if missing:
        raise InvalidArgument(f"the frame has no column(s) {missing} needed by the lookup on {lookup.table_name}")
    available = [c for c in d.schema.names if c not in pks and c not in tks]
    features = list(lookup.feature_names) if lookup.feature_names is not None else available
    unknown = [f for f in features if f not in available]
    if unknown:
        raise InvalidArgument(f"{lookup.table_name} has no feature(s) {unknown}; it has {available}")
    outputs = [lookup.rename_outputs.get(f, f) for f in features]
    defaults = {lookup.rename_outputs.get(k, k): v for k, v in lookup.default_values.items()}
    stray = [k for k in defaults if k not in outputs]
    if stray:
        raise InvalidArgument(f"default_values for {stray}, which the lookup does not produce")
    return LookupSpec(
        table=d.info.name, lookup_keys=lookup.keys, primary_keys=pks, timestamp_key=tks[0] if tks else None,
        timestamp_lookup_key=lookup.timestamp_lookup_key if tks else None, features=features, outputs=outputs,
        lookback_seconds=lookup.lookback_window.total_seconds() if lookup.lookback_window else None,
        defaults=defaults, table_version=d.version,
    )


def _source(tables: Tables, lk: LookupSpec, version: int | None, point_in_time: bool) -> AsOfSource:
    """The as-of source of one lookup: the table's key, timestamp and feature columns."""
    import pyarrow.compute as pc

    from mlharbor.lake.asof import AsOfSource

    columns = [*lk.primary_keys, *filter(None, [lk.timestamp_key]), *lk.features]
    data, _ = split_sources(tables.read(lk.table, columns=columns, version=version))
    rename = dict(zip(lk.features, lk.outputs, strict=True))
    common: dict[str, Any] = {"data": data, "keys": lk.primary_keys, "label_keys": lk.lookup_keys,
                              "features": lk.features, "rename": rename, "defaults": lk.defaults}
    if lk.timestamp_key is None:
        return AsOfSource(**common)
    if point_in_time and lk.timestamp_lookup_key is not None:
        return AsOfSource(**common, timestamp=lk.timestamp_key, label_timestamp=lk.timestamp_lookup_key,
                          lookback=lk.lookback)
    # latest row per key: an as-of lookup at the newest timestamp in the table
    latest = pc.max(data.column(lk.timestamp_key)) if data.num_rows else None
    return AsOfSource(**common, timestamp=lk.timestamp_key, label_timestamp=f"{_NOW}:{lk.timestamp_key}",
                      lookback=None) if latest is not None and latest.is_valid else AsOfSource(**common)


def _add_latest_columns(frame: pa.Table, sources: builtins.list[AsOfSource]) -> pa.Table:
    """Give the frame the synthetic lookup-time columns that latest-per-key sources ask for."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for src in sources:
        synthetic = src.label_timestamp is not None and src.label_timestamp.startswith(_NOW)
        if synthetic and src.label_timestamp not in frame.schema.names:
            assert src.timestamp is not None
            column = src.data.column(src.timestamp)
            frame = frame.append_column(src.label_timestamp, pa.array([pc.max(column).as_py()] * frame.num_rows,
                                                                      type=column.type))
    return frame


def join_features(
    tables: Tables, frame: pa.Table, lookups: builtins.list[LookupSpec], pinned: bool, point_in_time: bool
) -> pa.Table:
    """``frame`` with every lookup's features joined, in lookup order."""
    from mlharbor.lake.asof import asof_join

    if not lookups:
        return frame
    sources = [_source(tables, lk, lk.table_version if pinned else None, point_in_time) for lk in lookups]
    extended = _add_latest_columns(frame, sources)
    joined = asof_join(extended, sources)
    helper_columns = [c for c in joined.column_names if c.startswith(_NOW)]
    return joined.drop_columns(helper_columns) if helper_columns else joined


def build_training_set(
    tables: Tables,
    functions: FunctionBackend,
    frame: pa.Table | pa.RecordBatchReader,
    feature_lookups: Sequence[FeatureLookup | FeatureFunction],
    label: str | None,
    exclude_columns: builtins.list[str],
) -> TrainingSet:
    """Resolve lookups and functions, pin versions, join, compute, and describe the result with a FeatureSpec."""
    from mlharbor.features.functions import apply_functions, bind_functions, resolve_function

    labels, frame_sources = split_sources(_as_table(frame))
    labels = _as_table(labels)
    if label is not None and label not in labels.column_names:
        raise InvalidArgument(f"label column {label!r} is not in the frame's columns {labels.column_names}")
    if not feature_lookups:
        raise InvalidArgument("create_training_set needs at least one FeatureLookup or FeatureFunction")
    strays = [type(x).__name__ for x in feature_lookups if not isinstance(x, (FeatureLookup, FeatureFunction))]
    if strays:
        raise InvalidArgument(f"feature_lookups takes FeatureLookup and FeatureFunction objects, not {strays}")
    declared_lookups = [x for x in feature_lookups if isinstance(x, FeatureLookup)]
    lookups = [resolve_lookup(tables, lk, labels.column_names) for lk in declared_lookups]
    joined = join_features(tables, labels, lookups, pinned=True, point_in_time=True)
    function_specs: builtins.list[FunctionSpec] = []
    for declared in (x for x in feature_lookups if isinstance(x, FeatureFunction)):
        available = [*joined.column_names, *(f.output_name for f in function_specs)]
        function_specs.append(resolve_function(functions, declared, available))
    joined = apply_functions(joined, bind_functions(functions, function_specs))
    unknown = [c for c in exclude_columns if c not in joined.column_names]
    if unknown:
        raise InvalidArgument(f"exclude_columns {unknown} are not columns of the training set")
    result = joined.drop_columns(exclude_columns) if exclude_columns else joined
    spec = FeatureSpec(
        lookups=lookups,
        input_columns=[Column(f.name, str(f.type)) for f in labels.schema],
        output_columns=[Column(f.name, str(f.type)) for f in result.schema],
        label=label,
        exclude_columns=list(exclude_columns),
        functions=function_specs,
    )
    versions = {**frame_sources, **spec.table_versions}
    return TrainingSet(spec, versions, result)


def evaluate_spec(tables: Tables, functions: FunctionBackend, spec: FeatureSpec,
                  frame: pa.Table | pa.RecordBatchReader, point_in_time: bool) -> pa.Table:
    """Look up a spec's features for new rows at the feature tables' current versions, then apply
    its functions. Columns already in the frame win."""
    from mlharbor.features.functions import apply_functions, bind_functions

    labels, _ = split_sources(_as_table(frame))
    labels = _as_table(labels)
    for lk in spec.lookups:
        missing = [c for c in lk.lookup_keys if c not in labels.column_names]
        if missing:
            raise InvalidArgument(f"the frame lacks lookup key column(s) {missing} for {lk.table}")
    usable = point_in_time and all(
        lk.timestamp_lookup_key is None or lk.timestamp_lookup_key in labels.column_names for lk in spec.lookups
    )
    joined = join_features(tables, labels, spec.lookups, pinned=False, point_in_time=usable)
    return apply_functions(joined, bind_functions(functions, spec.functions))
