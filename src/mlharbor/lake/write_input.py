"""Checking and shaping the data handed to a table write. Pure pyarrow, no backend.

Schema rule (applied before anything is written, so a refused write leaves no trace):

* a column the table does not have is refused unless ``schema_evolution=True``, which adds it;
* a table column missing from the data is filled with nulls when it is nullable (append and
  overwrite), and left untouched by ``merge`` (a partial update); a missing non-nullable column is
  refused;
* a column's type must be the table's type, an Arrow variant of it that the table format stores the
  same way (``large_string``/``string_view`` for ``string``, any timestamp unit, dictionary-encoded
  values, unsigned for signed integers of the same width), or a lossless widening (a narrower
  integer, ``float32`` to ``float64``, an integer of at most 32 bits to ``float64``, a decimal
  with no fewer integer and fraction digits). Everything else is refused — schema evolution adds
  columns, it never changes a column's type.

The error message lists every differing column, with both types.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlharbor.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class WritePlan:
    """How to turn the data into batches of ``target`` schema."""

    target: pa.Schema
    new_columns: list[str] = field(default_factory=list)
    fill: list[str] = field(default_factory=list)
    casts: dict[str, pa.DataType] = field(default_factory=dict)
    reorder: bool = False

    @property
    def identity(self) -> bool:
        """True when batches can be passed through untouched."""
        return not self.fill and not self.casts and not self.reorder


def plan_write(table: pa.Schema, data: pa.Schema, schema_evolution: bool, fill_missing: bool = True) -> WritePlan:
    """Check ``data`` against ``table`` (see the module rule); InvalidArgument lists every difference."""
    import pyarrow as pa

    names = data.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidArgument(f"data has duplicate column names: {', '.join(dupes)}")
    new = [f for f in data if table.get_field_index(f.name) < 0]
    missing = [f for f in table if data.get_field_index(f.name) < 0]
    problems: list[str] = []
    if new and not schema_evolution:
        problems.append(
            "new columns not in the table: "
            + ", ".join(f"{f.name} ({f.type})" for f in new)
            + " — pass schema_evolution=True to add them"
        )
    untyped = [f.name for f in new if pa.types.is_null(f.type)]
    if new and schema_evolution and untyped:
        problems.append(f"new columns with only nulls have no type to add: {', '.join(untyped)}")
    required = [f for f in missing if not f.nullable]
    if required:
        problems.append("missing non-nullable columns: " + ", ".join(f"{f.name} ({f.type})" for f in required))
    casts: dict[str, pa.DataType] = {}
    mismatched: list[str] = []
    for target_field in table:
        idx = data.get_field_index(target_field.name)
        if idx < 0:
            continue
        source_type = data.field(idx).type
        verdict = compatibility(source_type, target_field.type)
        if verdict is None:
            mismatched.append(f"{target_field.name}: table {target_field.type}, data {source_type}")
        elif verdict == "cast":
            casts[target_field.name] = target_field.type
    if mismatched:
        problems.append("type changes (never applied, even with schema_evolution): " + "; ".join(mismatched))
    if problems:
        raise InvalidArgument("data does not match the table's schema: " + ". ".join(problems))
    return _plan(table, data, new, missing if fill_missing else [], casts)


def _plan(
    table: pa.Schema,
    data: pa.Schema,
    new: list[pa.Field],
    fill: list[pa.Field],
    casts: dict[str, pa.DataType],
) -> WritePlan:
    import pyarrow as pa

    fields: list[pa.Field] = []
    fill_names = {f.name for f in fill}
    for target_field in table:
        if target_field.name in fill_names:
            fields.append(target_field.with_nullable(True))
        elif target_field.name in casts:
            fields.append(pa.field(target_field.name, casts[target_field.name]))
        elif data.get_field_index(target_field.name) >= 0:
            fields.append(data.field(target_field.name))
    fields.extend(new)
    target = pa.schema(fields)
    return WritePlan(target, [f.name for f in new], sorted(fill_names), casts, target.names != data.names)


def compatibility(source: pa.DataType, target: pa.DataType) -> str | None:
    """``"same"`` (stored identically), ``"cast"`` (lossless widening), or None (refused)."""
    import pyarrow as pa

    if source == target:
        return "same"
    if pa.types.is_null(source):
        return "cast"
    if pa.types.is_dictionary(source):
        return "cast" if compatibility(source.value_type, target) else None
    if normalise(source) == normalise(target):
        return "same"
    return "cast" if _widens(source, target) else None


def normalise(t: pa.DataType) -> pa.DataType:
    """The type the table format stores for Arrow type ``t`` (string variants collapse, etc.)."""
    import pyarrow as pa

    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        return pa.binary()
    if pa.types.is_unsigned_integer(t):
        return pa.from_numpy_dtype(f"int{t.bit_width}")
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_dictionary(t):
        return normalise(t.value_type)
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    ):
        return pa.list_(normalise(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(normalise(t.key_type), normalise(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, normalise(f.type)) for f in t.fields])
    return t


def _widens(source: pa.DataType, target: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_integer(source) and pa.types.is_signed_integer(target):
        extra = 0 if pa.types.is_signed_integer(source) else 1
        return bool(source.bit_width + extra <= target.bit_width)
    if pa.types.is_floating(source) and pa.types.is_float64(target):
        return True
    if pa.types.is_integer(source) and pa.types.is_float64(target):
        return bool(source.bit_width <= 32)
    if pa.types.is_decimal(source) and pa.types.is_decimal(target):
        return bool(target.scale >= source.scale and target.precision - target.scale >= source.precision - source.scale)
    return False


def conform(data: Any, plan: WritePlan) -> Any:
    """Reorder, cast and null-fill a ``pa.Table`` or ``pa.RecordBatch`` to ``plan.target``."""
    import pyarrow as pa

    if plan.identity:
        return data
    columns = []
    for target_field in plan.target:
        if target_field.name in plan.fill:
            columns.append(pa.nulls(data.num_rows, target_field.type))
            continue
        column = data.column(target_field.name)
        if target_field.name in plan.casts:
            column = column.cast(target_field.type)
        columns.append(column)
    return type(data).from_arrays(columns, schema=plan.target)


class WriteInput:
    """The data of one write: a ``pa.Table`` (replayable) or a ``pa.RecordBatchReader`` (streamed once).

    A reader is never materialised except by :meth:`materialise` (used by merge); :meth:`is_empty`
    reads ahead only until the first non-empty batch.
    """

    def __init__(self, data: Any) -> None:
        import pyarrow as pa

        self._table: pa.Table | None = None
        self._reader: pa.RecordBatchReader | None = None
        if isinstance(data, pa.Table):
            self._table = data
        elif isinstance(data, pa.RecordBatchReader):
            self._reader = data
        elif hasattr(data, "__arrow_c_stream__"):
            self._reader = pa.RecordBatchReader.from_stream(data)
        else:
            raise InvalidArgument(f"data must be a pyarrow Table or RecordBatchReader, got {type(data).__name__}")
        self.schema: pa.Schema = (self._table if self._table is not None else self._reader).schema  # type: ignore[union-attr]
        self._head: list[pa.RecordBatch] = []
        self._exhausted = False
        self._started = False
        #: rows handed to the writer by the last :meth:`reader`
        self.rows = 0

    @property
    def replayable(self) -> bool:
        """True while the data can still be written (again)."""
        return self._table is not None or not self._started

    def is_empty(self) -> bool:
        """True if the data has no rows (a reader is read up to its first non-empty batch)."""
        if self._table is not None:
            return bool(self._table.num_rows == 0)
        assert self._reader is not None
        while not self._head or self._head[-1].num_rows == 0:
            try:
                self._head.append(self._reader.read_next_batch())
            except StopIteration:
                self._exhausted = True
                return True
        return False

    def materialise(self) -> pa.Table:
        """The whole data as a table (consumes a reader; the result is kept for replays)."""
        import pyarrow as pa

        if self._table is None:
            assert self._reader is not None
            rest = [] if self._exhausted else list(self._reader)
            self._table = pa.Table.from_batches(self._head + rest, schema=self.schema)
            self._head, self._reader = [], None
        return self._table

    def reader(self, plan: WritePlan) -> pa.Table | pa.RecordBatchReader:
        """The data conformed to ``plan``: a table as is, or a lazily converted reader."""
        import pyarrow as pa

        if not self.replayable:
            raise RuntimeError("a RecordBatchReader can be written only once")
        if self._table is not None:
            out = conform(self._table, plan)
            self.rows = out.num_rows
            return out
        self._started = True
        self.rows = 0
        return pa.RecordBatchReader.from_batches(plan.target, self._batches(plan))

    def _batches(self, plan: WritePlan) -> Iterator[pa.RecordBatch]:
        head, self._head = self._head, []
        yield from self._count(head, plan)
        if not self._exhausted and self._reader is not None:
            yield from self._count(self._reader, plan)

    def _count(self, batches: Any, plan: WritePlan) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                self.rows += batch.num_rows
                yield conform(batch, plan)


def check_write_args(mode: str, keys: list[str] | None, txn_id: str | None) -> None:
    """InvalidArgument for an unknown mode, merge without keys, keys without merge, or a blank txn id."""
    modes = ("append", "overwrite", "merge")
    if mode not in modes:
        raise InvalidArgument(f"mode must be one of {', '.join(modes)}, got {mode!r}")
    if mode == "merge" and not keys:
        raise InvalidArgument("mode='merge' needs keys: the columns that identify a row")
    if keys and mode != "merge":
        raise InvalidArgument("keys are used only by mode='merge'")
    if txn_id is not None and (not isinstance(txn_id, str) or not txn_id.strip()):
        raise InvalidArgument("txn_id must be a non-empty string")


def check_keys(keys: list[str], plan: WritePlan, table: pa.Schema) -> None:
    """InvalidArgument unless every merge key is a column of both the table and the data, once."""
    missing = [k for k in keys if k not in plan.target.names or table.get_field_index(k) < 0]
    if missing:
        raise InvalidArgument(f"merge keys must be columns of both the table and the data: {', '.join(missing)}")
    if len(set(keys)) != len(keys):
        raise InvalidArgument("merge keys must not repeat")


def check_unique_keys(table: pa.Table, keys: list[str]) -> None:
    """InvalidArgument if two source rows share a key (nulls equal each other), with examples."""
    import pyarrow.compute as pc

    if table.num_rows < 2:
        return
    counts = table.select(keys).group_by(keys, use_threads=False).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts.column("count_all"), 1))
    if dupes.num_rows:
        examples = dupes.select(keys).slice(0, 5).to_pylist()
        raise InvalidArgument(
            f"the merge source has {dupes.num_rows} duplicate key(s) on {', '.join(keys)}, e.g. {examples}; "
            "each key may appear once"
        )
