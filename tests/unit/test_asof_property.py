"""``asof_join`` against a brute-force oracle on random data (hypothesis).

The oracle scans every feature row for every label row in plain Python and applies the documented
rules itself: same non-null keys, latest timestamp ``<=`` the lookup time, within the lookback,
ties to the row last in scan order, defaults only when nothing matched, label columns win.

Times are drawn as integer ticks and written in random units and zones (naive meaning UTC), so the
oracle compares the drawn integers while the engine sees zoned, unit-converted columns:

* "seconds" draws: ticks are milliseconds; feature times are a few whole seconds (many ties),
  lookup times may fall half a second between them, around a random epoch (before 1970 too);
* "fine" draws: ticks are nanoseconds, ~32 years apart plus a few nanoseconds, which need the
  engine's wide (128-bit) order keys.

Sources are tables or datasets of 1-3 Parquet files (ties across files), read as Arrow or by
DuckDB's Parquet reader; keys are integers (some beyond INTEGER), strings or both, with nulls.

Each problem runs on one engine: the numpy sort-merge path (``asof_sorted``), the same with codes
of 12 to 24 bits (so times are coarsened into buckets that many rows share), or DuckDB's query.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlharbor.lake import asof_merge, asof_query, asof_sorted
from mlharbor.lake.asof import AsOfSource, asof_join

ZONES = [None, "UTC", "Asia/Tokyo", "America/New_York"]
UNITS = ["s", "ms", "us", "ns"]
PER_MS = {"s": (1, 1000), "ms": (1, 1), "us": (1000, 1), "ns": (1_000_000, 1)}  # (multiply, divide)
FINE_STEP = 10**18  # ns, about 32 years
LABEL_COLUMNS = ["l_k_int", "l_k_str", "lt0", "lt1", "label"]


@dataclass
class Source:
    """A drawn source: its rows in scan order, how it is stored, and the lookup options."""

    keys: list[str]  # "k_int" and/or "k_str"
    rows: list[dict[str, Any]]  # k_int, k_str, t (ticks or None), a, b
    time_series: bool
    label_time: str  # "lt0" or "lt1"
    unit: str
    zone: str | None
    features: list[str] | None
    rename: dict[str, str]
    lookback: int | None  # whole seconds
    defaults: dict[str, Any]
    files: int  # 0: a table; n: a dataset of n Parquet files

    @property
    def label_keys(self) -> list[str]:
        return [f"l_{k}" for k in self.keys]

    @property
    def outputs(self) -> list[str]:
        return ["a", "b"] if self.features is None else self.features


@dataclass
class Problem:
    rows: list[dict[str, Any]]  # label rows
    sources: list[Source]
    base: int  # seconds added to every time in "seconds" draws
    fine: bool
    native: bool  # datasets read by DuckDB's Parquet reader
    engine: str  # "sorted", "duckdb", or "coarse:<bits per code>"

    def lookback(self, src: Source) -> timedelta | None:
        """A source's lookback: whole seconds, or whole ~32-year steps in "fine" draws."""
        if src.lookback is None:
            return None
        return timedelta(seconds=src.lookback * (FINE_STEP // 10**9 if self.fine else 1))

    def lookback_ticks(self, src: Source) -> int | None:
        if src.lookback is None:
            return None
        return src.lookback * (FINE_STEP if self.fine else 1000)


def key_values(kind: str) -> st.SearchStrategy[Any]:
    """Few values (many matches), some nulls, rarely an integer beyond INTEGER (no key narrowing)."""
    if kind == "k_str":
        return st.sampled_from([None, "a", "b", "c", "a", "b"])
    return st.sampled_from([None, 0, 1, 2, 3, 0, 1, 2, 2**40])


def feature_times(fine: bool) -> st.SearchStrategy[int | None]:
    steps = st.integers(0, 5).map(lambda s: s * FINE_STEP + s if fine else s * 1000)
    return st.one_of(st.none(), steps, steps, steps)


def offsets(fine: bool) -> st.SearchStrategy[int]:
    """Lookup times on a feature time, or just after it (half a second, or one nanosecond)."""
    return st.sampled_from([0, 1 if fine else 500])


@st.composite
def sources(draw: st.DrawFn, index: int, fine: bool) -> Source:
    keys = draw(st.sampled_from([["k_int"], ["k_str"], ["k_int", "k_str"]]))
    rows = [
        {"k_int": draw(key_values("k_int")), "k_str": draw(key_values("k_str")), "t": draw(feature_times(fine)),
         "a": draw(st.one_of(st.none(), st.floats(-5, 5, allow_nan=False))), "b": draw(st.integers(-9, 9))}
        for _ in range(draw(st.integers(0, 12)))
    ]
    if rows:  # ties: copies of rows (same keys and time) with other values, anywhere in the order
        copies = [dict(r, a=draw(st.floats(-5, 5)), b=draw(st.integers(-9, 9)))
                  for r in draw(st.lists(st.sampled_from(rows), max_size=4))]
        rows = draw(st.permutations(rows + copies))
    time_series = draw(st.sampled_from([True, True, False]))
    features = draw(st.sampled_from([None, ["a"], ["b", "a"]]))
    outputs = ["a", "b"] if features is None else features
    rename = {f: f"{f}{index}" for f in outputs}
    if draw(st.booleans()):
        rename[outputs[0]] = "label"  # a label column already: the input wins
    return Source(
        keys=keys,
        rows=rows,
        time_series=time_series,
        label_time=draw(st.sampled_from(["lt0", "lt1"])),
        unit="ns" if fine else draw(st.sampled_from(UNITS)),
        zone=draw(st.sampled_from(ZONES)),
        features=features,
        rename=rename,
        lookback=draw(st.sampled_from([None, None, 0, 1, 2, 4])) if time_series else None,
        defaults={rename[f]: draw(st.sampled_from([None, 0, 7])) for f in outputs if draw(st.booleans())},
        files=draw(st.integers(0, 3)),
    )


@st.composite
def label_rows(draw: st.DrawFn, srcs: list[Source], fine: bool) -> dict[str, Any]:
    """A label row, often with the keys and times of drawn feature rows (so that lookups hit)."""
    pool = [r for src in srcs for r in src.rows]
    row: dict[str, Any] = {"label": draw(st.integers(0, 99))}
    like = draw(st.sampled_from(pool)) if pool and draw(st.booleans()) else None
    for key in ("k_int", "k_str"):
        row[f"l_{key}"] = like[key] if like is not None and draw(st.integers(0, 3)) else draw(key_values(key))
    for column in ("lt0", "lt1"):
        choice = draw(st.integers(0, 2))
        if like is not None and choice:
            when = like["t"] if choice == 1 else draw(st.sampled_from(pool))["t"]
        else:
            when = draw(feature_times(fine))
        row[column] = None if when is None else when + draw(offsets(fine))
    return row


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    fine = draw(st.booleans())
    base = 0 if fine else draw(st.sampled_from([0, 1_700_000_000, -2_000_000_000]))
    srcs = [draw(sources(i, fine)) for i in range(draw(st.integers(1, 3)))]
    rows = [draw(label_rows(srcs, fine)) for _ in range(draw(st.integers(0, 12)))]
    rows += draw(st.lists(st.sampled_from(rows), max_size=4)) if rows else []  # duplicated label rows
    engine = draw(st.sampled_from(["sorted", "duckdb", "coarse:12", "coarse:16", "coarse:24"]))
    return Problem(rows, srcs, base, fine, native=draw(st.booleans()), engine=engine)


# -- building the inputs ----------------------------------------------------------------------------


def ts_array(ticks: list[int | None], problem: Problem, unit: str, zone: str | None) -> pa.Array:
    if problem.fine:
        return pa.array(ticks, pa.timestamp("ns", tz=zone))
    mul, div = PER_MS[unit]
    values = [None if t is None else (problem.base * 1000 + t) * mul // div for t in ticks]
    return pa.array(values, pa.timestamp(unit, tz=zone))


def feature_table(src: Source, problem: Problem) -> pa.Table:
    types = {"k_int": pa.int64(), "k_str": pa.string()}
    table = pa.table({key: pa.array([r[key] for r in src.rows], types[key]) for key in src.keys})
    if src.time_series:
        table = table.append_column("t", ts_array([r["t"] for r in src.rows], problem, src.unit, src.zone))
    table = table.append_column("a", pa.array([r["a"] for r in src.rows], pa.float64()))
    return table.append_column("b", pa.array([r["b"] for r in src.rows], pa.int32()))


def label_table(problem: Problem) -> pa.Table:
    rows = problem.rows
    return pa.table({
        "l_k_int": pa.array([r["l_k_int"] for r in rows], pa.int64()),
        "l_k_str": pa.array([r["l_k_str"] for r in rows], pa.large_string()),
        "lt0": ts_array([r["lt0"] for r in rows], problem, "us", "UTC"),
        "lt1": ts_array([r["lt1"] for r in rows], problem, "ns", "Europe/Oslo"),
        "label": pa.array([r["label"] for r in rows], pa.int64()),
    })


def stored(src: Source, table: pa.Table, root: Path, index: int) -> pa.Table | pads.Dataset:
    if src.files == 0:
        return table
    size = -(-table.num_rows // src.files) or 1
    paths = []
    for n in range(src.files):
        path = root / f"s{index}-{n}.parquet"
        pq.write_table(table.slice(n * size, size), path)
        paths.append(str(path))
    return pads.dataset(paths, format="parquet")


def as_source(src: Source, data: pa.Table | pads.Dataset, problem: Problem) -> AsOfSource:
    return AsOfSource(
        data=data,
        keys=src.keys,
        label_keys=src.label_keys,
        timestamp="t" if src.time_series else None,
        label_timestamp=src.label_time if src.time_series else None,
        features=src.features,
        rename=src.rename,
        lookback=problem.lookback(src),
        defaults=src.defaults,
    )


# -- the oracle -------------------------------------------------------------------------------------


def oracle(problem: Problem) -> dict[str, list[Any]]:
    """The documented semantics, by brute force: output column -> values in label order."""
    out: dict[str, list[Any]] = {}
    for src in problem.sources:
        for feature in src.outputs:
            name = src.rename[feature]
            if name not in LABEL_COLUMNS:  # the input wins
                out[name] = [_lookup(problem, src, row, feature, name) for row in problem.rows]
    return out


def _lookup(problem: Problem, src: Source, label: dict[str, Any], feature: str, name: str) -> Any:
    wanted = [label[k] for k in src.label_keys]
    if any(v is None for v in wanted):
        return src.defaults.get(name)
    rows = [r for r in src.rows if [r[k] for k in src.keys] == wanted]
    if src.time_series:
        when, lookback = label[src.label_time], problem.lookback_ticks(src)
        rows = [r for r in rows if when is not None and r["t"] is not None and r["t"] <= when
                and (lookback is None or r["t"] >= when - lookback)]
        if rows:
            latest = max(r["t"] for r in rows)
            rows = [r for r in rows if r["t"] == latest]
    if not rows:
        return src.defaults.get(name)
    return rows[-1][feature]  # ties: the last in scan order


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_asof_join_matches_the_oracle(problem: Problem) -> None:
    labels = label_table(problem)
    threshold = 0 if problem.native else asof_query.DEFAULT_NATIVE_MIN_BYTES
    enabled = problem.engine != "duckdb"
    bits = int(problem.engine.split(":")[1]) if problem.engine.startswith("coarse") else asof_merge.CODE_BITS
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(asof_query, "DEFAULT_NATIVE_MIN_BYTES", threshold),
        mock.patch.object(asof_sorted, "ENABLED", enabled),
        mock.patch.object(asof_merge, "CODE_BITS", bits),
    ):
        sources = [
            as_source(src, stored(src, feature_table(src, problem), Path(tmp), i), problem)
            for i, src in enumerate(problem.sources)
        ]
        result = asof_join(labels, sources)
    expected = oracle(problem)
    assert result.column_names == labels.column_names + list(expected)
    assert result.select(labels.column_names).equals(labels)
    for name, values in expected.items():
        assert result.column(name).to_pylist() == values, name
