"""ws.features.create_training_set and score_frame: the feature-store layer over the as-of engine."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.errors import InvalidArgument
from mlharbor.features import FeatureLookup
from mlharbor.features.spec import FeatureSpec
from mlharbor.workspace import Workspace


def ts(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(tmp_path) as w:
        w.features.create_table(
            "dev.features.driver", pa.table({
                "driver_id": pa.array([1, 1, 2], pa.int64()),
                "ts": pa.array([ts(1), ts(3), ts(2)], pa.timestamp("us", tz="UTC")),
                "rating": [4.0, 4.5, 3.0],
                "trips": pa.array([10, 12, 5], pa.int64()),
            }),
            primary_keys="driver_id", timestamp_keys="ts",
        )
        w.features.create_table(
            "dev.features.zone", pa.table({"zone_id": ["a", "b"], "borough": ["north", "south"]}),
            primary_keys="zone_id",
        )
        yield w


LABELS = pa.table({
    "trip_id": [10, 11, 12, 12, 13],
    "driver_id": pa.array([1, 1, 2, 2, None], pa.int64()),
    "zone": ["a", "b", "z", "z", "a"],
    "at": pa.array([ts(2), ts(3), ts(1), ts(1), ts(5)], pa.timestamp("us", tz="UTC")),
    "label": [True, False, True, True, False],
})


def test_point_in_time_with_two_tables(ws: Workspace) -> None:
    lookups = [
        FeatureLookup("dev.features.driver", "driver_id", timestamp_lookup_key="at",
                      rename_outputs={"rating": "driver_rating"}, default_values={"trips": 0}),
        FeatureLookup("dev.features.zone", "zone", feature_names=["borough"]),
    ]
    training = ws.features.create_training_set(LABELS, lookups, label="label", exclude_columns=["zone"])
    rows = training.load_df().to_pylist()
    assert [r["trip_id"] for r in rows] == [10, 11, 12, 12, 13]  # order and duplicates kept
    assert [r["driver_rating"] for r in rows] == [4.0, 4.5, None, None, None]  # ts(3) inclusive; ts(2) > ts(1)
    assert [r["trips"] for r in rows] == [10, 12, 0, 0, 0]  # defaults when nothing matched (null key too)
    assert [r["borough"] for r in rows] == ["north", "south", None, None, "north"]
    assert "zone" not in rows[0]
    spec = FeatureSpec.from_json(training.spec.to_json())
    assert spec == training.spec and spec.label == "label"
    assert training.table_versions == {"dev.features.driver": 1, "dev.features.zone": 1}
    assert spec.feature_columns == ["driver_rating", "trips", "borough"]
    ws.tables.write("dev.training.t", training.load_df(), sources=training.source_versions)
    assert ws.features.get_table("dev.features.driver").used_by == ["dev.training.t"]


def test_latest_per_key_without_a_lookup_time_and_the_input_wins(ws: Workspace) -> None:
    frame = pa.table({"driver_id": pa.array([1, 2, 3], pa.int64()), "trips": pa.array([99, 98, 97], pa.int64())})
    training = ws.features.create_training_set(frame, [FeatureLookup("dev.features.driver", "driver_id")], label=None)
    rows = training.load_df().to_pylist()
    assert [r["rating"] for r in rows] == [4.5, 3.0, None]  # the newest row per driver
    assert [r["trips"] for r in rows] == [99, 98, 97]  # present in the input: not looked up


def test_lookback_window(ws: Workspace) -> None:
    frame = pa.table({"driver_id": pa.array([1], pa.int64()),
                      "at": pa.array([ts(6)], pa.timestamp("us", tz="UTC"))})
    short = FeatureLookup("dev.features.driver", "driver_id", timestamp_lookup_key="at",
                          lookback_window=timedelta(days=2))
    long = FeatureLookup("dev.features.driver", "driver_id", timestamp_lookup_key="at",
                         lookback_window=timedelta(days=4), rename_outputs={"rating": "r", "trips": "t"})
    row = ws.features.create_training_set(frame, [short, long], label=None).load_df().to_pylist()[0]
    assert row["rating"] is None and row["r"] == 4.5


def test_score_frame_uses_current_versions(ws: Workspace) -> None:
    lookup = FeatureLookup("dev.features.driver", "driver_id", timestamp_lookup_key="at")
    spec = ws.features.create_training_set(LABELS, [lookup], label="label").spec
    ws.features.write_table("dev.features.driver", pa.table({
        "driver_id": pa.array([2], pa.int64()), "ts": pa.array([ts(9)], pa.timestamp("us", tz="UTC")),
        "rating": [5.0], "trips": pa.array([1], pa.int64())}))
    later = pa.table({"driver_id": pa.array([2], pa.int64()), "at": pa.array([ts(10)], pa.timestamp("us", tz="UTC"))})
    assert ws.features.score_frame(spec, later).column("rating").to_pylist() == [5.0]
    # without the lookup time column: latest values
    assert ws.features.score_frame(spec, later.select(["driver_id"])).column("rating").to_pylist() == [5.0]


@pytest.mark.parametrize(
    ("lookups", "label", "fragment"),
    [
        ([FeatureLookup("dev.features.driver", ["driver_id", "zone"])], "label", "one frame column per primary key"),
        ([FeatureLookup("dev.features.driver", "nope")], "label", "no column"),
        ([FeatureLookup("dev.features.driver", "driver_id", feature_names=["x"])], "label", "no feature"),
        ([FeatureLookup("dev.features.driver", "driver_id", default_values={"x": 1})], "label", "default_values"),
        ([FeatureLookup("dev.features.driver", "driver_id")], "missing_label", "label column"),
        ([], "label", "at least one"),
    ],
)
def test_bad_training_sets(ws: Workspace, lookups: list[FeatureLookup], label: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        ws.features.create_training_set(LABELS, lookups, label=label)


def test_lookup_definitions_are_checked() -> None:
    with pytest.raises(InvalidArgument):
        FeatureLookup("driver", "driver_id")
    with pytest.raises(InvalidArgument, match="lookback_window needs"):
        FeatureLookup("dev.f.t", "k", lookback_window=timedelta(days=1))
    with pytest.raises(InvalidArgument, match="positive"):
        FeatureLookup("dev.f.t", "k", timestamp_lookup_key="at", lookback_window=timedelta(0))
