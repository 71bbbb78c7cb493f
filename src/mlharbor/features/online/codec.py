"""Encoding online keys and rows (the format is described in :mod:`.layout`), and reading them back.

:class:`RowCodec` is what a store needs for one table: ``encode_keys`` for lookups, ``encode_rows``
for writes, ``read_plan`` and ``decode`` for reads (see :mod:`.decoding`). Encoding works on whole
Arrow columns with numpy; only the final per-row byte strings are made in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import orjson
import pyarrow as pa

from mlharbor.errors import InvalidArgument
from mlharbor.features.online.base import OnlineTableSpec
from mlharbor.features.online.decoding import ReadPlan, decode_rows, plan_read
from mlharbor.features.online.layout import FINGERPRINT_SIZE, Layout, storage_type

__all__ = ["ReadPlan", "RowCodec"]

_T = pa.types


class RowCodec:
    """Encodes the keys and rows of one table spec and decodes rows column-wise. Thread-safe."""

    def __init__(self, spec: OnlineTableSpec) -> None:
        self.spec = spec
        self.layout = Layout(spec)  # checks the spec
        self.fingerprint = self.layout.fingerprint
        self.features = spec.feature_columns
        self._key_fields = [spec.schema.field(name) for name in spec.key_columns]
        self._plans: dict[tuple[str, ...], ReadPlan] = {}

    def encode_keys(self, keys: pa.Table | pa.RecordBatch) -> list[bytes | None]:
        """One encoded key per row of ``keys`` (cast to the key types); None where a key part is null.

        InvalidArgument when a key column is missing or its values do not cast.
        """
        columns: list[list[Any]] = []
        has_null = False
        for key in self._key_fields:
            if key.name not in keys.column_names:
                raise InvalidArgument(f"online table {self.spec.name}: keys lack the key column {key.name!r}")
            column = _cast(keys.column(key.name), key.type, key.name)
            has_null = has_null or column.null_count > 0
            storage = storage_type(key.type)
            columns.append((column.cast(storage) if storage != key.type else column).to_pylist())
        dumps = orjson.dumps
        if not has_null:
            return [dumps(parts) for parts in zip(*columns, strict=True)]
        return [None if None in parts else dumps(parts) for parts in zip(*columns, strict=True)]

    def encode_rows(self, batch: pa.RecordBatch) -> tuple[list[bytes], list[bytes]]:
        """Keys and encoded rows of ``batch`` (in order; duplicates kept).

        InvalidArgument for missing columns, values that do not cast, or null key parts.
        """
        layout = self.layout
        missing = [name for name in self.spec.schema.names if name not in batch.column_names]
        if missing:
            raise InvalidArgument(f"online table {self.spec.name}: rows lack the columns {missing}")
        keys = self.encode_keys(batch)
        if any(key is None for key in keys):
            raise InvalidArgument(f"online table {self.spec.name}: a row has a null key part")
        n = batch.num_rows
        fixed = np.zeros((n, layout.width), np.uint8)
        fixed[:, : len(layout.head)] = np.frombuffer(layout.head, np.uint8)
        valid = np.ones((n, len(layout.columns)), np.bool_)
        cells: list[list[bytes]] = []
        lengths = np.zeros((n, layout.variable), "<u4")
        for column in layout.columns:
            array = _cast(batch.column(column.name), column.type, column.name)
            if array.null_count:
                valid[:, column.index] = array.is_valid().to_numpy(zero_copy_only=False)
            if column.group >= 0:
                _put_fixed(fixed, column.offset, array, column.type)
                continue
            column_cells = _encode_variable(array, column.type, column.kind)
            lengths[:, column.offset] = np.fromiter(map(len, column_cells), np.uint32, count=n)
            cells.append(column_cells)
        if not valid.all():
            bitmaps = np.packbits(valid, axis=1, bitorder="little")
            fixed[:, FINGERPRINT_SIZE : FINGERPRINT_SIZE + layout.bitmap] = bitmaps
        if layout.variable:
            fixed[:, layout.lengths_at : layout.width] = lengths.view(np.uint8).reshape(n, -1)
        flat, width = fixed.tobytes(), layout.width
        rows = [flat[i * width : (i + 1) * width] for i in range(n)]
        if cells:
            rows = [b"".join(parts) for parts in zip(rows, *cells, strict=True)]
        return cast("list[bytes]", keys), rows

    def read_plan(self, features: Sequence[str] | None) -> ReadPlan:
        """How to decode ``features`` (all by default, in schema order); InvalidArgument if unknown."""
        wanted = tuple(self.features if features is None else features)
        plan = self._plans.get(wanted)
        if plan is None:
            unknown = [name for name in wanted if name not in self.layout.by_name]
            if unknown:
                raise InvalidArgument(
                    f"online table {self.spec.name} has no feature {unknown[0]!r}; features: {self.features}"
                )
            schema = pa.schema([self.spec.schema.field(name).with_nullable(True) for name in wanted])
            plan = self._plans[wanted] = plan_read(self.layout, schema)
        return plan

    def decode(self, values: Sequence[bytes | None], plan: ReadPlan) -> pa.Table:
        """A table of ``plan.schema``, one row per value; None (a missing key), or a row written for
        another layout, decodes as a row of nulls."""
        return decode_rows(self.layout, values, plan)


def _cast(values: Any, t: pa.DataType, name: str) -> Any:
    """``values`` as one array of type ``t``; InvalidArgument when the values do not cast."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if values.type == t:
        return values
    try:
        return values.cast(t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InvalidArgument(f"column {name!r} does not cast from {values.type} to {t}: {exc}") from None


def _put_fixed(fixed: np.ndarray[Any, Any], at: int, array: Any, t: pa.DataType) -> None:
    n = len(array)
    if _T.is_boolean(t):
        fixed[:, at] = array.fill_null(False).to_numpy(zero_copy_only=False)
        return
    data = array.buffers()[1]
    if data is None:
        return
    width = t.bit_width // 8
    raw = np.frombuffer(data, np.uint8, count=n * width, offset=array.offset * width)
    fixed[:, at : at + width] = raw.reshape(n, width)


def _list_parts(array: Any, t: pa.DataType) -> tuple[np.ndarray[Any, Any], Any]:
    """Absolute element offsets (n + 1) into the child array, and the child array."""
    if _T.is_fixed_size_list(t):
        size = t.list_size
        return (np.arange(len(array) + 1, dtype=np.int64) + array.offset) * size, array.values
    return array.offsets.to_numpy(zero_copy_only=False).astype(np.int64), array.values


def _encode_variable(array: Any, t: pa.DataType, kind: str | None) -> list[bytes]:
    """One cell per row (``b""`` for nulls)."""
    if kind == "bytes":
        binary = pa.large_binary() if (_T.is_large_string(t) or _T.is_large_binary(t)) else pa.binary()
        return [b"" if v is None else v for v in array.cast(binary).to_pylist()]
    if kind == "json":
        storage = storage_type(t)
        dumps = orjson.dumps
        return [b"" if v is None else dumps(v) for v in array.cast(storage).to_pylist()]
    offsets, child = _list_parts(array, t)
    width = t.value_type.bit_width // 8
    data = child.buffers()[1]
    raw = b"" if data is None else data.to_pybytes()[child.offset * width : (child.offset + len(child)) * width]
    valid = array.is_valid().to_numpy(zero_copy_only=False) if array.null_count else None
    holes = None
    if child.null_count:
        counts = np.concatenate([[0], np.cumsum(child.is_null().to_numpy(zero_copy_only=False))])
        holes = counts[offsets[1:]] - counts[offsets[:-1]]
    starts, ends = (offsets[:-1] * width).tolist(), (offsets[1:] * width).tolist()
    cells = []
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if valid is not None and not valid[i]:
            cells.append(b"")
        elif holes is not None and holes[i]:
            cells.append(b"\x01" + orjson.dumps(array[i : i + 1].cast(storage_type(t)).to_pylist()[0]))
        else:
            cells.append(b"\x00" + raw[start:end])
    return cells
