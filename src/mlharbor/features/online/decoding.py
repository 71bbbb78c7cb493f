"""Decoding encoded rows into a typed Arrow table, column-wise.

The rows of one read are joined into one buffer and viewed as a numpy matrix (one row per
requested key); each width group of fixed-width columns becomes its Arrow buffers with one
transpose, string and embedding columns become offsets plus one joined data buffer, and all of them
are read back by Arrow as one IPC record batch (:mod:`.ipc`). No Python work per value, except
for JSON-encoded nested values and lists that hold nulls, which are built with ``pa.array``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import orjson
import pyarrow as pa

from mlharbor.features.online.ipc import BatchBuilder, pad8
from mlharbor.features.online.layout import FINGERPRINT_SIZE, Column, Layout, storage_type

__all__ = ["ReadPlan", "decode_rows", "plan_read"]

_T = pa.types


@dataclass(frozen=True)
class ReadPlan:
    """How to decode the requested ``schema``: runs of fixed-width columns of one width group (their
    result places, and their positions in the group: a slice when they are contiguous) and single
    variable columns, in result order. ``prefixes`` caches the IPC metadata of all-valid results of
    fixed-width columns by row count (it depends on nothing else)."""

    schema: pa.Schema
    features: np.ndarray[Any, Any]  # the feature index of each result column
    segments: tuple[tuple[Any, ...], ...]
    fixed_only: bool
    prefixes: dict[int, bytes] = field(default_factory=dict)


_MAX_PREFIXES = 256
_WORDS: dict[int, np.dtype[Any]] = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}


def plan_read(layout: Layout, schema: pa.Schema) -> ReadPlan:
    """The plan for a result of ``schema`` (feature columns of ``layout``, any order)."""
    columns = [layout.by_name[name] for name in schema.names]
    segments: list[tuple[Any, ...]] = []
    run: list[int] = []
    for place, column in enumerate(columns):
        if run and (column.group < 0 or column.group != columns[run[0]].group):
            segments.append(_run(columns, run))
            run = []
        if column.group >= 0:
            run.append(place)
        else:
            segments.append(("variable", place, column))
    if run:
        segments.append(_run(columns, run))
    features = np.array([column.index for column in columns], np.int64)
    fixed_only = all(segment[0] == "group" for segment in segments)
    return ReadPlan(schema, features, tuple(segments), fixed_only)


def _run(columns: list[Column], places: list[int]) -> tuple[Any, ...]:
    group = columns[places[0]].group
    positions = [columns[place].position for place in places]
    contiguous = positions == list(range(positions[0], positions[0] + len(positions)))
    chosen: Any = slice(positions[0], positions[-1] + 1) if contiguous else np.array(positions, np.int64)
    return ("group", group, np.array(places, np.int64), chosen)


def decode_rows(layout: Layout, values: Sequence[bytes | None], plan: ReadPlan) -> pa.Table:
    """A table of ``plan.schema`` with one row per value: None, or a row written for another
    layout, decodes as nulls."""
    n = len(values)
    if n == 0:
        return plan.schema.empty_table()
    fp, null_row, width = layout.fingerprint, layout.null_row, layout.width
    rows = [v if v is not None and v[:FINGERPRINT_SIZE] == fp else null_row for v in values]
    head = b"".join(rows) if not layout.variable else b"".join([r[:width] for r in rows])
    matrix = np.frombuffer(head, np.uint8).reshape(n, width)
    bits = matrix[:, FINGERPRINT_SIZE : FINGERPRINT_SIZE + layout.bitmap]
    if (bits == layout.all_valid).all():
        if plan.fixed_only:
            return _fixed_all_valid(layout, matrix, plan)
        valid = np.ones((n, len(plan.features)), np.bool_)
        nulls = np.zeros(len(plan.features), np.int64)
        validity_size = 0
    else:
        valid = np.unpackbits(bits, axis=1, count=len(layout.columns), bitorder="little").view(np.bool_)
        valid = valid[:, plan.features]  # one column per result column
        nulls = n - np.count_nonzero(valid, axis=0)
        validity_size = (n + 7) // 8 if nulls.any() else 0  # then every column carries a bitmap
    lengths = starts = np.zeros((n, 0), np.int64)
    if layout.variable:
        lengths = np.ascontiguousarray(matrix[:, layout.lengths_at : width]).view("<u4").astype(np.int64)
        starts = width + np.cumsum(lengths, axis=1) - lengths
    builder = BatchBuilder(n)
    built: dict[int, Any] = {}  # result place -> an array built outside the IPC batch
    for segment in plan.segments:
        if segment[0] == "group":
            _, group, places, positions = segment
            block = _group_block(layout, matrix, group, positions, valid[:, places], validity_size)
            builder.add_block(block, pad8(validity_size), _data_size(group, n), validity_size, nulls[places])
            continue
        _, place, column = segment
        validity = np.packbits(valid[:, place], bitorder="little") if validity_size else None
        nodes, buffers, array = _variable(rows, starts[:, column.offset], lengths[:, column.offset], column, validity)
        if array is not None:
            built[place] = array
        else:
            nodes[0] = (n, int(nulls[place]))
            builder.add(nodes, [validity, *buffers])
    if not built:
        return pa.Table.from_batches([builder.finish(plan.schema)])
    return _assemble(plan.schema, builder, built)


def _fixed_all_valid(layout: Layout, matrix: np.ndarray[Any, Any], plan: ReadPlan) -> pa.Table:
    """The hot path: fixed-width columns without nulls; the IPC metadata comes from the plan's cache."""
    n = matrix.shape[0]
    blocks = [_group_block(layout, matrix, segment[1], segment[3], None, 0) for segment in plan.segments]
    prefix = plan.prefixes.get(n)
    if prefix is None:
        builder = BatchBuilder(n)
        for segment, block in zip(plan.segments, blocks, strict=True):
            builder.add_block(block, 0, _data_size(segment[1], n), 0, 0)
        prefix = builder.prefix()
        if len(plan.prefixes) < _MAX_PREFIXES:
            plan.prefixes[n] = prefix
    message = b"".join((prefix, *cast("list[bytes]", blocks)))  # numpy arrays are buffers
    return pa.Table.from_batches([pa.ipc.read_record_batch(pa.py_buffer(message), plan.schema)])


def _data_size(group: int, n: int) -> int:
    return (n + 7) // 8 if group == 0 else n * group


def _group_block(
    layout: Layout, matrix: np.ndarray[Any, Any], group: int, positions: Any, valid: Any, validity_size: int
) -> np.ndarray[Any, Any]:
    """The buffers of a run of columns of one width group: (columns, stride) uint8, each row the
    column's validity bitmap (when ``validity_size``) and its values, each padded to 8 bytes."""
    n = matrix.shape[0]
    first, count = layout.groups[group]
    data_size = _data_size(group, n)
    if group == 0:
        flags = matrix[:, first : first + count][:, positions]
        data = np.packbits(flags.T != 0, axis=1, bitorder="little")
    elif group in _WORDS:  # copy whole words, not bytes: several times faster
        words = matrix[:, first : first + count * group].view(_WORDS[group])[:, positions]
        data = np.ascontiguousarray(words.T).view(np.uint8)
        if not validity_size and data_size % 8 == 0:  # no padding: the transpose is the block
            return data
    else:
        values = matrix[:, first : first + count * group].reshape(n, count, group)[:, positions, :]
        data = values.transpose(1, 0, 2)
        if not validity_size and data_size % 8 == 0:
            return np.ascontiguousarray(data).reshape(-1, data_size)
    at = pad8(validity_size)
    block = np.zeros((data.shape[0], at + pad8(data_size)), np.uint8)
    block[:, at : at + data_size] = data.reshape(data.shape[0], data_size)
    if validity_size:
        block[:, :validity_size] = np.packbits(valid.T, axis=1, bitorder="little")
    return block


def _variable(
    rows: list[bytes], starts: Any, lengths: Any, column: Column, validity: Any
) -> tuple[list[tuple[int, int]], list[Any], Any]:
    """IPC nodes and buffers (after the validity bitmap) of a variable column, or an array built
    directly (JSON values, fixed-size lists, lists holding nulls): (nodes, buffers, None) or
    ([], [], array). Null cells are empty, so only the fixed-size list needs ``validity``."""
    n, t, kind = len(rows), column.type, column.kind
    first, ends = starts.tolist(), (starts + lengths).tolist()
    if kind == "bytes":
        data = b"".join([r[s:e] for r, s, e in zip(rows, first, ends, strict=True)])
        large = _T.is_large_string(t) or _T.is_large_binary(t)
        offsets = np.zeros(n + 1, np.int64 if large else np.int32)
        np.cumsum(lengths, out=offsets[1:])
        return [(n, 0)], [offsets, data], None
    if kind == "array" and all(rows[i][s] == 0 for i, s in enumerate(first) if ends[i] > s):
        data = b"".join([r[s + 1 : e] for r, s, e in zip(rows, first, ends, strict=True) if e > s])
        counts = np.where(lengths > 0, (lengths - 1) // (t.value_type.bit_width // 8), 0)
        offsets = np.zeros(n + 1, np.int64 if _T.is_large_list(t) else np.int32)
        np.cumsum(counts, out=offsets[1:])
        if not _T.is_fixed_size_list(t):
            return [(n, 0), (int(offsets[-1]), 0)], [offsets, None, data], None
        child = pa.Array.from_buffers(t.value_type, int(offsets[-1]), [None, pa.py_buffer(data)])
        bitmap = None if validity is None else pa.py_buffer(validity)
        lists = pa.Array.from_buffers(pa.list_(t.value_field), n, [bitmap, pa.py_buffer(offsets)], children=[child])
        return [], [], lists.cast(t)
    return [], [], _python_values(rows, first, ends, column)


def _python_values(rows: list[bytes], first: list[int], ends: list[int], column: Column) -> Any:
    """A column decoded value by value (JSON cells, and lists with null elements)."""
    values: list[Any] = []
    t = column.type
    numbers = np.dtype(storage_type(t.value_type).to_pandas_dtype()) if column.kind == "array" else None
    for row, start, end in zip(rows, first, ends, strict=True):
        if end == start:
            values.append(None)
        elif numbers is None:
            values.append(orjson.loads(row[start:end]))
        elif row[start] == 1:
            values.append(orjson.loads(row[start + 1 : end]))
        else:
            values.append(np.frombuffer(row[start + 1 : end], numbers).tolist())
    storage = storage_type(t)
    decoded = pa.array(values, type=storage)
    return decoded if storage == t else decoded.cast(t)


def _assemble(schema: pa.Schema, builder: BatchBuilder, built: dict[int, Any]) -> pa.Table:
    """The result when some columns were built outside the IPC batch."""
    ipc_fields = [field for place, field in enumerate(schema) if place not in built]
    batch = builder.finish(pa.schema(ipc_fields)) if ipc_fields else None
    columns, taken = [], 0
    for place in range(len(schema)):
        if place in built:
            columns.append(built[place])
        else:
            assert batch is not None
            columns.append(batch.column(taken))
            taken += 1
    return pa.Table.from_arrays(columns, schema=schema)
