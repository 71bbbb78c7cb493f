"""On-demand features: registered functions run by the same code in training, scoring and online."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.core.entities import Role
from mlharbor.errors import InvalidArgument, NotFound, PermissionDenied, UserCodeError
from mlharbor.features.definitions import FeatureFunction, FeatureLookup
from mlharbor.features.spec import FeatureSpec
from mlharbor.workspace import Workspace

T = datetime(2026, 3, 1, tzinfo=UTC)
FEATURES = pa.table({"driver_id": pa.array([1, 2], pa.int64()), "ts": pa.array([T, T], pa.timestamp("us", tz="UTC")),
                     "fare_sum": [30.0, 8.0], "trips": pa.array([3, 0], pa.int64())})
LABELS = pa.table({"driver_id": pa.array([1, 2, 1], pa.int64()),
                   "ts": pa.array([T, T, T], pa.timestamp("us", tz="UTC")),
                   "distance": [2.0, None, 4.0], "y": [1, 0, 1]})


def avg_fare(fare_sum, trips):  # type: ignore[no-untyped-def]  # registered as written by a user
    return None if fare_sum is None or not trips else fare_sum / trips


def fare_per_km(avg, distance):  # type: ignore[no-untyped-def]
    import math

    return None if avg is None or distance is None else round(avg / math.sqrt(distance), 6)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(tmp_path) as w:
        w.features.create_table("dev.features.drivers", FEATURES, primary_keys="driver_id", timestamp_keys="ts")
        w.features.register_function(avg_fare, name="dev.features.avg_fare", return_type="double",
                                     description="mean fare per trip")
        w.features.register_function(fare_per_km, name="dev.features.fare_per_km", return_type="double")
        yield w


LOOKUPS = [
    FeatureLookup("dev.features.drivers", "driver_id", timestamp_lookup_key="ts"),
    FeatureFunction("dev.features.avg_fare", {"fare_sum": "fare_sum", "trips": "trips"}, "avg"),
    FeatureFunction("dev.features.fare_per_km", {"avg": "avg", "distance": "distance"}, "fare_km"),
]


def test_register_versions_and_catalog(ws: Workspace) -> None:
    info = ws.features.get_function("dev.features.avg_fare")
    assert info.version == 1 and info.parameters == ("fare_sum", "trips") and "def avg_fare" in info.source
    assert info.description == "mean fare per trip" and len(info.sha256) == 64
    again = ws.features.register_function(source="def avg_fare(fare_sum, trips):\n    return 0.0\n",
                                          entry_point="avg_fare", name="dev.features.avg_fare", return_type="double")
    assert again.version == 2
    assert [f.version for f in ws.features.function_versions("dev.features.avg_fare")] == [1, 2]
    assert {f.name: f.version for f in ws.features.list_functions()} == {
        "dev.features.avg_fare": 2, "dev.features.fare_per_km": 1}
    assert any(e.action == "function.register" for e in ws.access.audit_log(limit=10))
    ws.features.drop_function("dev.features.fare_per_km")
    with pytest.raises(NotFound):
        ws.features.get_function("dev.features.fare_per_km")


def test_training_scoring_and_online_use_the_same_pinned_code(ws: Workspace) -> None:
    tset = ws.features.create_training_set(LABELS, LOOKUPS, label="y")
    df = tset.load_df()
    assert df.column("avg").to_pylist() == [10.0, None, 10.0]
    assert df.column("fare_km").to_pylist() == [round(10 / 2**0.5, 6), None, 5.0]
    spec = FeatureSpec.from_json(tset.spec.to_json())
    assert [(f.name, f.version) for f in spec.functions] == [("dev.features.avg_fare", 1),
                                                             ("dev.features.fare_per_km", 1)]
    assert spec.key_columns == ["driver_id", "distance"]
    # a later version does not change what the spec computes: it pins version 1 and its hash
    ws.features.register_function(source="def avg_fare(fare_sum, trips):\n    return -1.0\n", entry_point="avg_fare",
                                  name="dev.features.avg_fare", return_type="double")
    scored = ws.features.score_frame(spec, LABELS.drop_columns(["y"]))
    assert scored.column("fare_km").to_pylist() == df.column("fare_km").to_pylist()
    ws.features.publish("dev.features.drivers", progress=False)
    online = ws.features.lookup_online(spec, {"driver_id": [1, 2], "distance": [4.0, 1.0]})
    assert online.column("avg").to_pylist() == [10.0, None] and online.column("fare_km").to_pylist() == [5.0, None]
    # an output given in the request wins over the function
    given = ws.features.lookup_online(spec, {"driver_id": [1], "distance": [4.0], "avg": [2.0]})
    assert given.column("fare_km").to_pylist() == [1.0]


def test_a_spec_refuses_changed_code(ws: Workspace) -> None:
    spec = ws.features.create_training_set(LABELS, LOOKUPS, label="y").spec
    raw = spec.to_json().replace(spec.functions[0].sha256, "0" * 64)
    with pytest.raises(InvalidArgument, match="changed since the spec was made"):
        ws.features.score_frame(FeatureSpec.from_json(raw), LABELS)


@pytest.mark.parametrize(("source", "entry", "message"), [
    ("def f(x):\n  return x +\n", "f", "does not parse"),
    ("def g(x):\n  return x\n", "f", "no top-level function 'f'"),
    ("def f(*xs):\n  return 1\n", "f", "plain named parameters"),
    ("def f(x, *, y):\n  return 1\n", "f", "plain named parameters"),
    ("import functools\n@functools.cache\ndef f(x):\n  return 1\n", "f", "must not be decorated"),
    ("def f():\n  return 1\n", "f", "at least one parameter"),
    ("", "f", "needs its source"),
])
def test_bad_sources_are_refused_with_what_to_fix(ws: Workspace, source: str, entry: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        ws.features.register_function(source=source, entry_point=entry, name="dev.features.bad", return_type="double")
    with pytest.raises(NotFound):
        ws.features.get_function("dev.features.bad")  # nothing half-registered


def test_bad_registrations_and_bindings(ws: Workspace) -> None:
    with pytest.raises(InvalidArgument, match="lambda"):
        ws.features.register_function(lambda x: x, name="dev.features.l", return_type="double")
    with pytest.raises(InvalidArgument, match="unknown column type"):
        ws.features.register_function(avg_fare, name="dev.features.x", return_type="float128")
    with pytest.raises(InvalidArgument, match="unbound"):
        ws.features.create_training_set(LABELS, [LOOKUPS[0], FeatureFunction(
            "dev.features.avg_fare", {"fare_sum": "fare_sum"}, "avg")], label="y")
    with pytest.raises(InvalidArgument, match="lack"):
        ws.features.create_training_set(LABELS, [FeatureFunction(
            "dev.features.avg_fare", {"fare_sum": "fare_sum", "trips": "nope"}, "avg")], label="y")
    with pytest.raises(NotFound):
        ws.features.create_training_set(LABELS, [FeatureFunction("dev.features.missing", {"a": "y"}, "o")], label="y")


def test_user_errors_name_the_function_and_row(ws: Workspace) -> None:
    ws.features.register_function(source="def boom(x):\n    return 1 / (x - 2.0)\n", entry_point="boom",
                                  name="dev.features.boom", return_type="double")
    with pytest.raises(UserCodeError, match=r"dev.features.boom v1 failed on row 0 .*ZeroDivisionError"):
        ws.features.create_training_set(LABELS, [FeatureFunction("dev.features.boom", {"x": "distance"}, "b")],
                                        label="y")
    ws.features.register_function(source="def word(x):\n    return 'nope'\n", entry_point="word",
                                  name="dev.features.word", return_type="int64")
    with pytest.raises(UserCodeError, match="not int64"):
        ws.features.create_training_set(LABELS, [FeatureFunction("dev.features.word", {"x": "y"}, "w")], label="y")


def test_registering_needs_write_in_the_environment(ws: Workspace, tmp_path: Path) -> None:
    ws.access.create_principal("sam")
    ws.access.grant("sam", Role.DATA_SCIENTIST)
    with Workspace.open(tmp_path, principal="sam") as sam:
        sam.features.register_function(avg_fare, name="dev.features.sams", return_type="double")
        with pytest.raises(PermissionDenied):
            sam.features.register_function(avg_fare, name="prod.features.sams", return_type="double")
        assert sam.features.get_function("dev.features.avg_fare").version == 1  # reading is allowed
