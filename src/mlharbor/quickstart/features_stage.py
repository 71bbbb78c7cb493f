"""Quickstart stage 2: feature tables from the raw trips, and the training set for stage 3.

* ``dev.features.driver_daily``: per driver and day, rolling 7-day trips, average fare, tip rate and
  generous-tip rate. Each row is stamped at the *end* of its day, so a trip only ever sees days
  that were over before it started (no leakage).
* ``dev.features.zone_hourly``: per pickup zone and hour, rolling 24-hour pickups and average fare,
  stamped at the end of the hour.
* ``dev.features.fare_per_km``: an on-demand feature (a registered Python function) computed from
  the trip's own fare and distance, by the same code in training and online.
* ``dev.training.generous_tip``: every trip with its own columns, the label ``is_generous_tip``,
  both feature tables looked up point-in-time at ``pickup_ts`` and the on-demand feature.

Both feature tables are then published to the online store (incrementally after the first run)
and the training set's feature spec is evaluated online for a sample of trips, as serving will.
The spec is saved to ``.mlharbor/quickstart/feature_spec.json``; evaluate it yourself with
``mlharbor features lookup --spec .mlharbor/quickstart/feature_spec.json
--key driver_id=10007,pickup_zone_id=1,fare_amount=12.5,trip_distance_km=3``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from mlharbor.features.definitions import FeatureFunction, FeatureLookup

if TYPE_CHECKING:
    from mlharbor.features.training import TrainingSet
    from mlharbor.workspace import Workspace

DRIVER_DAILY = "dev.features.driver_daily"
ZONE_HOURLY = "dev.features.zone_hourly"
FARE_PER_KM = "dev.features.fare_per_km"
TRAINING_TABLE = "dev.training.generous_tip"
LABEL = "is_generous_tip"

DRIVER_SQL = """
WITH daily AS (
    SELECT driver_id,
           date_trunc('day', pickup_ts) + INTERVAL 1 DAY AS ts,
           count(*) AS trips, sum(fare_amount) AS fares, sum(tip_amount) AS tips,
           sum(CASE WHEN is_generous_tip THEN 1 ELSE 0 END) AS generous
    FROM dev.raw.trips GROUP BY ALL
)
SELECT driver_id, ts,
       CAST(sum(trips) OVER w AS BIGINT) AS trips_7d,
       sum(fares) OVER w / sum(trips) OVER w AS avg_fare_7d,
       sum(tips) OVER w / sum(fares) OVER w AS tip_rate_7d,
       sum(generous) OVER w / sum(trips) OVER w AS generous_rate_7d
FROM daily
WINDOW w AS (PARTITION BY driver_id ORDER BY ts RANGE BETWEEN INTERVAL 6 DAYS PRECEDING AND CURRENT ROW)
"""

ZONE_SQL = """
WITH hourly AS (
    SELECT pickup_zone_id AS zone_id,
           date_trunc('hour', pickup_ts) + INTERVAL 1 HOUR AS ts,
           count(*) AS pickups, sum(fare_amount) AS fares
    FROM dev.raw.trips GROUP BY ALL
)
SELECT zone_id, ts,
       CAST(sum(pickups) OVER w AS BIGINT) AS pickups_24h,
       sum(fares) OVER w / sum(pickups) OVER w AS avg_fare_24h
FROM hourly
WINDOW w AS (PARTITION BY zone_id ORDER BY ts RANGE BETWEEN INTERVAL 23 HOURS PRECEDING AND CURRENT ROW)
"""

LABELS_SQL = """
SELECT trip_id, driver_id, pickup_zone_id, pickup_ts, trip_distance_km, passenger_count, payment_type,
       fare_amount, is_generous_tip
FROM dev.raw.trips
"""


@dataclass(frozen=True)
class FeaturesResult:
    feature_tables: dict[str, int]  # name -> rows
    training_rows: int
    training_columns: list[str]
    table_versions: dict[str, int]
    published: dict[str, int]  # name -> version published online
    online_rows: int  # trips looked up online in the check
    training: TrainingSet | None = field(default=None, repr=False, compare=False)  # for stage 3


def fare_per_km(fare_amount, trip_distance_km):  # type: ignore[no-untyped-def]  # registered source, kept plain
    """Fare per kilometre, or None for trips too short to say."""
    if fare_amount is None or trip_distance_km is None or trip_distance_km < 0.1:
        return None
    return round(fare_amount / trip_distance_km, 4)


def lookups() -> list[FeatureLookup | FeatureFunction]:
    """The stage's lookups: driver features by driver, zone features by pickup zone, at pickup time;
    and the on-demand fare per kilometre."""
    return [
        FeatureLookup(DRIVER_DAILY, lookup_key="driver_id", timestamp_lookup_key="pickup_ts",
                      lookback_window=timedelta(days=8)),
        FeatureLookup(ZONE_HOURLY, lookup_key="pickup_zone_id", timestamp_lookup_key="pickup_ts",
                      lookback_window=timedelta(hours=2), default_values={"pickups_24h": 0}),
        FeatureFunction(FARE_PER_KM, {"fare_amount": "fare_amount", "trip_distance_km": "trip_distance_km"},
                        "fare_per_km"),
    ]


def build_features(ws: Workspace) -> TrainingSet:
    """Create (or refresh) both feature tables and build the training set."""
    for name, sql, keys, comment in (
        (DRIVER_DAILY, DRIVER_SQL, "driver_id", "Rolling 7-day driver activity, stamped at the end of each day"),
        (ZONE_HOURLY, ZONE_SQL, "zone_id", "Rolling 24-hour zone demand, stamped at the end of each hour"),
    ):
        if name in {t.name for t in ws.features.list_tables()}:
            ws.features.write_table(name, sql)  # merge: re-running changes nothing
        else:
            ws.features.create_table(name, sql, primary_keys=keys, timestamp_keys="ts", description=comment,
                                     tags={"source": "quickstart"})
    ws.features.register_function(fare_per_km, name=FARE_PER_KM, return_type="double",
                                  description="Fare per kilometre of the trip (on-demand)")
    return training_set(ws)


def training_set(ws: Workspace) -> TrainingSet:
    """Every trip with its point-in-time features and label (the feature tables must exist)."""
    return ws.features.create_training_set(LABELS_SQL, lookups(), label=LABEL)


def run_stage(ws: Workspace, console: Console) -> FeaturesResult:
    """Stage 2, with a summary of what it made."""
    training = build_features(ws)
    frame = training.load_df()
    ws.tables.create(TRAINING_TABLE, frame.schema, comment="Quickstart training set (features point-in-time)",
                     tags={"source": "quickstart"}, if_not_exists=True)
    ws.tables.write(TRAINING_TABLE, frame, mode="overwrite", sources=training.source_versions)
    counts = {name: ws.features.get_table(name).num_rows or 0 for name in (DRIVER_DAILY, ZONE_HOURLY)}
    table = Table(title="Feature tables")
    for col in ("feature table", "keys", "features", "rows", "latest"):
        table.add_column(col)
    for name, rows in counts.items():
        ft = ws.features.get_table(name)
        table.add_row(name, ", ".join([*ft.primary_keys, *ft.timestamp_keys]), ", ".join(ft.features),
                      f"{rows:,}", str(ft.latest_timestamp))
    console.print(table)
    matched = sum(1 for v in frame.column("trips_7d").to_pylist() if v is not None)
    console.print(
        f"training set [cyan]{TRAINING_TABLE}[/]: {frame.num_rows:,} rows, {frame.num_columns} columns; "
        f"{matched / max(frame.num_rows, 1):.1%} of trips found driver features from an earlier day; "
        f"feature versions {training.table_versions}"
    )
    published = publish_online(ws, console)
    online_rows = check_online(ws, training, console)
    return FeaturesResult(counts, frame.num_rows, frame.column_names, training.table_versions, published,
                          online_rows, training)


def publish_online(ws: Workspace, console: Console) -> dict[str, int]:
    """Publish both feature tables (a snapshot the first time, then only what changed)."""
    published = {}
    for name in (DRIVER_DAILY, ZONE_HOURLY):
        result = ws.features.publish(name, progress=False)
        published[name] = result.version
        console.print(f"published [cyan]{name}[/] version {result.version} online ({result.mode}): "
                      f"{result.rows_written:,} key(s) written in {result.seconds:.2f} s")
    return published


def check_online(ws: Workspace, training: TrainingSet, console: Console, sample: int = 100) -> int:
    """Evaluate the training set's spec online for the latest trips, as serving will, and save the spec."""
    keys = ws.sql(f"SELECT driver_id, pickup_zone_id, fare_amount, trip_distance_km FROM dev.raw.trips "
                  f"ORDER BY pickup_ts DESC, trip_id LIMIT {sample}")
    started = time.perf_counter()
    online = ws.features.lookup_online(training.spec, keys)
    elapsed = (time.perf_counter() - started) * 1000
    found = sum(1 for v in online.column("trips_7d").to_pylist() if v is not None)
    console.print(f"online lookup of the spec for the {online.num_rows} latest trips: {found} with driver "
                  f"features, columns {online.column_names[len(keys.column_names):]}, {elapsed:.1f} ms")
    if ws.settings is not None:
        folder = ws.settings.home / "quickstart"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "feature_spec.json").write_text(training.spec.to_json())
    return int(online.num_rows)
