"""The sort-merge path of as-of joins (:mod:`mlharbor.lake.asof`): numpy over a source in memory.

A source whose keys are integers or strings and whose times are timestamps (or that has no
timestamp) is joined here rather than by DuckDB's ``ASOF`` join: it is read once into Arrow (only
its key, time and feature columns), keys and times become integers, :mod:`mlharbor.lake.asof_merge`
finds each label row's feature row by sorting codes, and the feature columns are taken at the rows
found. The rows are those the DuckDB query gives (the property test runs both paths against one
brute-force oracle); ``bench/bench_pit.py`` has the timings.

**Keys** become ranks, small non-negative integers: one integer key whose feature values span at
most ``2^RANK_OFFSET_BITS`` values is ranked by its offset from the smallest; otherwise each key
column is ranked by the index of its value among the label rows' distinct values
(``pyarrow.compute.index_in``), and the columns are combined in mixed radix. Nulls, and feature keys
no label row has, get no rank: they never match. **Times** are int64 instants in the comparison unit
of :mod:`mlharbor.lake.asof`, zone-aware and naive alike (Arrow stores UTC instants); a source
without a timestamp compares every row at one time, so the last row of a key wins.

Sources this module does not take (``None``: :mod:`mlharbor.lake.asof_query` joins them) have
other key types (floating point, whose NaN semantics are DuckDB's; decimals, dates, booleans,
dictionary-encoded or view types), ``date`` times, times whose conversion to the comparison unit
overflows (DuckDB reports it), keys too wide for a code, or data that is neither a table nor an
unfiltered local or in-memory dataset of at most ``MAX_DATASET_BYTES`` on disk (the DuckDB path
streams and spills).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlharbor.lake.asof_merge import Side, merge_asof
from mlharbor.lake.native_scan import local_parquet_files, total_size

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as pads

    from mlharbor.lake.asof_query import SourcePlan

#: one integer key spanning at most 2^this values is ranked by offset, wider ones by index_in
RANK_OFFSET_BITS = 32
#: local datasets larger than this on disk are left to DuckDB, which streams and spills; this path
#: holds the columns it reads in memory plus ~4 int64 per feature row (the 10M-row benchmark
#: table is ~0.5 GiB on disk)
MAX_DATASET_BYTES = 1024**3
#: set to False to send every source to DuckDB (tests compare both paths)
ENABLED = True


@dataclass
class SortedLookup:
    """One source's result in label order: its output columns and which label rows matched."""

    columns: dict[str, pa.ChunkedArray]  # output column -> values (null where nothing matched)
    matched: pa.Array  # boolean, one per label row


@dataclass
class _Keys:
    """Key ranks: int64 arrays (``-1`` where a row cannot match) and how many ranks there are."""

    labels: np.ndarray
    features: np.ndarray
    count: int


def sorted_lookup(labels: pa.Table, plan: SourcePlan) -> SortedLookup | None:
    """The source's features for each label row, or None when this path does not take the source.

    Matching, ties, nulls, lookback and times follow :mod:`mlharbor.lake.asof`; defaults are not
    applied here (``matched`` tells where they go).
    """
    import pyarrow as pa

    if not ENABLED or not _takes(labels, plan):
        return None
    if isinstance(plan.data, pa.Table):
        return _lookup(labels, plan, plan.data, lambda: plan.data)
    data = _mapped(plan.data)
    join_columns = list(dict.fromkeys([*plan.keys, *filter(None, [plan.timestamp])]))
    outputs = [f for f, _ in plan.outputs if f not in join_columns]
    # a scan decodes its columns one after another: the keys and the time are read by a scan each,
    # in parallel, then the feature columns by one more scan while the keys and times are matched
    with ThreadPoolExecutor(2, thread_name_prefix="mlharbor-asof-read") as pool:
        parts = [pool.submit(_read, data, [name]) for name in join_columns]
        later = pool.submit(_read, data, outputs)
        joined = pa.Table.from_arrays([part.result().column(0) for part in parts], names=join_columns)
        return _lookup(labels, plan, joined, later.result)


def _lookup(
    labels: pa.Table, plan: SourcePlan, data: pa.Table, features: Callable[[], pa.Table]
) -> SortedLookup | None:
    """Match on ``data`` (keys and time), then take the outputs from ``features()`` (same rows)."""
    import pyarrow as pa

    try:
        keys = _ranks(labels, data, plan)
        times = _times(labels, data, plan)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # e.g. an instant that overflows in nanoseconds: DuckDB reports it
    if keys is None:
        return None
    (label_time, label_valid), (feature_time, feature_valid) = times
    positions = merge_asof(Side(keys.labels, label_time, label_valid),
                           Side(keys.features, feature_time, feature_valid), keys.count, plan.lookback)
    if positions is None:
        return None
    return _take(data, features(), plan, positions)


def _take(data: pa.Table, features: pa.Table, plan: SourcePlan, positions: np.ndarray) -> SortedLookup:
    """The output columns at ``positions`` (-1: null)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    matched = positions >= 0
    # taking at null indices is several times slower than taking at valid ones and masking after
    rows = pa.array(np.where(matched, positions, 0)) if data.num_rows else pa.array(positions, mask=~matched)
    mask = pa.array(matched, pa.bool_())
    columns = {}
    for feature, output in plan.outputs:
        column = (features if feature in features.column_names else data).column(feature).take(rows)
        columns[output] = column if matched.all() else pc.if_else(mask, column, pa.scalar(None, column.type))
    return SortedLookup(columns, mask)


# -- eligibility and reading --------------------------------------------------------------------


def _takes(labels: pa.Table, plan: SourcePlan) -> bool:
    """Whether the source's data, key types and time types suit this path."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    data = plan.data
    if isinstance(data, pads.Dataset) and not isinstance(data, pads.InMemoryDataset):
        files = local_parquet_files(data)
        if files is None or total_size(files) > MAX_DATASET_BYTES:
            return False
    elif not isinstance(data, pa.Table | pads.InMemoryDataset):
        return False
    pairs = zip(plan.keys, plan.label_keys, strict=True)
    if not all(_key_kind(data.schema.field(k).type) == _key_kind(labels.schema.field(lk).type) != "other"
               for k, lk in pairs):
        return False
    if plan.timestamp is None:
        return True
    times = data.schema.field(plan.timestamp).type, labels.schema.field(plan.label_timestamp or "").type
    return all(pa.types.is_timestamp(t) for t in times)


def _key_kind(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return "other"


def _mapped(data: pads.Dataset) -> pads.Dataset:
    """A local Parquet dataset's same fragments over memory-mapped files (reading them takes ~15%
    less CPU than buffered reads); other datasets unchanged."""
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    files = local_parquet_files(data) if isinstance(data, pads.FileSystemDataset) else None
    if files is None:
        return data
    assert isinstance(data, pads.FileSystemDataset)
    fs = pafs.LocalFileSystem(use_mmap=True)
    fragments = [
        data.format.make_fragment(path, filesystem=fs, partition_expression=fragment.partition_expression)
        for path, fragment in zip(files, data.get_fragments(), strict=True)
    ]
    return pads.FileSystemDataset(fragments, data.schema, data.format, filesystem=fs)


def _read(data: pads.Dataset, columns: list[str]) -> pa.Table:
    """``columns`` of a dataset in scan order (its files in order, their rows in order)."""
    # batches as large as the row groups: taking from a column of few chunks is markedly faster
    return data.to_table(columns=columns, batch_size=2**30)


# -- keys and times as integers -----------------------------------------------------------------


def _int64(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """Values as int64 (nulls as 0) and where they are valid (None: everywhere)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = column if column.type == pa.int64() else pc.cast(column, pa.int64())
    if not column.null_count:
        return values.to_numpy(), None
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return pc.fill_null(values, 0).to_numpy(), valid


def _ranks(labels: pa.Table, data: pa.Table, plan: SourcePlan) -> _Keys | None:
    """Both sides' key ranks, or None when there are too many to count in int64."""
    import numpy as np

    label_rank = feature_rank = None
    count = 1
    for key, label_key in zip(plan.keys, plan.label_keys, strict=True):
        label_part, feature_part, size = _column_ranks(labels.column(label_key), data.column(key))
        count *= max(size, 1)
        if count > 2**62:  # mixed-radix ranks stay within int64 (a code needs fewer bits anyway)
            return None
        if label_rank is None or feature_rank is None:
            label_rank, feature_rank = label_part, feature_part
            continue
        # mixed radix; -1 (no match) on either side stays negative
        label_rank = np.where((label_rank < 0) | (label_part < 0), -1, label_rank * size + label_part)
        feature_rank = np.where((feature_rank < 0) | (feature_part < 0), -1, feature_rank * size + feature_part)
    assert label_rank is not None and feature_rank is not None  # plans have at least one key
    return _Keys(label_rank, feature_rank, count)


def _column_ranks(label: pa.ChunkedArray, feature: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, int]:
    """One key column's ranks on each side (-1: null or absent from the other side), and their count."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(feature.type):
        values, valid = _int64(feature)
        present = values if valid is None else values[valid]
        low, high = (int(present.min()), int(present.max())) if len(present) else (0, -1)
        if high - low < 2**RANK_OFFSET_BITS:
            # keys from 0 up are their own ranks when an offset would not save a bit: no copy
            base = 0 if low >= 0 and high.bit_length() == (high - low).bit_length() else low
            ours, label_valid = _int64(label)
            outside = (ours < low) | (ours > high)  # compared before subtracting: no overflow
            if label_valid is not None:
                outside |= ~label_valid
            theirs = values - base if base or valid is not None else values
            if valid is not None:
                theirs[~valid] = -1
            return np.where(outside, -1, ours - base), theirs, high - base + 1
    distinct = pc.unique(label).drop_null()
    ranks = [pc.index_in(side, value_set=distinct) for side in (label, feature)]
    label_rank, feature_rank = (pc.fill_null(pc.cast(r, pa.int64()), -1).to_numpy() for r in ranks)
    return label_rank, feature_rank, len(distinct)


_Time = tuple[Any, Any]  # (int64 values, validity or None)


def _times(labels: pa.Table, data: pa.Table, plan: SourcePlan) -> tuple[_Time, _Time]:
    """Label and feature times as int64 instants in the comparison unit (zeros without a timestamp)."""
    import numpy as np
    import pyarrow as pa

    if plan.timestamp is None or plan.label_timestamp is None:
        return (np.zeros(labels.num_rows, np.int64), None), (np.zeros(data.num_rows, np.int64), None)

    def instants(column: pa.ChunkedArray) -> _Time:
        if column.type.unit != plan.unit:  # safe cast: overflow raises ArrowInvalid
            column = column.cast(pa.timestamp(plan.unit or "us", column.type.tz))
        return _int64(column)

    return instants(labels.column(plan.label_timestamp)), instants(data.column(plan.timestamp))
