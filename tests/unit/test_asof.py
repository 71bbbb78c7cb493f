"""Point-in-time joins (``mlharbor.lake.asof``): each documented rule on small hand-made tables.

Every test runs on each engine: the numpy sort-merge path (``mlharbor.lake.asof_sorted``), the same
with codes so narrow that every time is coarsened, and DuckDB's ASOF query (``asof_query``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from mlharbor.errors import InvalidArgument
from mlharbor.lake import asof_merge, asof_query, asof_sorted
from mlharbor.lake.asof import AsOfSource, asof_join
from mlharbor.lake.duck import shared_pool

T0 = datetime(2024, 3, 1, tzinfo=UTC)
TOKYO = timezone(timedelta(hours=9))


def at(*hours: float | None, unit: str = "us", tz: str | None = "UTC") -> pa.Array:
    """Timestamps ``T0 + h hours`` (None stays null) of the given unit and zone."""
    values = [None if h is None else T0 + timedelta(hours=h) for h in hours]
    if tz is None:
        values = [None if v is None else v.replace(tzinfo=None) for v in values]
    return pa.array(values, pa.timestamp(unit, tz=tz))


def col(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist()


@pytest.fixture(params=["sorted", "coarse", "duckdb"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine a test runs on: "coarse" leaves 12 bits per code, so times keep a few high bits."""
    if request.param == "duckdb":
        monkeypatch.setattr(asof_sorted, "ENABLED", False)
    elif request.param == "coarse":
        monkeypatch.setattr(asof_merge, "CODE_BITS", 12)
    return str(request.param)


pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture(params=["arrow", "native"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with datasets scanned as Arrow, and read by DuckDB's Parquet reader."""
    if request.param == "native":
        monkeypatch.setattr(asof_query, "DEFAULT_NATIVE_MIN_BYTES", 0)
    return str(request.param)


def as_dataset(tmp_path: Path, *parts: pa.Table) -> pads.Dataset:
    """The tables as one Parquet file each, in order, as a dataset."""
    files = []
    for i, part in enumerate(parts):
        path = tmp_path / f"part-{i}.parquet"
        pq.write_table(part, path)
        files.append(str(path))
    return pads.dataset(files, format="parquet")


# -- matching -----------------------------------------------------------------------------------


def test_latest_row_at_or_before_the_lookup_time_inclusive() -> None:
    labels = pa.table({"id": [1, 1, 1, 1], "ts": at(0.5, 1, 2.5, 9)})
    feats = pa.table({"id": [1, 1, 1], "ts": at(1, 2, 3), "x": [10.0, 20.0, 30.0]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])
    assert col(out, "x") == [None, 10.0, 20.0, 30.0]


def test_no_match_gives_null_or_the_default_cast_to_the_column_type() -> None:
    labels = pa.table({"id": [1, 2, 3], "ts": at(5, 5, 0)})
    feats = pa.table({"id": [1, 3], "ts": at(1, 1), "x": [1.5, 2.5], "n": pa.array([7, 8], pa.int16())})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts", defaults={"x": 0})])
    assert col(out, "x") == [1.5, 0.0, 0.0]
    assert col(out, "n") == [7, None, None]
    assert out.schema.field("x").type == pa.float64()
    assert out.schema.field("n").type == pa.int16()


def test_defaults_apply_only_when_no_row_matched() -> None:
    labels = pa.table({"id": [1, 2], "ts": at(5, 5)})
    feats = pa.table({"id": [1], "ts": at(1), "x": pa.array([None], pa.float64())})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts", defaults={"x": -1.0})])
    assert col(out, "x") == [None, -1.0]


def test_lookback_keeps_rows_within_the_window_inclusive() -> None:
    labels = pa.table({"id": [1, 1, 1, 2], "ts": at(3, 4, 4.5, 4)})
    feats = pa.table({"id": [1, 2], "ts": at(2, 1), "x": [1.0, 2.0]})
    source = AsOfSource(feats, ["id"], ["id"], "ts", "ts", lookback=timedelta(hours=2), defaults={"x": 0.0})
    out = asof_join(labels, [source])
    # 3h-2h=1h <= 2h; 4h-2h=2h == 2h (inclusive); 4.5h-2h > 2h; id 2: 4h-2h > 1h
    assert col(out, "x") == [1.0, 1.0, 0.0, 0.0]


def test_lookback_of_zero_needs_the_same_instant() -> None:
    labels = pa.table({"id": [1, 1], "ts": at(2, 2.5)})
    feats = pa.table({"id": [1], "ts": at(2), "x": [1.0]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts", lookback=timedelta(0))])
    assert col(out, "x") == [1.0, None]


def test_label_rows_are_kept_duplicated_and_in_order() -> None:
    labels = pa.table({"id": [3, 1, 2, 1, 3, 1], "ts": at(5, 5, 5, 5, 0, 5), "row": list(range(6))})
    feats = pa.table({"id": [1, 2, 3], "ts": at(1, 1, 1), "x": [1.0, 2.0, 3.0]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])
    assert out.num_rows == 6
    assert col(out, "row") == list(range(6))
    assert col(out, "x") == [3.0, 1.0, 2.0, 1.0, None, 1.0]


def test_label_columns_come_first_unchanged_then_each_source_in_order() -> None:
    labels = pa.table({
        "id": pa.array([1], pa.int32()),
        "ts": at(5, unit="ms", tz="Asia/Tokyo"),
        "label": pa.array(["a"], pa.large_string()),
    })
    a = pa.table({"id": [1], "ts": at(1), "b": [1.0], "a": [2.0]})
    b = pa.table({"k": [1], "z": [True]})
    out = asof_join(labels, [AsOfSource(a, ["id"], ["id"], "ts", "ts"), AsOfSource(b, ["k"], ["id"])])
    assert out.column_names == ["id", "ts", "label", "b", "a", "z"]
    assert out.select(["id", "ts", "label"]).equals(labels)
    assert out.to_pylist() == [{"id": 1, "ts": labels.column("ts")[0].as_py(), "label": "a", "b": 1.0, "a": 2.0,
                                "z": True}]


def test_columns_already_in_the_labels_are_not_looked_up() -> None:
    labels = pa.table({"id": [1, 2], "ts": at(5, 5), "x": [100.0, None]})
    feats = pa.table({"id": [1, 2], "ts": at(1, 1), "x": [1.0, 2.0], "y": [3.0, 4.0]})
    source = AsOfSource(feats, ["id"], ["id"], "ts", "ts", defaults={"x": 0.0})
    out = asof_join(labels, [source])
    assert out.column_names == ["id", "ts", "x", "y"]
    assert col(out, "x") == [100.0, None]  # the input wins, nulls included
    assert col(out, "y") == [3.0, 4.0]


def test_a_source_whose_every_output_is_in_the_labels_is_skipped() -> None:
    labels = pa.table({"id": [1], "x": [5]})
    out = asof_join(labels, [AsOfSource(pa.table({"id": [1], "x": [9]}), ["id"], ["id"])])
    assert out.equals(labels)


def test_several_sources_with_different_keys_and_composite_keys() -> None:
    labels = pa.table({
        "user": [1, 1, 2, 2],
        "city": ["oslo", "rome", "oslo", None],
        "when": at(5, 5, 5, 5),
    })
    per_user = pa.table({"uid": [1, 2, 1], "t": at(1, 2, 6), "spend": [10.0, 20.0, 99.0]})
    per_user_city = pa.table({
        "u": [1, 1, 2, 2],
        "c": ["oslo", "rome", "oslo", "rome"],
        "t": at(1, 2, 3, 4),
        "visits": [1, 2, 3, 4],
    })
    out = asof_join(labels, [
        AsOfSource(per_user, ["uid"], ["user"], "t", "when"),
        AsOfSource(per_user_city, ["u", "c"], ["user", "city"], "t", "when", rename={"visits": "n"}),
    ])
    assert col(out, "spend") == [10.0, 10.0, 20.0, 20.0]
    assert col(out, "n") == [1, 2, 3, None]


def test_nulls_in_keys_never_match() -> None:
    labels = pa.table({"a": [None, 1, 1, None], "b": ["x", None, "x", None], "ts": at(5, 5, 5, 5)})
    feats = pa.table({"a": [None, 1, 1, None], "b": ["x", None, "x", None], "ts": at(1, 1, 1, 1),
                      "v": [1.0, 2.0, 3.0, 4.0]})
    out = asof_join(labels, [AsOfSource(feats, ["a", "b"], ["a", "b"], "ts", "ts", defaults={"v": 0.0})])
    assert col(out, "v") == [0.0, 0.0, 3.0, 0.0]


def test_an_all_null_untyped_label_key_matches_nothing() -> None:
    labels = pa.table({"id": pa.nulls(2), "ts": at(5, 5)})
    feats = pa.table({"id": ["a"], "ts": at(1), "v": [1.0]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts", defaults={"v": 0.0})])
    assert col(out, "v") == [0.0, 0.0]


def test_null_times_match_nothing() -> None:
    labels = pa.table({"id": [1, 1], "ts": at(None, 5)})
    feats = pa.table({"id": [1, 1], "ts": at(None, 1), "v": [1.0, 2.0]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts", defaults={"v": 0.0})])
    assert col(out, "v") == [0.0, 2.0]


# -- time ---------------------------------------------------------------------------------------


def test_zones_and_units_compare_as_instants_and_naive_is_utc() -> None:
    # 05:00 UTC written as 14:00 in Tokyo (ms) and as naive 05:00 (s)
    labels = pa.table({
        "id": [1, 1],
        "ts": pa.array([datetime(2024, 3, 1, 14, tzinfo=TOKYO), datetime(2024, 3, 1, 13, 59, tzinfo=TOKYO)],
                       pa.timestamp("ms", tz="Asia/Tokyo")),
    })
    feats_ns_naive = pa.table({"id": [1], "ts": pa.array([datetime(2024, 3, 1, 5)], pa.timestamp("ns")), "a": [1]})
    feats_s_ny = pa.table({
        "id": [1],
        "ts": pa.array([datetime(2024, 3, 1, 0, tzinfo=timezone(timedelta(hours=-5)))],
                       pa.timestamp("s", tz="America/New_York")),
        "b": [2],
    })
    out = asof_join(labels, [
        AsOfSource(feats_ns_naive, ["id"], ["id"], "ts", "ts"),
        AsOfSource(feats_s_ny, ["id"], ["id"], "ts", "ts"),
    ])
    assert col(out, "a") == [1, None]
    assert col(out, "b") == [2, None]


def test_nanoseconds_are_compared_exactly() -> None:
    base = 1_700_000_000_000_000_000
    labels = pa.table({"id": [1, 1, 1], "ts": pa.array([base + 1, base + 2, base + 999], pa.timestamp("ns", "UTC"))})
    feats = pa.table({"id": [1], "ts": pa.array([base + 2], pa.timestamp("ns")), "x": [1.0]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])
    assert col(out, "x") == [None, 1.0, 1.0]


def test_times_before_1970_and_far_apart() -> None:
    ts = pa.timestamp("ns")
    old, new = datetime(1700, 1, 1), datetime(2260, 1, 1)
    labels = pa.table({"id": [1, 1, 1], "ts": pa.array([old, datetime(1969, 12, 31), new], ts)})
    feats = pa.table({"id": [1, 1], "ts": pa.array([old, datetime(1969, 12, 30)], ts), "x": [1, 2]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])
    assert col(out, "x") == [1, 2, 2]


def test_dates_compare_with_dates() -> None:
    labels = pa.table({"id": [1, 1, 1], "day": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 9)]})
    feats = pa.table({"id": [1, 1], "day": pa.array([date(2024, 1, 2), date(2024, 1, 5)], pa.date64()), "x": [1, 2]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "day", "day", lookback=timedelta(days=3))])
    assert col(out, "x") == [None, 1, None]


@pytest.mark.parametrize(
    ("label_ts", "message"),
    [
        (pa.array(["2024-03-01T05:00:00"]), "is string, not a timestamp or date (parse it first"),
        (pa.array([date(2024, 3, 1)]), "cast the date to a timestamp"),
        (pa.array([5]), "is int64, not a timestamp or date"),
    ],
)
def test_lookup_times_that_are_not_timestamps_are_refused(label_ts: pa.Array, message: str) -> None:
    labels = pa.table({"id": [1], "ts": label_ts})
    feats = pa.table({"id": [1], "ts": at(1), "x": [1.0]})
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])


# -- ties -------------------------------------------------------------------------------------


def test_ties_on_the_timestamp_go_to_the_last_row() -> None:
    labels = pa.table({"id": [1, 2], "ts": at(5, 5)})
    feats = pa.table({"id": [1, 1, 2, 1, 2], "ts": at(1, 2, 2, 2, 2), "x": [1.0, 2.0, 3.0, 4.0, None]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])
    assert col(out, "x") == [4.0, None]


def test_ties_across_files_go_to_the_last_file(tmp_path: Path, read_path: str) -> None:
    labels = pa.table({"id": [1, 2, 3], "ts": at(5, 5, 5)})
    first = pa.table({"id": [1, 1, 2, 3], "ts": at(2, 2, 2, 1), "x": [1.0, 2.0, 3.0, 4.0]})
    second = pa.table({"id": [1, 2, 2], "ts": at(2, 2, 1), "x": [5.0, 6.0, 7.0]})
    out = asof_join(labels, [AsOfSource(as_dataset(tmp_path, first, second), ["id"], ["id"], "ts", "ts")])
    assert col(out, "x") == [5.0, 6.0, 4.0]


def test_exact_key_lookups_take_the_last_row_of_a_key(tmp_path: Path, read_path: str) -> None:
    labels = pa.table({"id": [2, 1, 3, None]})
    first = pa.table({"id": [1, 2, 1], "x": ["a", "b", "c"]})
    second = pa.table({"id": [2, None], "x": ["d", "e"]})
    for data in (pa.concat_tables([first, second]), as_dataset(tmp_path, first, second)):
        out = asof_join(labels, [AsOfSource(data, ["id"], ["id"], defaults={"x": "none"})])
        assert col(out, "x") == ["d", "c", "none", "none"]


def test_a_filtered_dataset_is_streamed_in_scan_order(tmp_path: Path) -> None:
    labels = pa.table({"id": [1], "ts": at(5)})
    first = pa.table({"id": [1, 1], "ts": at(2, 2), "x": [1.0, 2.0]})
    second = pa.table({"id": [1, 1], "ts": at(2, 2), "x": [3.0, 0.5]})
    dataset = as_dataset(tmp_path, first, second).filter(pc.field("x") > 0.9)
    out = asof_join(labels, [AsOfSource(dataset, ["id"], ["id"], "ts", "ts")])
    assert col(out, "x") == [3.0]


# -- order-key encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["duckdb"], indirect=True)
@pytest.mark.parametrize("spread", [1, 10**9], ids=["packed", "wide"])
@pytest.mark.parametrize("key", [7, 2**40], ids=["narrowed-key", "bigint-key"])
def test_every_order_key_encoding_gives_the_same_rows(
    spread: int, key: int, read_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # instants ~32 years apart at nanosecond steps need more than 63 bits with positions: wide keys
    def ns(*seconds: int) -> pa.Array:
        return pa.array([s * spread * 10**9 + s for s in seconds], pa.timestamp("ns", "UTC"))

    used: list[Any] = []
    encoding = asof_query._encoding
    monkeypatch.setattr(asof_query, "_encoding", lambda *a: used.append(encoding(*a)[0]) or encoding(*a))
    labels = pa.table({"id": [key, key, key, key, 5, 2**35, None], "ts": ns(-1, 0, 1, 3, 3, 3, 3)})
    feats = pa.table({"id": [key, key, key, 5, key], "ts": ns(0, 2, 0, 4, 2), "x": [1, 2, 3, 4, 5]})
    source = AsOfSource(as_dataset(tmp_path, feats), ["id"], ["id"], "ts", "ts", defaults={"x": 0},
                        lookback=timedelta(seconds=2 * spread))
    out = asof_join(labels, [source])
    assert col(out, "x") == [0, 3, 3, 5, 0, 0, 0]
    if spread == 1:
        assert used == [asof_query._Packed(t_min=0, step=1, span=4_000_000_004, bits=3)]
    else:
        assert used == [asof_query._Wide(frozenset({0}) if key == 7 else frozenset())]


@pytest.mark.parametrize("engine", ["duckdb"], indirect=True)
@pytest.mark.parametrize(
    ("unit", "seconds", "step"),
    [("us", 60, 60_000_000), ("ns", 3600, 3_600_000_000_000), ("ms", 86_400, 86_400_000_000), ("us", 1.0005, 1000)],
)
def test_packed_keys_use_the_coarsest_step_of_the_feature_times(
    unit: str, seconds: float, step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[Any] = []
    encoding = asof_query._encoding
    monkeypatch.setattr(asof_query, "_encoding", lambda *a: used.append(encoding(*a)[0]) or encoding(*a))
    tick = timedelta(seconds=seconds)
    feats = pa.table({"id": [1, 1, 1], "ts": pa.array([T0, T0 + 2 * tick, T0 + 2 * tick], pa.timestamp(unit, "UTC")),
                      "x": [1, 2, 3]})
    micro = timedelta(microseconds=1)
    lookups = [T0 - micro, T0, T0 + 2 * tick - micro, T0 + 2 * tick, T0 + 3 * tick + micro, T0 + 10 * tick]
    labels = pa.table({"id": [1] * 6, "ts": pa.array(lookups, pa.timestamp("us", "UTC"))})
    source = AsOfSource(feats, ["id"], ["id"], "ts", "ts", lookback=tick, defaults={"x": 0})
    assert col(asof_join(labels, [source]), "x") == [0, 1, 0, 3, 0, 0]
    assert isinstance(used[0], asof_query._Packed) and used[0].step == step


def test_labels_outside_a_narrowed_key_range_do_not_match() -> None:
    labels = pa.table({"id": [2**32 + 1, 1], "ts": at(5, 5)})
    feats = pa.table({"id": [1], "ts": at(1), "x": [1.0]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])
    assert col(out, "x") == [None, 1.0]


# -- types and shapes -----------------------------------------------------------------------------


def test_feature_types_are_kept() -> None:
    labels = pa.table({"id": pa.array(["a", "b"], pa.large_string()), "ts": at(5, 5)})
    feats = pa.table({
        "id": pa.array(["a", "b"]).dictionary_encode(),
        "ts": at(1, 1),
        "i8": pa.array([1, 2], pa.int8()),
        "u64": pa.array([2**63, 3], pa.uint64()),
        "f32": pa.array([1.5, 2.5], pa.float32()),
        "s": pa.array(["x", "y"], pa.large_string()),
        "d": pa.array(["p", "q"]).dictionary_encode(),
        "dec": pa.array([Decimal("1.25"), Decimal("2.50")], pa.decimal128(6, 2)),
        "when": at(1, 2, unit="ms", tz="Asia/Tokyo"),
        "day": pa.array([date(2024, 1, 1), None], pa.date32()),
        "lst": pa.array([[1, 2], []], pa.list_(pa.int32())),
        "st": pa.array([{"p": 1, "q": "a"}, None]),
        "ok": [True, False],
    })
    names = ["i8", "u64", "f32", "s", "d", "dec", "when", "day", "lst", "st", "ok"]
    # a lookback and defaults route every column through the "matched" mask too
    for lookback in (None, timedelta(days=1)):
        source = AsOfSource(feats, ["id"], ["id"], "ts", "ts", lookback=lookback, defaults={"i8": 0, "d": "r"})
        out = asof_join(labels, [source])
        for name in names:
            assert out.schema.field(name).type == feats.schema.field(name).type, name
            assert col(out, name) == col(feats, name), name


def test_empty_labels_and_empty_features() -> None:
    feats = pa.table({"id": [1], "ts": at(1), "x": [1.0]})
    empty = pa.table({"id": pa.array([], pa.int64()), "ts": at()})
    out = asof_join(empty, [AsOfSource(feats, ["id"], ["id"], "ts", "ts")])
    assert out.num_rows == 0 and out.column_names == ["id", "ts", "x"]
    labels = pa.table({"id": [1], "ts": at(5)})
    out = asof_join(labels, [AsOfSource(feats.slice(0, 0), ["id"], ["id"], "ts", "ts", defaults={"x": 2})])
    assert col(out, "x") == [2.0]


def test_pooled_connections_are_left_clean(tmp_path: Path, read_path: str) -> None:
    labels = pa.table({"id": [1], "ts": at(5)})
    feats = pa.table({"id": [1], "ts": at(1), "x": [1.0]})
    for data in (feats, as_dataset(tmp_path, feats)):
        asof_join(labels, [AsOfSource(data, ["id"], ["id"], "ts", "ts")])
        with shared_pool(None, "50%", None).acquire() as lease:
            views = lease.con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        assert views == []


def test_no_sources_returns_the_labels() -> None:
    labels = pa.table({"id": [1]})
    assert asof_join(labels, []).equals(labels)


def test_features_default_to_all_but_keys_and_timestamp_and_can_be_chosen() -> None:
    labels = pa.table({"k": [1], "ts": at(5)})
    feats = pa.table({"id": [1], "t": at(1), "a": [1], "b": [2], "c": [3]})
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["k"], "t", "ts")])
    assert out.column_names == ["k", "ts", "a", "b", "c"]
    out = asof_join(labels, [AsOfSource(feats, ["id"], ["k"], "t", "ts", features=["c", "t"], rename={"t": "ft"})])
    assert out.column_names == ["k", "ts", "c", "ft"]
    assert col(out, "ft") == col(feats, "t")


# -- errors -----------------------------------------------------------------------------------


FEATS = pa.table({"id": [1], "ts": at(1), "x": [1.0], "s": ["a"]})
LABELS = pa.table({"id": [1], "ts": at(5), "name": ["n"]})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keys": ["nope"]}, r"source 0 data has no column 'nope' \(columns: id, ts, x, s\)"),
        ({"label_keys": ["nope"]}, "labels has no column 'nope'"),
        ({"keys": []}, "give at least one key column"),
        ({"keys": "id"}, "keys must be a list of column names"),
        ({"keys": ["id", "x"]}, r"2 keys \['id', 'x'\] but 1 label_keys"),
        ({"label_keys": ["name"]}, r"key 'id' \(int64\) cannot be compared with label column 'name' \(string\)"),
        ({"label_timestamp": None}, "needs label_timestamp, the lookup time column"),
        ({"timestamp": None}, "label_timestamp is set but timestamp is not"),
        ({"timestamp": None, "label_timestamp": None, "lookback": timedelta(1)}, "lookback needs a timestamp"),
        ({"timestamp": "x"}, "time column 'x' is double, not a timestamp or date"),
        ({"lookback": timedelta(-1)}, "lookback must be a non-negative timedelta"),
        ({"features": ["x", "nope"]}, "source 0 data has no column 'nope'"),
        ({"features": ["x", "x"]}, "features lists a column twice"),
        ({"rename": {"nope": "y"}}, r"rename names columns that are not looked up: \['nope'\]"),
        ({"rename": {"x": "s"}}, "two features have the same output column"),
        ({"defaults": {"nope": 1}}, r"defaults name columns it does not output: \['nope'\] \(use output names\)"),
        ({"defaults": {"x": "high"}}, "default 'high' for 'x' cannot be cast to double"),
        ({"data": [1, 2]}, "data must be a pyarrow Table or Dataset, got list"),
    ],
)
def test_bad_sources_are_refused_with_a_clear_message(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"data": FEATS, "keys": ["id"], "label_keys": ["id"], "timestamp": "ts",
                            "label_timestamp": "ts"}
    with pytest.raises(InvalidArgument, match=message):
        asof_join(LABELS, [AsOfSource(**{**base, **kwargs})])


def test_output_collisions_between_sources_are_refused() -> None:
    other = pa.table({"id": [1], "x": [2.0]})
    with pytest.raises(InvalidArgument, match="source 1: output column 'x' is also produced by source 0"):
        asof_join(LABELS, [AsOfSource(FEATS, ["id"], ["id"], "ts", "ts"), AsOfSource(other, ["id"], ["id"])])
    # renaming one side resolves it
    out = asof_join(LABELS, [AsOfSource(FEATS, ["id"], ["id"], "ts", "ts"),
                             AsOfSource(other, ["id"], ["id"], rename={"x": "x2"})])
    assert out.column_names == ["id", "ts", "name", "x", "s", "x2"]


def test_ambiguous_column_names_are_refused() -> None:
    labels = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["id", "id"])
    with pytest.raises(InvalidArgument, match="labels has 2 columns named 'id'"):
        asof_join(labels, [AsOfSource(pa.table({"id": [1], "x": [1]}), ["id"], ["id"])])


def test_bad_labels_and_source_lists_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="labels must be a pyarrow Table, got dict"):
        asof_join({"id": [1]}, [])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="sources must be a list of AsOfSource"):
        asof_join(LABELS, [FEATS])  # type: ignore[list-item]
