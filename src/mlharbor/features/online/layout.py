"""The typed encoding of online rows: which types it holds and where each value sits in a row.

**Keys** are the JSON array of the key values in key-column order (``[42,"berlin"]``), after a cast
to the spec's key types, with dates and timestamps as their integer storage. JSON quoting keeps it
unambiguous: ``[1]`` and ``["1"]`` differ, and composite keys cannot run into each other.

**Rows** hold the feature columns (little-endian)::

    fingerprint (4) | validity bitmap (ceil(F/8), schema order) | fixed-width values |
    uint32 length per variable column | the variable cells, one after the other

- fixed width (grouped by width, widest first, then booleans, schema order within a group, so each
  group decodes with one transpose): integers, floats, decimals, fixed-size binary, dates, times,
  timestamps and durations as their Arrow storage bytes (NaN and infinities survive bit for bit);
  booleans as one byte; nulls are zero bytes with their validity bit clear;
- ``bytes`` cells: strings and binaries, raw;
- ``array`` cells: lists of numbers (embeddings): a tag byte ``0`` and the raw values, or ``1`` and
  JSON when the list holds nulls;
- ``json`` cells: other nested values (lists, structs) of booleans, numbers, strings and temporal
  values, as JSON of their integer storage (NaN inside these becomes null, as in JSON).

The fingerprint hashes the layout (key columns, names and types): a row written for another layout
decodes as missing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa

from mlharbor.errors import InvalidArgument
from mlharbor.features.online.base import OnlineTableSpec

__all__ = ["FINGERPRINT_SIZE", "Column", "Layout", "check_spec", "layout_fingerprint", "storage_type"]

_FORMAT = "mlharbor-online-row-v1"
FINGERPRINT_SIZE = 4
_T = pa.types


def layout_fingerprint(spec: OnlineTableSpec) -> bytes:
    """Four bytes that change when the key columns or the names or types of the schema change."""
    layout = [_FORMAT, list(spec.key_columns), [[f.name, str(f.type)] for f in spec.schema]]
    return hashlib.blake2b(orjson.dumps(layout), digest_size=FINGERPRINT_SIZE).digest()


def _is_number(t: pa.DataType) -> bool:
    """Fixed-width types numpy can hold (list elements of the ``array`` kind)."""
    return bool(_T.is_integer(t) or _T.is_floating(t) or (_T.is_temporal(t) and not _T.is_interval(t)))


def _is_list(t: pa.DataType) -> bool:
    return bool(_T.is_list(t) or _T.is_large_list(t) or _T.is_fixed_size_list(t))


def storage_type(t: pa.DataType) -> pa.DataType:
    """``t`` with temporal types replaced by their integer storage, recursively."""
    if _T.is_temporal(t):
        return pa.int32() if t.bit_width == 32 else pa.int64()
    if _T.is_list(t):
        return pa.list_(t.value_field.with_type(storage_type(t.value_type)))
    if _T.is_large_list(t):
        return pa.large_list(t.value_field.with_type(storage_type(t.value_type)))
    if _T.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(storage_type(t.value_type)), t.list_size)
    if _T.is_struct(t):
        return pa.struct([t.field(i).with_type(storage_type(t.field(i).type)) for i in range(t.num_fields)])
    return t


def _json_ok(t: pa.DataType) -> bool:
    if _is_list(t):
        return _json_ok(t.value_type)
    if _T.is_struct(t):
        return all(_json_ok(t.field(i).type) for i in range(t.num_fields))
    return bool(_is_number(t) or _T.is_boolean(t) or _T.is_string(t) or _T.is_large_string(t))


def column_kind(t: pa.DataType) -> str | None:
    """How values of type ``t`` are stored: fixed, bool, bytes, array, json; None if they cannot be."""
    if _T.is_boolean(t):
        return "bool"
    if _is_number(t) or _T.is_decimal(t) or _T.is_fixed_size_binary(t):
        return "fixed"
    if _T.is_string(t) or _T.is_large_string(t) or _T.is_binary(t) or _T.is_large_binary(t):
        return "bytes"
    if _is_list(t) and _is_number(t.value_type):
        return "array"
    if (_is_list(t) or _T.is_struct(t)) and _json_ok(t):
        return "json"
    return None


def _key_ok(t: pa.DataType) -> bool:
    return bool(
        _T.is_integer(t) or _T.is_string(t) or _T.is_large_string(t) or _T.is_boolean(t)
        or _T.is_date(t) or _T.is_timestamp(t)
    )


def check_spec(spec: OnlineTableSpec) -> None:
    """InvalidArgument unless ``spec`` describes a table this encoding can hold."""
    names = spec.schema.names
    if len(set(names)) != len(names):
        raise InvalidArgument(f"online table {spec.name}: duplicate column names in {names}")
    if not spec.key_columns or len(set(spec.key_columns)) != len(spec.key_columns):
        raise InvalidArgument(f"online table {spec.name}: key_columns must be a non-empty list of distinct names")
    for key in spec.key_columns:
        if key not in names:
            raise InvalidArgument(f"online table {spec.name}: key column {key!r} is not in the schema")
        key_type = spec.schema.field(key).type
        if not _key_ok(key_type):
            raise InvalidArgument(
                f"online table {spec.name}: key column {key!r} has type {key_type}; keys must be integers, "
                "strings, booleans, dates or timestamps"
            )
    if not spec.feature_columns:
        raise InvalidArgument(f"online table {spec.name}: no feature column besides the keys")
    for name in spec.feature_columns:
        feature_type = spec.schema.field(name).type
        if column_kind(feature_type) is None:
            raise InvalidArgument(f"online table {spec.name}: feature {name!r} has unsupported type {feature_type}")
    ttl = spec.ttl_seconds
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise InvalidArgument(f"online table {spec.name}: ttl_seconds must be a positive integer or None")


@dataclass(frozen=True)
class Column:
    """Where one feature sits in a row.

    ``offset``: the byte of a fixed or bool value, or the index of a variable column among the
    variable columns. ``group``: the width group of a fixed value (its width in bytes; 0 for bool,
    -1 for variable columns), and ``position`` its place in that group.
    """

    index: int
    name: str
    type: pa.DataType
    kind: str
    offset: int
    group: int
    position: int


class Layout:
    """The byte layout of the rows of one spec (immutable)."""

    def __init__(self, spec: OnlineTableSpec) -> None:
        check_spec(spec)
        self.fingerprint = layout_fingerprint(spec)
        features = spec.feature_columns
        types = [spec.schema.field(name).type for name in features]
        kinds = [column_kind(t) or "" for t in types]
        self.bitmap = (len(features) + 7) // 8
        groups = {  # feature -> width group
            i: 0 if kind == "bool" else types[i].bit_width // 8
            for i, kind in enumerate(kinds)
            if kind in ("fixed", "bool")
        }
        self.groups: dict[int, tuple[int, int]] = {}  # width (0: booleans) -> (first byte, count)
        placed: dict[int, tuple[int, int, int]] = {}  # feature -> (offset, group, position)
        offset = FINGERPRINT_SIZE + self.bitmap
        for width in sorted(set(groups.values()), reverse=True):
            members = [i for i in groups if groups[i] == width]
            self.groups[width] = (offset, len(members))
            for position, i in enumerate(members):
                placed[i] = (offset, width, position)
                offset += max(width, 1)
        self.lengths_at = offset
        variable = [i for i in range(len(features)) if i not in groups]
        for index, i in enumerate(variable):
            placed[i] = (index, -1, index)
        self.variable = len(variable)
        self.width = offset + 4 * len(variable)  # bytes before the variable cells
        self.columns = [Column(i, features[i], types[i], kinds[i], *placed[i]) for i in range(len(features))]
        self.by_name = {column.name: column for column in self.columns}
        all_valid = np.packbits(np.ones(len(features), np.bool_), bitorder="little")
        self.head = self.fingerprint + all_valid.tobytes()  # a row's first bytes when nothing is null
        self.all_valid = all_valid  # the validity bitmap of a row without nulls
        self.null_row = self.fingerprint + bytes(self.width - FINGERPRINT_SIZE)  # every feature null
