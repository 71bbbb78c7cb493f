"""Deterministic synthetic taxi trips for the quickstart, with a built-in shift to detect.

Stage 1 of the closed loop needs raw data without a download. :func:`generate` builds three
tables from a seed with numpy and pyarrow only:

* ``zones`` — a fictional city of five boroughs (``Central``, ``Northgate``, ``Eastbank``,
  ``Southport``, ``Westvale``); zone ids are grouped by borough.
* ``drivers`` — names, signup dates (all before ``start``), vehicle types, ratings in [3, 5]
  and a home zone.
* ``trips`` — produced lazily in chunks (:meth:`QuickstartData.trips_batches`) so ingestion can
  show progress. Rows come in pickup-time order: the first row is the earliest trip. Trip volume
  follows weekday rush hours (8h and 18h), late-night weekend traffic, busier Fridays, quieter
  Sundays and a slow growth over the period. The city keeps UTC as its local time.

Determinism: the same arguments give byte-identical tables on the same numpy version, whatever
``chunk_rows`` is — trips are generated in fixed internal blocks of ``_BLOCK_ROWS`` rows, each
from its own seeded stream, and only re-sliced into chunks. numpy does not promise the same
streams across its versions.

The built-in shift (``shift_start`` = ``start`` plus two thirds of the period, at whole days;
2026-05-01 for the defaults):

1. **Pricing change** (abrupt, at ``shift_start``): every fare is 15% higher, minimum fare too.
2. **Detour** (abrupt): trips picked up in ``Northgate`` and ``Eastbank`` are 30% longer (a bridge
   closure), so distances, durations and fares grow there.
3. **Wallet-app update** (ramped linearly over 14 days from ``shift_start``):
   payment shares move from card 62% / cash 28% / wallet 10% to card 50% / cash 18% / wallet 32%;
   the app offers 18/20/25% tip presets that 75% of wallet payers take.
4. **Tipping behaviour** (same ramp): card tips drop by 4 points of the fare after the price rise,
   and the driver rating's effect on the tip shrinks from 8 to 1 point per rating star.

(1)-(3) are data drift; (3)-(4) change how ``is_generous_tip`` relates to the features (concept
drift), so a model trained on the early months degrades after ``shift_start``.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import product

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mlharbor.errors import InvalidArgument

__all__ = ["DRIVERS_SCHEMA", "TRIPS_SCHEMA", "ZONES_SCHEMA", "QuickstartData", "generate"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
_BLOCK_ROWS = 50_000
_RAMP_US = 14 * _US_PER_DAY
_FIRST_TRIP_ID = 100_000_001
_FIRST_DRIVER_ID = 10_001
_FARE_RISE = 1.15
_DETOUR = 1.30

_BOROUGHS = ("Central", "Northgate", "Eastbank", "Southport", "Westvale")
_BOROUGH_SHARE = np.array([0.30, 0.20, 0.20, 0.15, 0.15])
_BOROUGH_CENTRE_KM = np.array([[0.0, 0.0], [7.0, 1.0], [1.5, 8.0], [-7.0, -1.0], [-1.0, -8.0]])
_BOROUGH_SPREAD_KM = np.array([1.8, 2.5, 2.5, 3.0, 3.0])
_TRIP_REACH_KM = 3.0  # dropoff zones are chosen with weight popularity * exp(-road_km / reach)
_BOROUGH_FARE = np.array([1.30, 1.00, 1.05, 0.95, 0.90])
_BOROUGH_POPULARITY = np.array([2.5, 1.0, 1.0, 0.8, 0.8])
_DETOUR_BOROUGHS = np.array([False, True, True, False, False])
_CITY_LAT, _CITY_LON, _KM_PER_DEG = 40.72, -73.96, 111.32

_ZONE_STEMS = ("Oak", "Elm", "Cedar", "Maple", "Birch", "Willow", "River", "Lake", "Harbor", "Bridge",
               "Stone", "Mill", "Fair", "Green", "King's", "Queen's", "Glen", "Bay", "Ash", "Clover", "Fox",
               "Heron", "Iron", "Silver", "Amber", "Pine")
_ZONE_ENDINGS = ("field", "wood", "side", "ton", "view", "gate", "haven", "brook", "dale", "ridge",
                 " Heights", " Park", " Point", " Market", " Square", " Quay", " Hill", " Cross", " Gardens",
                 " Yards")
_FIRST_NAMES = ("Ana", "Ben", "Carla", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kai",
                "Lena", "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor",
                "Wen", "Ximena", "Yusuf", "Zoe", "Aiden", "Bea", "Chen", "Dario", "Esra", "Femi", "Gita",
                "Hana", "Ivan", "Joao", "Kofi", "Lucia", "Mei", "Nikos")
_LAST_NAMES = ("Adams", "Baker", "Costa", "Diallo", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
               "Jensen", "Kowalski", "Lopez", "Moreau", "Nguyen", "Okafor", "Patel", "Quintero", "Rossi",
               "Silva", "Tanaka", "Usman", "Varga", "Walsh", "Xu", "Yilmaz", "Zhang", "Akhtar", "Brennan",
               "Cohen", "Dubois", "Evans", "Ferreira", "Gomez", "Horvat", "Ibrahim", "Kim", "Larsen",
               "Mendes", "Novak", "Owusu")
_VEHICLES = ("sedan", "suv", "van", "ev")
_VEHICLE_SHARE = np.array([0.50, 0.20, 0.08, 0.22])
_VEHICLE_FARE = np.array([1.00, 1.25, 1.20, 1.00])
_PAYMENTS = ("card", "cash", "wallet")
_CARD, _CASH, _WALLET = 0, 1, 2
_TIP_PRESETS = np.array([0.18, 0.20, 0.25])
_TIP_PRESET_CDF = np.cumsum([0.30, 0.45, 0.25])
_SMALL_PARTY_CDF = np.cumsum([0.72, 0.17, 0.06, 0.05, 0.0, 0.0])
_LARGE_PARTY_CDF = np.cumsum([0.50, 0.20, 0.12, 0.10, 0.05, 0.03])

# Relative trip volume per hour of day, and per day of week (Monday first).
_WEEKDAY_HOURS = np.array([0.35, 0.22, 0.15, 0.12, 0.15, 0.35, 0.75, 1.35, 1.70, 1.35, 0.95, 0.90,
                           1.00, 0.95, 0.95, 1.05, 1.25, 1.60, 1.80, 1.45, 1.10, 0.95, 0.80, 0.55])
_WEEKEND_HOURS = np.array([0.90, 0.80, 0.65, 0.45, 0.25, 0.20, 0.25, 0.35, 0.50, 0.70, 0.90, 1.05,
                           1.15, 1.15, 1.10, 1.10, 1.10, 1.15, 1.20, 1.20, 1.20, 1.20, 1.15, 1.05])
_DAY_OF_WEEK = np.array([0.95, 0.97, 1.00, 1.03, 1.12, 1.08, 0.88])
_NIGHT_HOURS = np.isin(np.arange(24), [22, 23, 0, 1, 2, 3, 4])
_RUSH_HOURS = np.isin(np.arange(24), [7, 8, 9, 16, 17, 18, 19])  # on weekdays only


def _required(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, kind, nullable=False) for name, kind in columns])


ZONES_SCHEMA = _required(
    ("zone_id", pa.int32()), ("zone_name", pa.string()), ("borough", pa.string()),
    ("base_fare_multiplier", pa.float64()), ("centroid_lat", pa.float64()), ("centroid_lon", pa.float64()),
)
DRIVERS_SCHEMA = _required(
    ("driver_id", pa.int64()), ("name", pa.string()), ("signup_date", pa.date32()),
    ("vehicle_type", pa.string()), ("rating", pa.float64()), ("home_zone_id", pa.int32()),
)
TRIPS_SCHEMA = _required(
    ("trip_id", pa.int64()), ("driver_id", pa.int64()), ("pickup_zone_id", pa.int32()),
    ("dropoff_zone_id", pa.int32()), ("pickup_ts", pa.timestamp("us", tz="UTC")),
    ("dropoff_ts", pa.timestamp("us", tz="UTC")), ("trip_distance_km", pa.float64()),
    ("passenger_count", pa.int8()), ("payment_type", pa.string()), ("fare_amount", pa.float64()),
    ("tip_amount", pa.float64()), ("is_generous_tip", pa.bool_()),
)


@dataclass(frozen=True, eq=False)
class _World:
    """What every trip block draws from: zones, drivers and the trips' allocation to hours."""

    seed: int
    n_trips: int
    shift_us: int
    zone_cdf: FloatArray
    dropoff_cdf: FloatArray
    zone_fare: FloatArray
    zone_detour: BoolArray
    road_km: FloatArray
    driver_cdf: FloatArray
    driver_rating: FloatArray
    driver_vehicle: IntArray
    driver_home: IntArray
    hour_start_us: IntArray
    hour_len_us: IntArray
    hour_end_row: IntArray
    first_row: int = 0  # trip ids continue after this many (days generated after the period)


@dataclass(frozen=True, eq=False)
class QuickstartData:
    """The quickstart's raw data: small dimension tables and a lazily generated, chunked trip table.

    ``shift_start`` is when the built-in shift begins; ``description`` says what changes then.
    """

    zones: pa.Table
    drivers: pa.Table
    n_trips: int
    start: datetime
    end: datetime
    shift_start: datetime
    description: str
    chunk_rows: int
    _world: _World = field(repr=False)

    @property
    def n_chunks(self) -> int:
        """How many batches :meth:`trips_batches` yields (for a progress bar)."""
        return -(-self.n_trips // self.chunk_rows)

    def trips_batches(self) -> Iterator[pa.RecordBatch]:
        """Yield the trips in pickup-time order as batches of ``chunk_rows`` rows (the last may be
        shorter). Each call starts over and yields the same rows."""
        cached: tuple[int, pa.RecordBatch] | None = None
        for lo in range(0, self.n_trips, self.chunk_rows):
            hi = min(lo + self.chunk_rows, self.n_trips)
            pieces = []
            for block in range(lo // _BLOCK_ROWS, (hi - 1) // _BLOCK_ROWS + 1):
                if cached is None or cached[0] != block:
                    cached = (block, _trip_block(self._world, block))
                first = block * _BLOCK_ROWS
                begin, stop = max(lo, first), min(hi, first + _BLOCK_ROWS)
                pieces.append(cached[1].slice(begin - first, stop - begin))
            if len(pieces) == 1:
                yield pieces[0]
            else:
                yield pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]

    def trips(self) -> pa.Table:
        """All trips as one table (materialises every chunk)."""
        return pa.Table.from_batches(list(self.trips_batches()), schema=TRIPS_SCHEMA)


def generate(
    seed: int = 7,
    n_trips: int = 400_000,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    months: int = 6,
    n_drivers: int = 800,
    n_zones: int = 60,
    chunk_rows: int = 100_000,
) -> QuickstartData:
    """Build the quickstart's zones, drivers and (lazy) trips from ``seed``.

    Trips cover ``months`` calendar months from ``start`` (a timezone-aware datetime). The same
    arguments give byte-identical tables; ``chunk_rows`` only changes how trips are batched.
    Raises :class:`~mlharbor.errors.InvalidArgument` for out-of-range arguments.
    """
    _check_arguments(seed, n_trips, start, months, n_drivers, n_zones, chunk_rows)
    start = start.astimezone(UTC)
    end = _add_months(start, months)
    shift_start = start + timedelta(days=((end - start).days * 2) // 3)
    zones, zone_cdf, road_km, borough = _make_zones(np.random.default_rng([seed, 0]), n_zones)
    drivers, driver_cdf, vehicle = _make_drivers(np.random.default_rng([seed, 1]), n_drivers, zone_cdf, start)
    hour_start, hour_len, hour_end_row = _allocate_hours(np.random.default_rng([seed, 2]), n_trips,
                                                         _to_us(start), _to_us(end))
    world = _World(
        seed=seed, n_trips=n_trips, shift_us=_to_us(shift_start), zone_cdf=zone_cdf,
        dropoff_cdf=_dropoff_cdf(zone_cdf, road_km),
        zone_fare=zones.column("base_fare_multiplier").to_numpy(), zone_detour=_DETOUR_BOROUGHS[borough],
        road_km=road_km, driver_cdf=driver_cdf, driver_rating=drivers.column("rating").to_numpy(),
        driver_vehicle=vehicle, driver_home=drivers.column("home_zone_id").to_numpy().astype(np.int64) - 1,
        hour_start_us=hour_start, hour_len_us=hour_len, hour_end_row=hour_end_row,
    )
    return QuickstartData(zones=zones, drivers=drivers, n_trips=n_trips, start=start, end=end,
                          shift_start=shift_start, description=_describe(shift_start),
                          chunk_rows=chunk_rows, _world=world)


def generate_day(base: QuickstartData, day: int) -> pa.Table:
    """Day ``day`` (1, 2, ...) after ``base``'s period: new trips of the same world (zones, drivers,
    the shift fully ramped), about as many as an average day of the period, with trip ids after
    every earlier trip. The same ``base`` and ``day`` give the same rows."""
    from dataclasses import replace

    if day < 1:
        raise InvalidArgument("day counts from 1 (the first day after the generated period)")
    days = max(1, (base.end - base.start).days)
    per_day = max(1, base.n_trips // days)
    start_us = _to_us(base.end) + (day - 1) * _US_PER_DAY
    world = base._world
    hour_start, hour_len, hour_end_row = _allocate_hours(np.random.default_rng([world.seed, 4, day]), per_day,
                                                         start_us, start_us + _US_PER_DAY)
    day_world = replace(world, n_trips=per_day, hour_start_us=hour_start, hour_len_us=hour_len,
                        hour_end_row=hour_end_row, first_row=base.n_trips + (day - 1) * per_day)
    blocks = [_trip_block(day_world, b) for b in range(-(-per_day // _BLOCK_ROWS))]
    return pa.Table.from_batches(blocks, schema=TRIPS_SCHEMA)


def _describe(shift_start: datetime) -> str:
    return (
        f"From {shift_start:%Y-%m-%d}: fares +15% (pricing change); trips picked up in Northgate and "
        "Eastbank 30% longer (bridge detour); over 14 days a wallet-app update moves payments from "
        "card 62%/cash 28%/wallet 10% to 50%/18%/32% with 18/20/25% tip presets taken by 75% of "
        "wallet payers, card tips drop 4 points and driver rating matters far less for tips."
    )


def _check_arguments(seed: int, n_trips: int, start: datetime, months: int, n_drivers: int,
                     n_zones: int, chunk_rows: int) -> None:
    if seed < 0:
        raise InvalidArgument(f"seed must be >= 0, got {seed}")
    for name, value, least in (("n_trips", n_trips, 1), ("months", months, 1), ("n_drivers", n_drivers, 1),
                               ("n_zones", n_zones, len(_BOROUGHS)), ("chunk_rows", chunk_rows, 1)):
        if value < least:
            raise InvalidArgument(f"{name} must be >= {least}, got {value}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise InvalidArgument("start must be timezone-aware, e.g. datetime(2026, 1, 1, tzinfo=UTC)")


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _to_us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _draw(cdf: FloatArray, uniform: FloatArray) -> IntArray:
    """Categorical draws: the index whose cumulative probability first exceeds ``uniform``."""
    picked = np.searchsorted(cdf, uniform * cdf[-1], side="right")
    index: IntArray = np.minimum(picked, len(cdf) - 1).astype(np.int64)
    return index


def _draw_per_row(flat_cdf: FloatArray, row: IntArray, uniform: FloatArray, width: int) -> IntArray:
    """Categorical draws from a different distribution per row; see :func:`_dropoff_cdf`."""
    picked = np.searchsorted(flat_cdf, row + uniform, side="right") - row * width
    index: IntArray = np.clip(picked, 0, width - 1).astype(np.int64)
    return index


def _dropoff_cdf(zone_cdf: FloatArray, road_km: FloatArray) -> FloatArray:
    """Row ``i`` is the dropoff-zone CDF of pickups in zone ``i`` (popular, nearby zones first), plus
    ``i``; flattened, one ``searchsorted`` of ``pickup + uniform`` draws every row at once."""
    weight = np.diff(zone_cdf, prepend=0.0)[None, :] * np.exp(-road_km / _TRIP_REACH_KM)
    cdf = np.cumsum(weight, axis=1) / weight.sum(axis=1, keepdims=True)
    flat: FloatArray = (np.arange(len(zone_cdf))[:, None] + cdf).ravel()
    return flat


def _make_zones(rng: np.random.Generator,
                n_zones: int) -> tuple[pa.Table, FloatArray, FloatArray, IntArray]:
    """The zones table, the zones' popularity CDF, road distances between their centroids (km) and
    each zone's borough index."""
    borough = rng.choice(len(_BOROUGHS), size=n_zones, p=_BOROUGH_SHARE)
    borough[: len(_BOROUGHS)] = np.arange(len(_BOROUGHS))  # every borough has at least one zone
    borough.sort()
    km = _BOROUGH_CENTRE_KM[borough] + rng.normal(size=(n_zones, 2)) * _BOROUGH_SPREAD_KM[borough, None]
    lat = np.round(_CITY_LAT + km[:, 0] / _KM_PER_DEG, 6)
    lon = np.round(_CITY_LON + km[:, 1] / (_KM_PER_DEG * np.cos(np.radians(_CITY_LAT))), 6)
    fare = np.round(_BOROUGH_FARE[borough] * rng.lognormal(0.0, 0.06, n_zones), 3)
    popularity = _BOROUGH_POPULARITY[borough] * rng.lognormal(0.0, 0.7, n_zones)
    names = list(product(_ZONE_STEMS, _ZONE_ENDINGS))
    order = rng.permutation(len(names))
    zone_names = [
        "".join(names[order[i % len(names)]]) + (f" {i // len(names) + 1}" if i >= len(names) else "")
        for i in range(n_zones)
    ]
    road_km = 1.3 * np.sqrt(((km[:, None, :] - km[None, :, :]) ** 2).sum(axis=2))
    table = pa.Table.from_arrays([
        pa.array(np.arange(1, n_zones + 1, dtype=np.int32)),
        pa.array(zone_names, pa.string()),
        pa.array([_BOROUGHS[b] for b in borough.tolist()], pa.string()),
        pa.array(fare), pa.array(lat), pa.array(lon),
    ], schema=ZONES_SCHEMA)
    return table, np.cumsum(popularity), road_km, borough.astype(np.int64)


def _make_drivers(rng: np.random.Generator, n_drivers: int, zone_cdf: FloatArray,
                  start: datetime) -> tuple[pa.Table, FloatArray, IntArray]:
    """The drivers table, the drivers' activity CDF (a few full-timers drive many trips) and each
    driver's vehicle index."""
    first = rng.integers(len(_FIRST_NAMES), size=n_drivers).tolist()
    last = rng.integers(len(_LAST_NAMES), size=n_drivers).tolist()
    start_day = _to_us(start) // _US_PER_DAY
    signup = (start_day - rng.integers(1, 4 * 365, size=n_drivers)).astype(np.int32)
    vehicle = _draw(np.cumsum(_VEHICLE_SHARE), rng.random(n_drivers))
    rating = np.round(3.0 + 2.0 * rng.beta(9.0, 2.0, n_drivers), 2)
    home = _draw(zone_cdf, rng.random(n_drivers))
    activity = rng.lognormal(0.0, 0.9, n_drivers)
    table = pa.Table.from_arrays([
        pa.array(np.arange(_FIRST_DRIVER_ID, _FIRST_DRIVER_ID + n_drivers, dtype=np.int64)),
        pa.array([f"{_FIRST_NAMES[f]} {_LAST_NAMES[s]}" for f, s in zip(first, last, strict=True)]),
        pa.array(signup, pa.date32()),
        pa.array(np.array(_VEHICLES)[vehicle].tolist(), pa.string()),
        pa.array(rating),
        pa.array((home + 1).astype(np.int32)),
    ], schema=DRIVERS_SCHEMA)
    return table, np.cumsum(activity), vehicle


def _allocate_hours(rng: np.random.Generator, n_trips: int, start_us: int,
                    end_us: int) -> tuple[IntArray, IntArray, IntArray]:
    """Split ``n_trips`` over the hours of the period by daily and weekly seasonality plus growth.

    Returns each hour's start and length (the last hour may be partial) and the cumulative trip
    count at each hour's end, which maps a row number to its hour.
    """
    n_hours = -(-(end_us - start_us) // _US_PER_HOUR)
    hour_start = start_us + np.arange(n_hours, dtype=np.int64) * _US_PER_HOUR
    hour_len = np.minimum(end_us - hour_start, _US_PER_HOUR)
    hour_of_day = (hour_start // _US_PER_HOUR) % 24
    day_of_week = (hour_start // _US_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday
    profile = np.where(day_of_week >= 5, _WEEKEND_HOURS[hour_of_day], _WEEKDAY_HOURS[hour_of_day])
    weight = profile * _DAY_OF_WEEK[day_of_week] * (1.0 + 0.08 * np.arange(n_hours) / n_hours)
    weight *= hour_len / _US_PER_HOUR
    counts = rng.multinomial(n_trips, weight / weight.sum())
    return hour_start, hour_len, np.cumsum(counts).astype(np.int64)


def _trip_block(world: _World, block: int) -> pa.RecordBatch:
    """Rows ``[block * _BLOCK_ROWS, ...)`` of the trips, from the block's own random stream."""
    rng = np.random.default_rng([world.seed, 3, block] + ([world.first_row] if world.first_row else []))
    rows = np.arange(block * _BLOCK_ROWS, min((block + 1) * _BLOCK_ROWS, world.n_trips), dtype=np.int64)
    n = len(rows)
    hour = np.searchsorted(world.hour_end_row, rows, side="right")
    count = np.diff(world.hour_end_row, prepend=0)[hour]
    rank = rows - (world.hour_end_row[hour] - count)
    # Evenly spread within the hour, jittered: pickups never go back in time from row to row.
    offset_us = ((rank + rng.random(n)) / count * world.hour_len_us[hour]).astype(np.int64)
    pickup_us = world.hour_start_us[hour] + offset_us
    hour_of_day = (pickup_us // _US_PER_HOUR) % 24
    weekend = (pickup_us // _US_PER_DAY + 3) % 7 >= 5
    night = _NIGHT_HOURS[hour_of_day]
    rush = ~weekend & _RUSH_HOURS[hour_of_day]
    ramp = np.clip((pickup_us - world.shift_us) / _RAMP_US, 0.0, 1.0)
    driver = _draw(world.driver_cdf, rng.random(n))
    ride = _ride(world, rng, driver, pickup_us >= world.shift_us, night, rush, weekend)
    payment = _payments(rng, ramp)
    tip_cents = _tips(rng, ride.fare_cents, payment, world.driver_rating[driver], night, weekend, ramp)
    timestamp = pa.timestamp("us", tz="UTC")
    return pa.RecordBatch.from_arrays([
        pa.array(_FIRST_TRIP_ID + world.first_row + rows),
        pa.array(driver + _FIRST_DRIVER_ID),
        pa.array((ride.pickup + 1).astype(np.int32)),
        pa.array((ride.dropoff + 1).astype(np.int32)),
        pa.array(pickup_us, timestamp),
        pa.array(pickup_us + ride.duration_us, timestamp),
        pa.array(ride.distance),
        pa.array(ride.passengers.astype(np.int8)),
        pa.array(_PAYMENTS, pa.string()).take(pa.array(payment)),
        pa.array(ride.fare_cents / 100.0),
        pa.array(tip_cents / 100.0),
        pa.array(tip_cents * 5 >= ride.fare_cents),
    ], schema=TRIPS_SCHEMA)


@dataclass(frozen=True, eq=False)
class _Ride:
    """One block's trips before payment: zone indexes, km, duration, party size, fare in cents."""

    pickup: IntArray
    dropoff: IntArray
    distance: FloatArray
    duration_us: IntArray
    passengers: IntArray
    fare_cents: IntArray


def _ride(world: _World, rng: np.random.Generator, driver: IntArray, after: BoolArray, night: BoolArray,
          rush: BoolArray, weekend: BoolArray) -> _Ride:
    """Where each trip goes, how long it takes, who rides and what it costs (before tips)."""
    n = len(driver)
    pickup = np.where(rng.random(n) < 0.35, world.driver_home[driver], _draw(world.zone_cdf, rng.random(n)))
    dropoff = _draw_per_row(world.dropoff_cdf, pickup, rng.random(n), len(world.zone_cdf))
    distance = world.road_km[pickup, dropoff] * rng.lognormal(0.0, 0.1, n) + rng.lognormal(0.45, 0.55, n)
    distance *= np.where(after & world.zone_detour[pickup], _DETOUR, 1.0)
    distance = np.maximum(np.round(distance, 2), 0.3)
    speed_kmh = np.where(night, 32.0, np.where(rush, 14.0, np.where(weekend, 24.0, 20.0)))
    speed_kmh *= rng.lognormal(0.0, 0.2, n)
    duration_s = distance / speed_kmh * 3600.0 + 45.0 + rng.exponential(60.0, n)
    vehicle = world.driver_vehicle[driver]
    party = rng.random(n)
    passengers = 1 + np.where((vehicle == 1) | (vehicle == 2), _draw(_LARGE_PARTY_CDF, party),
                              _draw(_SMALL_PARTY_CDF, party))
    fare = (3.0 + 1.55 * distance + 0.38 * duration_s / 60.0) * world.zone_fare[pickup]
    fare *= np.where(night, 1.15, np.where(rush, 1.10, 1.0)) * _VEHICLE_FARE[vehicle]
    rise = np.where(after, _FARE_RISE, 1.0)
    fare_cents = np.rint(np.maximum(fare * rise, 5.0 * rise) * 100.0).astype(np.int64)
    return _Ride(pickup=pickup, dropoff=dropoff, distance=distance,
                 duration_us=(duration_s * 1e6).astype(np.int64), passengers=passengers,
                 fare_cents=fare_cents)


def _payments(rng: np.random.Generator, ramp: FloatArray) -> IntArray:
    """Card, cash or wallet; the wallet app's rollout (``ramp`` 0 → 1) shifts the shares."""
    wallet_share = 0.10 + 0.22 * ramp
    cash_share = 0.28 - 0.10 * ramp
    uniform = rng.random(len(ramp))
    payment = np.where(uniform < wallet_share + cash_share, _CASH, _CARD)
    return np.where(uniform < wallet_share, _WALLET, payment).astype(np.int64)


def _tips(rng: np.random.Generator, fare_cents: IntArray, payment: IntArray, rating: FloatArray,
          night: BoolArray, weekend: BoolArray, ramp: FloatArray) -> IntArray:
    """Tips in cents. Before the shift (``ramp`` 0) card and wallet tip alike, driven by rating and
    night; after it card tips drop, rating matters less and wallet payers mostly take a preset."""
    n = len(fare_cents)
    rating_effect = (0.08 - 0.07 * ramp) * (rating - 4.5)
    share = 0.17 + rating_effect + 0.03 * night + 0.015 * weekend + rng.normal(0.0, 0.06, n)
    share -= 0.04 * ramp * (payment == _CARD)
    share = np.where(rng.random(n) < 0.1, 0.0, share)
    cash_share = np.where(rng.random(n) < 0.8, 0.0, rng.normal(0.08, 0.05, n))
    share = np.clip(np.where(payment == _CASH, cash_share, share), 0.0, 0.6)
    preset = (payment == _WALLET) & (rng.random(n) < 0.75 * ramp)
    preset_share = _TIP_PRESETS[_draw(_TIP_PRESET_CDF, rng.random(n))]
    # The app rounds a preset tip up to the cent, so a 20% preset is always at least 20%.
    preset_cents = np.ceil(fare_cents * preset_share)
    tip_cents: IntArray = np.where(preset, preset_cents, np.rint(fare_cents * share)).astype(np.int64)
    return tip_cents
