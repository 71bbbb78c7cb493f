"""The DuckDB side of as-of joins (:mod:`mlharbor.lake.asof`): relations, order keys, the query.

**Relations.** Each source becomes a relation with internal column names (``__k0…`` keys, ``__t``
timestamp, ``__f0…`` features) and its scan position (``__rn``, plus ``__fi`` the file index for
Parquet files read natively). Local Parquet datasets of at least ``DEFAULT_NATIVE_MIN_BYTES`` are
read by DuckDB's Parquet reader on a connection confined to their files (when it gives the keys the
same types as Arrow, and times and features the same or finer ones); tables and small local
datasets are registered as Arrow tables; other datasets (remote, filtered) are streamed once,
numbered batch by batch.

**Order keys.** Each source's ``ASOF`` inequality runs on one integer that orders feature rows by
``(instant, scan position)``, so the tie rule needs no de-duplication pass. Its width matters:
DuckDB's sort is markedly faster on narrow keys (measured on 10M rows: a 128-bit order key beside a
BIGINT entity id cost ~40% over a plain ASOF join; beside an INTEGER id, ~8%; a 64-bit key, ~3%).
So, from one statistics query over the source (instant range and step, positions, integer key
ranges; a few percent of the join), when the source can be scanned twice:

* **packed** (BIGINT): ``(instant - min) / step * 2^b + position`` when it fits in 63 bits, where
  ``step`` is the coarsest of day, hour, minute, second, millisecond, microsecond dividing every
  feature instant;
* **wide** (HUGEINT): ``(instant + 2^63) * 2^63 + position`` otherwise; an integer key whose feature
  values all fit INTEGER is then compared as INTEGER (a label value outside cannot match anyway).

A streamed source gets the wide key, unnarrowed. Sources without a timestamp order by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlharbor.lake.duck import Lease, quote_ident, shared_pool, translate_duckdb_error
from mlharbor.lake.native_scan import DEFAULT_NATIVE_MIN_BYTES, local_parquet_files, sql_list, total_size

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

_OFFSET = 2**63  # shifts a signed 64-bit instant to a non-negative one
_WIDE_SHIFT = 2**63  # room for a position below the instant in a wide key
_NATIVE_ROW_BITS = 40  # wide keys of native reads: file index above 40 bits of row number
_INT32 = (-(2**31), 2**31 - 1)
#: candidate steps of feature instants in microseconds, finest first, each dividing the next
_STEPS_US = (1_000, 1_000_000, 60_000_000, 3_600_000_000, 86_400_000_000)


@dataclass
class SourcePlan:
    """A validated source, as the query needs it (built by :mod:`mlharbor.lake.asof`)."""

    index: int
    data: pads.Dataset | pa.Table
    keys: list[str]
    label_keys: list[str]
    timestamp: str | None
    label_timestamp: str | None
    outputs: list[tuple[str, str]]  # (feature column, output column), looked-up ones only
    unit: str | None  # "us" or "ns" for time-series sources
    lookback: int | None  # in ``unit``
    defaults: dict[str, Any] = field(default_factory=dict)  # output column -> pa.Scalar

    @property
    def needs_match_flag(self) -> bool:
        """Whether the query must say which label rows matched (lookback and defaults need it)."""
        return self.lookback is not None or bool(self.defaults)


@dataclass
class _Relation:
    sql: str
    native: bool  # positions are (__fi, __rn)
    rescannable: bool  # may be read twice (statistics, then the join)


@dataclass(frozen=True)
class _Packed:
    t_min: int
    step: int
    span: int  # (max - min) / step
    bits: int  # position bits

    def order(self, t: str, seq: str) -> str:
        return f"(({t} - ({self.t_min})) // {self.step}) * {2**self.bits} + {seq}"

    def probe(self, x: str) -> str:
        # least/greatest skip nulls, so a null lookup time is handled first
        scaled = f"least(({x} - ({self.t_min})) // {self.step}, {self.span})"
        below = f"WHEN {x} IS NULL THEN NULL WHEN {x} < ({self.t_min}) THEN -1"
        return f"(CASE {below} ELSE {scaled} * {2**self.bits} + {2**self.bits - 1} END)::BIGINT"

    def low(self, x: str, lookback: int) -> str:
        ceil = f"({x} - {lookback} - ({self.t_min}) + {self.step - 1}) // {self.step}"
        return f"greatest({ceil}, 0) * {2**self.bits}"


@dataclass(frozen=True)
class _Wide:
    narrow: frozenset[int] = frozenset()  # key positions compared as INTEGER

    def order(self, t: str, seq: str) -> str:
        return f"({t}::HUGEINT + {_OFFSET}) * {_WIDE_SHIFT} + {seq}"

    def probe(self, x: str) -> str:
        return f"({x} + {_OFFSET}) * {_WIDE_SHIFT} + {_WIDE_SHIFT - 1}"

    def low(self, x: str, lookback: int) -> str:
        return f"greatest({x} - {lookback} + {_OFFSET}, 0) * {_WIDE_SHIFT}"


def run_asof_query(labels: pa.Table, plans: list[SourcePlan]) -> pa.Table:
    """One row per label row: ``__rid`` (its position), ``__s<i>_<j>`` (feature j of source i) and
    ``__m<i>`` (whether source i matched, for sources with a lookback or defaults), in no order."""
    import duckdb

    label_columns = _label_columns(plans)
    native = {p.index: files for p in plans if (files := _native_files(p.data)) is not None}
    pool = shared_pool(None, "50%", None)
    allowed = sorted({f for files in native.values() for f in files})
    with pool.acquire_native(allowed) if allowed else pool.acquire() as lease:
        try:
            lease.register("__mlh_asof_labels", _label_table(labels, label_columns))
            parts = [_source_part(lease, p, native.get(p.index), label_columns) for p in plans]
            sql = _query(parts, label_columns)
            return lease.con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise translate_duckdb_error(exc, "as-of join") from exc


def _label_columns(plans: list[SourcePlan]) -> dict[str, str]:
    """Label column name -> internal name, for every key and lookup-time column used."""
    names: dict[str, str] = {}
    for plan in plans:
        for name in [*plan.label_keys, *([plan.label_timestamp] if plan.label_timestamp else [])]:
            names.setdefault(name, f"__l{len(names)}")
    return names


def _label_table(labels: pa.Table, columns: dict[str, str]) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    rid = pa.array(np.arange(labels.num_rows, dtype=np.int64))
    return pa.Table.from_arrays([rid, *(labels.column(n) for n in columns)], names=["__rid", *columns.values()])


# -- relations ----------------------------------------------------------------------------------


def _internal_columns(plan: SourcePlan) -> dict[str, str]:
    """Internal name -> data column, for what the join reads from a source."""
    columns = {f"__k{j}": key for j, key in enumerate(plan.keys)}
    if plan.timestamp is not None:
        columns["__t"] = plan.timestamp
    columns.update({f"__f{j}": feature for j, (feature, _) in enumerate(plan.outputs)})
    return columns


def _native_files(data: pads.Dataset | pa.Table) -> list[str] | None:
    import pyarrow.dataset as pads

    if not isinstance(data, pads.Dataset):
        return None
    files = local_parquet_files(data)
    return files if files is not None and total_size(files) >= DEFAULT_NATIVE_MIN_BYTES else None


def _relation(lease: Lease, plan: SourcePlan, files: list[str] | None) -> _Relation:
    import pyarrow as pa

    columns = _internal_columns(plan)
    name = f"__mlh_asof_s{plan.index}"
    if files is not None:
        lease.register(name, plan.data)
        native = _native_relation(lease, files, name, columns)
        if native is not None:
            return _Relation(native, native=True, rescannable=True)
        name += "_arrow"
    arrow = _arrow_relation(plan.data, columns)
    lease.register(name, arrow)
    return _Relation(name, native=False, rescannable=isinstance(arrow, pa.Table))


def _native_relation(lease: Lease, files: list[str], arrow_name: str, columns: dict[str, str]) -> str | None:
    """DuckDB's Parquet reader over ``files``, if it yields the same columns and types as Arrow."""
    import duckdb

    select = ", ".join(f"{quote_ident(real)} AS {internal}" for internal, real in columns.items())
    reader = f"read_parquet({sql_list(files)}, union_by_name = true, file_row_number = true)"
    native = f"(SELECT {select}, file_index::BIGINT AS __fi, file_row_number AS __rn FROM {reader})"
    try:
        wanted = lease.con.execute(f"DESCRIBE SELECT {select} FROM {quote_ident(arrow_name)}").fetchall()
        got = lease.con.execute(f"DESCRIBE SELECT * FROM {native}").fetchall()
    except duckdb.Error:
        return None  # e.g. a DuckDB without file_index: the Arrow path gives the same rows
    # keys compare by value: their types must be the same; times and features may be finer
    same = len(got) > len(wanted) and all(
        w[0] == g[0] and (w[1] == g[1] or (not w[0].startswith("__k") and _same_or_finer(str(w[1]), str(g[1]))))
        for w, g in zip(wanted, got, strict=False)
    )
    return native if same else None


#: DuckDB's timestamp types, coarsest first (zone-aware ones beside their naive peers)
_TIMESTAMP_RANK = {"TIMESTAMP_S": 0, "TIMESTAMP_MS": 1, "TIMESTAMP": 2, "TIMESTAMP WITH TIME ZONE": 2,
                   "TIMESTAMP_NS": 3, "TIMESTAMPTZ_NS": 3}


def _same_or_finer(arrow: str, native: str) -> bool:
    """Whether DuckDB's type for a Parquet column loses nothing against the Arrow type.

    Timestamps may differ in unit or zone flag (DuckDB reads a naive millisecond column as
    TIMESTAMP): the join compares epoch instants, and output columns are cast back to their type.
    """
    if arrow == native:
        return True
    ranks = _TIMESTAMP_RANK.get(arrow), _TIMESTAMP_RANK.get(native)
    return ranks[0] is not None and ranks[1] is not None and ranks[1] >= ranks[0]


def _arrow_relation(data: pads.Dataset | pa.Table, columns: dict[str, str]) -> pa.Table | pa.RecordBatchReader:
    """The source's columns under internal names, with ``__rn`` numbering rows in scan order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    projection = {internal: pc.field(real) for internal, real in columns.items()}
    if isinstance(data, pads.Dataset) and _materialise(data):
        data = data.to_table(columns=projection)  # in scan order
        columns = {name: name for name in columns}
    if isinstance(data, pa.Table):
        arrays = [data.column(real) for real in columns.values()]
        seq = pa.array(np.arange(data.num_rows, dtype=np.int64))
        return pa.Table.from_arrays([*arrays, seq], names=[*columns, "__rn"])
    scanner = data.scanner(columns=projection)
    schema = scanner.projected_schema.append(pa.field("__rn", pa.int64()))

    def numbered() -> Any:
        start = 0
        for batch in scanner.to_batches():  # in scan order: fragments in files order, rows in order
            seq = pa.array(np.arange(start, start + batch.num_rows, dtype=np.int64))
            start += batch.num_rows
            yield pa.RecordBatch.from_arrays([*batch.columns, seq], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, numbered())


def _materialise(data: pads.Dataset) -> bool:
    """In-memory datasets and small local ones are read whole; the rest is streamed."""
    import pyarrow.dataset as pads

    if isinstance(data, pads.InMemoryDataset):
        return True
    files = local_parquet_files(data)
    return files is not None and total_size(files) < DEFAULT_NATIVE_MIN_BYTES


# -- order keys -----------------------------------------------------------------------------------


@dataclass
class _Part:
    """One source's piece of the query."""

    plan: SourcePlan
    body: str  # SELECT of keys, __o (order key) and features, null keys and times filtered
    probes: list[str]  # label-side columns: __p<i>, __lo<i>, narrowed keys __n<i>_<j>
    label_keys: list[str]  # label-side expressions compared with __k<j>


def _source_part(lease: Lease, plan: SourcePlan, files: list[str] | None, label_columns: dict[str, str]) -> _Part:
    relation = _relation(lease, plan, files)
    i, unit = plan.index, plan.unit
    keys = [f"__k{j}" for j in range(len(plan.keys))]
    where = [f"{k} IS NOT NULL" for k in keys]
    seq = f"(__fi << {_NATIVE_ROW_BITS}) + __rn" if relation.native else "__rn"
    label_keys = [label_columns[k] for k in plan.label_keys]
    probes: list[str] = []
    if unit is None:
        order, probes = seq, [f"{_OFFSET - 1}::BIGINT AS __p{i}"]
    else:
        where.append("__t IS NOT NULL")
        encoding, seq = _encoding(lease, plan, relation, where, seq)
        x = f"epoch_{unit}({label_columns[plan.label_timestamp or '']})::HUGEINT"
        order = encoding.order(f"epoch_{unit}(__t)", seq)
        probes.append(f"{encoding.probe(x)} AS __p{i}")
        if plan.lookback is not None:
            probes.append(f"{encoding.low(x, plan.lookback)} AS __lo{i}")
        if isinstance(encoding, _Wide):
            for j in sorted(encoding.narrow):
                keys[j] = f"__k{j}::INTEGER AS __k{j}"
                probes.append(f"TRY_CAST({label_keys[j]} AS INTEGER) AS __n{i}_{j}")
                label_keys[j] = f"__n{i}_{j}"
    features = "".join(f", __f{j}" for j in range(len(plan.outputs)))
    body = f"SELECT {', '.join(keys)}, {order} AS __o{features} FROM {relation.sql} WHERE {' AND '.join(where)}"
    return _Part(plan, body, probes, label_keys)


def _encoding(
    lease: Lease, plan: SourcePlan, relation: _Relation, where: list[str], seq: str
) -> tuple[_Packed | _Wide, str]:
    """The narrowest order key for a time-series source, and the position expression it uses."""
    if not relation.rescannable:
        return _Wide(), seq
    unit = plan.unit or "us"
    steps = (1, *_STEPS_US) if unit == "us" else (1, 1000, *(s * 1000 for s in _STEPS_US))
    # the steps divide each other, so the first one failing ends the search (CASE stops there)
    finest = " ".join(f"WHEN t % {s} <> 0 THEN {n}" for n, s in enumerate(steps[1:]))
    ints = [j for j, name in enumerate(plan.keys) if _wide_integer(plan.data.schema.field(name).type)]
    stats = [
        "count(*)", "min(t)", "max(t)", "max(__rn)", "max(__fi)" if relation.native else "0",
        f"min(CASE {finest} ELSE {len(steps) - 1} END)",
        *(f"min(__k{j}), max(__k{j})" for j in ints),
    ]  # fmt: skip
    inner = f"SELECT epoch_{unit}(__t) AS t, * FROM {relation.sql} WHERE {' AND '.join(where)}"
    rows = lease.con.execute(f"SELECT {', '.join(stats)} FROM ({inner})").fetchall()
    row = rows[0] if rows else None
    if row is None or not row[0]:
        return _Wide(), seq
    t_min, t_max, max_rn, max_fi, step = row[1], row[2], row[3], row[4], steps[row[5]]
    row_bits = int(max_rn).bit_length()
    bits = int(max_fi).bit_length() + row_bits
    span = (t_max - t_min) // step
    if span.bit_length() + bits <= 63:
        packed_seq = f"(__fi << {row_bits}) + __rn" if relation.native else "__rn"
        return _Packed(t_min, step, span, bits), packed_seq
    ranges = row[6:]
    narrow = [j for n, j in enumerate(ints) if _INT32[0] <= ranges[2 * n] and ranges[2 * n + 1] <= _INT32[1]]
    return _Wide(frozenset(narrow)), seq


def _wide_integer(t: pa.DataType) -> bool:
    """An integer type wider than INTEGER (so narrowing it may shorten the sort key)."""
    import pyarrow as pa

    if pa.types.is_dictionary(t) or not pa.types.is_integer(t):
        return False
    return bool(t.bit_width > 32 or (t.bit_width == 32 and pa.types.is_unsigned_integer(t)))


# -- the query ----------------------------------------------------------------------------------


def _query(parts: list[_Part], label_columns: dict[str, str]) -> str:
    """The chained ``ASOF LEFT JOIN``s: one row per label row, with ``__rid``."""
    selects, joins, probes = ["l.__rid"], [], []
    for part in parts:
        i, plan = part.plan.index, part.plan
        probes += part.probes
        on = [f"l.{lk} = s{i}.__k{j}" for j, lk in enumerate(part.label_keys)]
        joins.append(f"ASOF LEFT JOIN ({part.body}) s{i} ON {' AND '.join(on)} AND l.__p{i} >= s{i}.__o")
        selects += [f"s{i}.__f{j} AS __s{i}_{j}" for j in range(len(plan.outputs))]
        if plan.needs_match_flag:
            lookback = f" AND s{i}.__o >= l.__lo{i}" if plan.lookback is not None else ""
            selects.append(f"(s{i}.__o IS NOT NULL{lookback}) AS __m{i}")
    labels = ", ".join(["__rid", *label_columns.values(), *probes])
    return f"WITH l AS (SELECT {labels} FROM __mlh_asof_labels) SELECT {', '.join(selects)} FROM l {' '.join(joins)}"
