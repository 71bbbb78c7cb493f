"""The sort-merge path of as-of joins (``mlharbor.lake.asof_sorted`` and ``asof_merge``): which
sources it takes, and its coarse-time and pruning steps. Every rule of ``asof_join`` is also tested
on this path by ``test_asof.py`` and against an oracle by ``test_asof_property.py``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from mlharbor.errors import InvalidArgument
from mlharbor.lake import asof, asof_merge, asof_sorted
from mlharbor.lake.asof import AsOfSource, asof_join
from mlharbor.lake.asof_merge import Side, merge_asof

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def at(*hours: float) -> pa.Array:
    return pa.array([T0 + timedelta(hours=h) for h in hours], pa.timestamp("us", "UTC"))


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records which engine joined each source ("sorted" or "duckdb")."""
    used: list[str] = []
    sorted_lookup, run_asof_query = asof.sorted_lookup, asof.run_asof_query

    def sorted_spy(labels: pa.Table, plan: Any) -> Any:
        found = sorted_lookup(labels, plan)
        if found is not None:
            used.append("sorted")
        return found

    def duckdb_spy(labels: pa.Table, plans: list[Any]) -> Any:
        used.extend("duckdb" for _ in plans)
        return run_asof_query(labels, plans)

    monkeypatch.setattr(asof, "sorted_lookup", sorted_spy)
    monkeypatch.setattr(asof, "run_asof_query", duckdb_spy)
    return used


def dataset(tmp_path: Path, table: pa.Table) -> pads.Dataset:
    pq.write_table(table, tmp_path / "part-0.parquet")
    return pads.dataset(str(tmp_path / "part-0.parquet"))


# -- which sources it takes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label_key", "feature_key"),
    [
        (pa.array([1, 2], pa.int64()), pa.array([2, 1], pa.int8())),
        (pa.array([2**40, -(2**62)], pa.int64()), pa.array([-(2**62), 2**40], pa.int64())),  # ranked by index_in
        (pa.array(["a", "b"], pa.large_string()), pa.array(["b", "a"], pa.string())),
    ],
    ids=["integers", "wide-integers", "strings"],
)
def test_integer_and_string_keys_take_the_sorted_path(
    label_key: pa.Array, feature_key: pa.Array, engines: list[str], tmp_path: Path
) -> None:
    labels = pa.table({"id": label_key, "ts": at(5, 5)})
    feats = pa.table({"id": feature_key, "ts": at(1, 1), "x": [20.0, 10.0]})
    for data in (feats, dataset(tmp_path, feats)):
        out = asof_join(labels, [AsOfSource(data, ["id"], ["id"], "ts", "ts")])
        assert out.column("x").to_pylist() == [10.0, 20.0]
    assert engines == ["sorted", "sorted"]


def test_composite_keys_and_exact_lookups_take_the_sorted_path(engines: list[str]) -> None:
    labels = pa.table({"u": [1, 1, 2], "s": ["a", "b", "a"], "ts": at(5, 5, 5)})
    feats = pa.table({"u": [1, 1, 2, 2], "s": ["a", "b", "a", "a"], "ts": at(1, 1, 1, 2), "x": [1, 2, 3, 4]})
    exact = pa.table({"s": ["a", "b", "a"], "y": [7, 8, 9]})
    out = asof_join(labels, [AsOfSource(feats, ["u", "s"], ["u", "s"], "ts", "ts"), AsOfSource(exact, ["s"], ["s"])])
    assert out.column("x").to_pylist() == [1, 2, 4]
    assert out.column("y").to_pylist() == [9, 8, 9]
    assert engines == ["sorted", "sorted"]


@pytest.mark.parametrize(
    ("key", "time"),
    [
        (pa.array([1.0]), at(1)),
        (pa.array([Decimal("1")]), at(1)),
        (pa.array(["a"]).dictionary_encode(), at(1)),
        (pa.array([1]), pa.array([date(2024, 3, 1)])),
    ],
    ids=["float", "decimal", "dictionary", "date"],
)
def test_other_key_and_time_types_go_to_duckdb(key: pa.Array, time: pa.Array, engines: list[str]) -> None:
    labels = pa.table({"id": key, "ts": pa.array([time[0].as_py() + timedelta(days=1)], time.type)})
    feats = pa.table({"id": key, "ts": time, "x": [1]})
    assert asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")]).column("x").to_pylist() == [1]
    assert engines == ["duckdb"]


def test_filtered_and_large_datasets_go_to_duckdb(
    engines: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = pa.table({"id": [1], "ts": at(5)})
    data = dataset(tmp_path, pa.table({"id": [1, 1], "ts": at(1, 2), "x": [1, 2]}))
    assert asof_join(labels, [AsOfSource(data.filter(pc.field("x") < 2), ["id"], ["id"], "ts", "ts")]).column(
        "x").to_pylist() == [1]
    monkeypatch.setattr(asof_sorted, "MAX_DATASET_BYTES", 10)
    assert asof_join(labels, [AsOfSource(data, ["id"], ["id"], "ts", "ts")]).column("x").to_pylist() == [2]
    assert engines == ["duckdb", "duckdb"]


def test_an_instant_out_of_nanosecond_range_goes_to_duckdb_which_reports_it(engines: list[str]) -> None:
    labels = pa.table({"id": [1], "ts": pa.array([1], pa.timestamp("ns"))})
    feats = pa.table({"id": [1], "ts": pa.array([datetime(2500, 1, 1)], pa.timestamp("us")), "x": [1]})
    with pytest.raises(InvalidArgument, match="Could not convert Timestamp"):
        asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])
    assert engines == ["duckdb"]


def test_output_types_are_kept_on_the_sorted_path(engines: list[str]) -> None:
    labels = pa.table({"id": ["a", "b", "c"], "ts": at(5, 5, 5)})
    feats = pa.table({
        "id": ["a", "b"],
        "ts": at(1, 1),
        "u64": pa.array([2**63, 3], pa.uint64()),
        "d": pa.array(["p", "q"]).dictionary_encode(),
        "dec": pa.array([Decimal("1.25"), None], pa.decimal128(6, 2)),
        "lst": pa.array([[1, 2], []], pa.list_(pa.int32())),
        "st": pa.array([{"p": 1}, None]),
    })
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts", defaults={"d": "r"})])
    for name in ("u64", "d", "dec", "lst", "st"):
        assert out.schema.field(name).type == feats.schema.field(name).type, name
        expected = [*feats.column(name).to_pylist(), "r" if name == "d" else None]
        assert out.column(name).to_pylist() == expected, name
    assert engines == ["sorted"]


# -- the numpy core -----------------------------------------------------------------------------


def test_rows_sharing_a_coarse_bucket_are_ordered_by_exact_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asof_merge, "CODE_BITS", 4)  # 1 rank bit, 2 position bits: one time bit
    features = Side(np.array([0, 0, 0, 1]), np.array([50, 10, 99, 60]))  # times 0..99 in 2 buckets
    labels = Side(np.array([0, 0, 0, 0, 1, 1]), np.array([9, 10, 49, 100, 59, 70]))
    # rank 0: 10 (row 1), 50 (row 0), 99 (row 2); rank 1: 60 (row 3)
    assert merge_asof(labels, features, 2, None).tolist() == [-1, 1, 1, 2, -1, 3]


def test_ties_in_a_coarse_bucket_go_to_the_last_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asof_merge, "CODE_BITS", 3)
    features = Side(np.array([0, 0, 0, 0]), np.array([7, 3, 7, 3]))
    labels = Side(np.array([0, 0, 0]), np.array([2, 5, 7]))
    assert merge_asof(labels, features, 1, None).tolist() == [-1, 3, 2]


def test_no_room_for_positions_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asof_merge, "CODE_BITS", 2)
    features = Side(np.arange(4), np.zeros(4, dtype=np.int64))
    assert merge_asof(Side(np.array([1]), np.array([0])), features, 4, None) is None


def test_rows_later_than_every_label_of_their_key_are_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    keys, times = rng.integers(0, 50, 20_000), rng.integers(0, 10**6, 20_000)
    labels = Side(rng.integers(-1, 60, 500), rng.integers(0, 10**5, 500))  # early labels: most rows pruned
    pruned: list[int] = []
    prune = asof_merge._prune
    monkeypatch.setattr(asof_merge, "_prune", lambda b, *a: pruned.append(len(prune(b, *a)[0])) or prune(b, *a))
    found = merge_asof(labels, Side(keys, times), 60, None)
    assert found is not None and pruned and pruned[0] < 5_000
    for label, (rank, time) in enumerate(zip(labels.ranks, labels.times, strict=True)):
        candidates = np.flatnonzero((keys == rank) & (times <= time)) if rank >= 0 else []
        best = max(candidates, key=lambda i: (times[i], i)) if len(candidates) else -1
        assert found[label] == best
