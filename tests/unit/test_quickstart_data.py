"""The quickstart's synthetic taxi data: determinism, realism, seasonality and the built-in shift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlharbor.errors import InvalidArgument
from mlharbor.quickstart.data import (
    DRIVERS_SCHEMA,
    TRIPS_SCHEMA,
    ZONES_SCHEMA,
    QuickstartData,
    generate,
)


@pytest.fixture(scope="module")
def data() -> QuickstartData:
    return generate()


@pytest.fixture(scope="module")
def trips(data: QuickstartData) -> pa.Table:
    return data.trips()


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy()


def _hours(trips: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day and day of week (Monday 0) of each pickup."""
    us = pc.cast(trips.column("pickup_ts"), pa.int64()).to_numpy()
    return (us // 3_600_000_000) % 24, (us // 86_400_000_000 + 3) % 7


def test_tables_have_the_documented_schemas(data: QuickstartData, trips: pa.Table) -> None:
    assert data.zones.schema == ZONES_SCHEMA
    assert data.drivers.schema == DRIVERS_SCHEMA
    assert trips.schema == TRIPS_SCHEMA
    assert (data.zones.num_rows, data.drivers.num_rows, trips.num_rows) == (60, 800, 400_000)
    assert data.n_trips == 400_000
    assert data.n_chunks == 4
    assert [b.num_rows for b in data.trips_batches()] == [100_000] * 4


def test_same_seed_gives_byte_identical_tables() -> None:
    first, second = generate(n_trips=60_000), generate(n_trips=60_000)
    for table in ("zones", "drivers"):
        assert _ipc_bytes(getattr(first, table)) == _ipc_bytes(getattr(second, table))
    assert _ipc_bytes(first.trips()) == _ipc_bytes(second.trips())
    other = generate(seed=8, n_trips=60_000)
    assert not other.trips().equals(first.trips())
    assert not other.drivers.equals(first.drivers)


def test_rows_do_not_depend_on_chunk_rows() -> None:
    whole = generate(n_trips=120_001, chunk_rows=200_000)
    odd = generate(n_trips=120_001, chunk_rows=7_777)
    batches = list(odd.trips_batches())
    assert len(batches) == odd.n_chunks == 16
    assert all(b.num_rows == 7_777 for b in batches[:-1])
    assert pa.Table.from_batches(batches).equals(whole.trips())
    # Each call starts over.
    assert pa.Table.from_batches(list(odd.trips_batches())).equals(whole.trips())


def test_ids_are_unique_and_referentially_valid(data: QuickstartData, trips: pa.Table) -> None:
    trip_ids = _np(trips, "trip_id")
    assert len(np.unique(trip_ids)) == len(trip_ids)
    zone_ids = _np(data.zones, "zone_id")
    driver_ids = _np(data.drivers, "driver_id")
    assert len(np.unique(zone_ids)) == len(zone_ids)
    assert len(np.unique(driver_ids)) == len(driver_ids)
    assert np.isin(_np(trips, "driver_id"), driver_ids).all()
    assert np.isin(_np(trips, "pickup_zone_id"), zone_ids).all()
    assert np.isin(_np(trips, "dropoff_zone_id"), zone_ids).all()
    assert np.isin(_np(data.drivers, "home_zone_id"), zone_ids).all()


def test_dimension_tables_look_real(data: QuickstartData) -> None:
    zones, drivers = data.zones, data.drivers
    assert len(set(zones.column("zone_name").to_pylist())) == zones.num_rows
    assert set(zones.column("borough").to_pylist()) == {
        "Central", "Northgate", "Eastbank", "Southport", "Westvale"}
    assert pc.min(zones.column("base_fare_multiplier")).as_py() > 0.7
    assert pc.max(zones.column("base_fare_multiplier")).as_py() < 1.8
    assert np.all(np.abs(_np(zones, "centroid_lat") - 40.72) < 0.3)
    assert set(drivers.column("vehicle_type").to_pylist()) == {"sedan", "suv", "van", "ev"}
    rating = _np(drivers, "rating")
    assert rating.min() >= 3.0 and rating.max() <= 5.0
    assert max(drivers.column("signup_date").to_pylist()) < data.start.date()
    assert all(" " in name for name in drivers.column("name").to_pylist())


def test_trip_values_are_in_realistic_ranges(data: QuickstartData, trips: pa.Table) -> None:
    fare, tip = _np(trips, "fare_amount"), _np(trips, "tip_amount")
    assert fare.min() >= 5.0 and fare.max() < 1_000
    assert 10 < np.median(fare) < 40
    assert tip.min() >= 0.0 and (tip == 0).mean() > 0.2
    distance = _np(trips, "trip_distance_km")
    assert distance.min() >= 0.3 and 2 < np.median(distance) < 10
    passengers = _np(trips, "passenger_count")
    assert passengers.min() >= 1 and passengers.max() <= 6
    assert set(trips.column("payment_type").unique().to_pylist()) == {"card", "cash", "wallet"}
    pickup, dropoff = trips.column("pickup_ts"), trips.column("dropoff_ts")
    assert pc.all(pc.greater(dropoff, pickup)).as_py()
    minutes = pc.cast(pc.subtract(dropoff, pickup), pa.int64()).to_numpy() / 60e6
    assert 5 < np.median(minutes) < 40 and minutes.max() < 6 * 60
    assert pc.min(pickup).as_py() >= data.start and pc.max(pickup).as_py() < data.end


def test_is_generous_tip_means_tip_at_least_20_percent_of_fare(trips: pa.Table) -> None:
    fare_cents = np.rint(_np(trips, "fare_amount") * 100).astype(np.int64)
    tip_cents = np.rint(_np(trips, "tip_amount") * 100).astype(np.int64)
    generous = _np(trips, "is_generous_tip")
    assert (generous == (tip_cents * 5 >= fare_cents)).all()
    assert 0.15 < generous.mean() < 0.45


def test_trips_come_in_pickup_time_order(trips: pa.Table) -> None:
    us = pc.cast(trips.column("pickup_ts"), pa.int64()).to_numpy()
    assert (np.diff(us) >= 0).all()


def test_volume_has_daily_and_weekly_seasonality(trips: pa.Table) -> None:
    hour, weekday = _hours(trips)
    work = weekday < 5
    by_hour = np.bincount(hour[work], minlength=24)
    assert by_hour[8] > 4 * by_hour[3] and by_hour[18] > 4 * by_hour[3]
    assert by_hour[8] > 1.2 * by_hour[11]
    weekend_by_hour = np.bincount(hour[~work], minlength=24)
    # Late nights are busy at weekends, mornings are quiet.
    assert weekend_by_hour[1] / weekend_by_hour.sum() > 2 * by_hour[1] / by_hour.sum()
    assert weekend_by_hour[8] / weekend_by_hour.sum() < 0.5 * by_hour[8] / by_hour.sum()
    by_day = np.bincount(weekday, minlength=7)
    assert by_day[4] > 1.15 * by_day[6]  # Friday over Sunday


def test_shift_starts_two_thirds_in_and_is_described(data: QuickstartData) -> None:
    assert data.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert data.end == datetime(2026, 7, 1, tzinfo=UTC)
    assert data.shift_start == datetime(2026, 5, 1, tzinfo=UTC)
    assert "2026-05-01" in data.description and "15%" in data.description


def test_shift_changes_fares_payments_and_distances(data: QuickstartData, trips: pa.Table) -> None:
    after = pc.greater_equal(trips.column("pickup_ts"), pa.scalar(data.shift_start)).to_numpy(False)
    settled = pc.greater_equal(
        trips.column("pickup_ts"), pa.scalar(data.shift_start + timedelta(days=14))).to_numpy(False)
    fare = _np(trips, "fare_amount")
    assert fare[after].mean() >= 1.1 * fare[~after].mean()
    payment = trips.column("payment_type").to_numpy(False)
    assert (payment[settled] == "wallet").mean() > 2 * (payment[~after] == "wallet").mean()
    borough_of = dict(zip(data.zones.column("zone_id").to_pylist(),
                          data.zones.column("borough").to_pylist(), strict=True))
    borough = np.array([borough_of[z] for z in _np(trips, "pickup_zone_id").tolist()])
    detour = np.isin(borough, ["Northgate", "Eastbank"])
    distance = _np(trips, "trip_distance_km")
    assert distance[after & detour].mean() > 1.2 * distance[~after & detour].mean()
    assert distance[after & ~detour].mean() < 1.05 * distance[~after & ~detour].mean()


def test_shift_changes_how_tips_relate_to_features(data: QuickstartData, trips: pa.Table) -> None:
    settled = pc.greater_equal(
        trips.column("pickup_ts"), pa.scalar(data.shift_start + timedelta(days=14))).to_numpy(False)
    before = pc.less(trips.column("pickup_ts"), pa.scalar(data.shift_start)).to_numpy(False)
    generous = _np(trips, "is_generous_tip")
    payment = trips.column("payment_type").to_numpy(False)
    card, wallet = payment == "card", payment == "wallet"
    # Before: card and wallet payers tip alike; after: wallet tips far more, card far less.
    assert abs(generous[before & card].mean() - generous[before & wallet].mean()) < 0.03
    assert generous[settled & wallet].mean() > generous[before & wallet].mean() + 0.15
    assert generous[settled & card].mean() < generous[before & card].mean() - 0.1
    assert generous[settled].mean() != pytest.approx(generous[before].mean(), abs=0.005)
    # The driver rating's effect on tipping mostly disappears.
    rating_of = dict(zip(data.drivers.column("driver_id").to_pylist(),
                         data.drivers.column("rating").to_pylist(), strict=True))
    rating = np.array([rating_of[d] for d in _np(trips, "driver_id").tolist()])
    high = rating >= np.median(rating)
    tippers = card | wallet
    gap_before = generous[before & tippers & high].mean() - generous[before & tippers & ~high].mean()
    gap_after = generous[settled & tippers & high].mean() - generous[settled & tippers & ~high].mean()
    assert gap_before > 0.1 and gap_after < gap_before / 2


def test_other_start_and_period() -> None:
    start = datetime(2025, 11, 15, 6, tzinfo=timezone(timedelta(hours=-5)))
    data = generate(seed=1, n_trips=5_000, start=start, months=3, n_drivers=50, n_zones=5, chunk_rows=1_000)
    assert data.start == datetime(2025, 11, 15, 11, tzinfo=UTC)
    assert data.end == datetime(2026, 2, 15, 11, tzinfo=UTC)
    assert data.start < data.shift_start < data.end
    trips = data.trips()
    assert trips.num_rows == 5_000
    assert pc.min(trips.column("pickup_ts")).as_py() >= data.start
    assert pc.max(trips.column("pickup_ts")).as_py() < data.end
    assert data.zones.column("borough").unique().to_pylist() == [
        "Central", "Northgate", "Eastbank", "Southport", "Westvale"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": datetime(2026, 1, 1)},
        {"n_trips": 0},
        {"months": 0},
        {"n_zones": 4},
        {"n_drivers": 0},
        {"chunk_rows": 0},
        {"seed": -1},
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        generate(**kwargs)  # type: ignore[arg-type]
