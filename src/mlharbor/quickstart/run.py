"""``mlharbor quickstart``: the closed-loop demo on the embedded default.

Stage 2 (features): rolling driver and zone feature tables and a point-in-time training set
(``mlharbor.quickstart.features_stage``).

Stage 3 (registry): train, log and register a model, compare it with the champion, request and
approve Production as two principals (``mlharbor.quickstart.registry_stage``).

Stage 4 (jobs): the pipeline as a bundle (``mlharbor.yml``) deployed to ``dev``; a new day of trips
lands and the scheduler runs features → training → evaluation and checks → promotion
(``mlharbor.quickstart.jobs_stage``).

Stage 1 (foundation): generate the synthetic taxi data and ingest it into the ``dev`` catalog's raw
tables, idempotently (each chunk is written with a txn id, so a re-run adds nothing), then show what
was made: tables, versions, where they live, and a first SQL look at the built-in shift. Later
stages (features, training and registry, jobs, serving, monitoring) extend this module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlharbor.quickstart import jobs_stage, registry_stage
from mlharbor.quickstart.features_stage import FeaturesResult, run_stage

if TYPE_CHECKING:
    from mlharbor.workspace import Workspace

RAW_ZONES = "dev.raw.zones"
RAW_DRIVERS = "dev.raw.drivers"
RAW_TRIPS = "dev.raw.trips"


@dataclass(frozen=True)
class QuickstartResult:
    """What the quickstart made; later stages add their outputs."""

    tables: dict[str, int]  # name -> rows
    trips_version: int
    shift_start: str
    features: FeaturesResult | None = None
    registry: registry_stage.RegistryResult | None = None
    jobs: jobs_stage.JobsResult | None = None


def ingest_raw(ws: Workspace, rows: int, seed: int, console: Console) -> QuickstartResult:
    """Stage 1: raw zones, drivers and trips in ``dev.raw``, written once per (seed, rows)."""
    from mlharbor.quickstart.data import TRIPS_SCHEMA, generate

    data = generate(seed=seed, n_trips=rows)
    tag = f"quickstart-{seed}-{rows}"
    ws.tables.create(RAW_ZONES, data.zones.schema, comment="Taxi zones of a fictional city (quickstart)",
                     tags={"source": "quickstart"}, if_not_exists=True)
    ws.tables.write(RAW_ZONES, data.zones, mode="overwrite", txn_id=f"{tag}-zones")
    ws.tables.create(RAW_DRIVERS, data.drivers.schema, comment="Drivers (quickstart)",
                     tags={"source": "quickstart"}, if_not_exists=True)
    ws.tables.write(RAW_DRIVERS, data.drivers, mode="overwrite", txn_id=f"{tag}-drivers")
    ws.tables.create(RAW_TRIPS, TRIPS_SCHEMA, comment="Taxi trips with fares and tips (quickstart)",
                     tags={"source": "quickstart", "pii": "none"}, if_not_exists=True)
    progress = Progress(TextColumn("[bold]ingesting trips"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("chunks"), TimeElapsedColumn(), console=console, transient=False)
    version = ws.tables.describe(RAW_TRIPS).version
    with progress:
        task = progress.add_task("trips", total=data.n_chunks)
        for i, batch in enumerate(data.trips_batches()):
            # the first chunk replaces what an earlier run with other --rows/--seed wrote
            result = ws.tables.write(RAW_TRIPS, batch, mode="overwrite" if i == 0 else "append",
                                     txn_id=f"{tag}-trips-{i}")
            version = max(version, result.version)
            progress.advance(task)
    counts = {
        name: int(ws.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py())
        for name in (RAW_ZONES, RAW_DRIVERS, RAW_TRIPS)
    }
    return QuickstartResult(counts, version, data.shift_start.date().isoformat())


def _show_tables(ws: Workspace, result: QuickstartResult, console: Console) -> None:
    table = Table(title="Raw tables in the dev catalog")
    for col in ("table", "rows", "version", "location"):
        table.add_column(col)
    for name, n in result.tables.items():
        d = ws.tables.describe(name)
        table.add_row(name, f"{n:,}", str(d.version), d.info.location)
    console.print(table)


def _show_shift(ws: Workspace, result: QuickstartResult, console: Console) -> None:
    monthly = ws.sql(
        f"""
        SELECT strftime(date_trunc('month', pickup_ts), '%Y-%m') AS month,
               count(*) AS trips,
               round(avg(fare_amount), 2) AS avg_fare,
               round(avg(CASE WHEN payment_type = 'wallet' THEN 1 ELSE 0 END), 3) AS wallet_share,
               round(avg(CASE WHEN is_generous_tip THEN 1 ELSE 0 END), 3) AS generous_rate
        FROM {RAW_TRIPS} GROUP BY ALL ORDER BY month
        """
    )
    table = Table(title=f"Monthly trips (the built-in shift starts {result.shift_start})")
    for col in monthly.column_names:
        table.add_column(col, justify="right")
    for row in monthly.to_pylist():
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    console.print(table)


def run_quickstart(
    ws: Workspace, rows: int = 400_000, seed: int = 7, console: Console | None = None
) -> QuickstartResult:
    """Run every stage of the quickstart that exists so far, printing what each made."""
    console = console or Console()
    console.rule("[bold]mlharbor quickstart")
    root = ws.settings.project_root if ws.settings else "server"
    console.print(f"workspace: [cyan]{root}[/] target [cyan]{ws.settings.target if ws.settings else '-'}[/]")
    console.rule("stage 1 · raw data into the lake")
    result = ingest_raw(ws, rows, seed, console)
    _show_tables(ws, result, console)
    _show_shift(ws, result, console)
    console.rule("stage 2 · feature tables and the training set")
    result = replace(result, features=run_stage(ws, console))
    if result.features is not None and result.features.training is not None:
        console.rule("stage 3 · training, registry and promotion")
        result = replace(result, registry=registry_stage.run_stage(ws, result.features.training, console))
        console.rule("stage 4 · the pipeline as jobs, run by the scheduler")
        result = replace(result, jobs=jobs_stage.run_stage(ws, rows, seed, console))
    console.print(
        "Next: [bold]mlharbor tables ls[/], [bold]mlharbor features describe dev.features.driver_daily[/], "
        "[bold]mlharbor models versions dev.ml.generous_tip[/], [bold]mlharbor models card dev.ml.generous_tip[/], "
        "[bold]mlharbor runs ls quickstart-generous-tip[/], [bold]mlharbor jobs runs[/], "
        "[bold]mlharbor bundle plan[/]. Running the quickstart again re-ingests nothing (raw chunks carry txn "
        "ids, feature tables are merged, only changed keys are published), trains a challenger against the "
        "champion, and lands one more day of trips for the scheduler's pipeline."
    )
    return result
