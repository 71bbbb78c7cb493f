"""Quickstart stage 4: the pipeline as a bundle of jobs, run by the scheduler when new data lands.

The project's ``mlharbor.yml`` (the starter bundle, :mod:`mlharbor.quickstart.bundle`, written when
the project has none) is deployed to the ``dev`` target — a plan first, nothing changes on a re-run.
Then a new day of trips lands in ``dev.raw.trips`` and the scheduler does the rest: the table update
fires the ``features`` job, whose completion fires ``training`` (train → evaluate against the
champion with compliance checks → promote when blessed). Every run, task, value and the tables each
task read and wrote are recorded: ``mlharbor jobs runs``, ``mlharbor jobs show RUN``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from mlharbor.bundles import BundleDeployment, format_plan
from mlharbor.errors import MlharborError
from mlharbor.jobs.bundle import BundleFile
from mlharbor.quickstart.bundle import write_bundle

if TYPE_CHECKING:
    from mlharbor.workspace import Workspace

RAW_TRIPS = "dev.raw.trips"
BUNDLE_NAME = "quickstart"
WAIT_S = 3600.0
FIRE_WITHIN_S = 120.0


@dataclass(frozen=True)
class JobsResult:
    day: int  # the day of new trips this run added
    new_trips: int
    changes: int  # resources the deploy changed
    runs: dict[str, str]  # job key -> run id
    states: dict[str, str]  # job key -> result


def land_new_day(ws: Workspace, rows: int, seed: int) -> tuple[int, int]:
    """Append the next day of trips after what the table holds (idempotent per day: txn ids)."""
    from mlharbor.quickstart.data import generate, generate_day

    base = generate(seed=seed, n_trips=rows)
    last = ws.sql(f"SELECT max(pickup_ts) AS t FROM {RAW_TRIPS}").column("t")[0].as_py()
    day = 1 if last is None or last < base.end else (last - base.end).days + 2
    trips = generate_day(base, day)
    ws.tables.write(RAW_TRIPS, trips, mode="append", txn_id=f"quickstart-{seed}-{rows}-day-{day}")
    return day, trips.num_rows


def run_stage(ws: Workspace, rows: int, seed: int, console: Console, executor: str = "subprocess",
              wait_s: float = WAIT_S) -> JobsResult | None:
    """Deploy the bundle, land a day of trips, let the scheduler run the pipeline; prints each step."""
    root = ws.settings.project_root if ws.settings else None
    if root is None:
        raise MlharborError("stage 4 deploys a bundle from the project directory: open the workspace locally")
    if write_bundle(root):
        console.print(f"wrote the starter bundle [cyan]{root / 'mlharbor.yml'}[/] (the pipeline as jobs)")
    bundle = BundleFile.load(root)
    if bundle.name != BUNDLE_NAME:
        console.print("[yellow]mlharbor.yml holds another bundle: stage 4 leaves it alone[/]")
        return None
    deployment = BundleDeployment.open(ws, bundle, "dev")
    changes = deployment.deploy()
    for line in format_plan(changes):
        console.print(line, markup=False, highlight=False)
    changed = sum(c.action != "unchanged" for c in changes)
    console.print(f"deployed bundle {BUNDLE_NAME} to dev: {changed} change(s)" if changed
                  else f"bundle {BUNDLE_NAME} is already deployed to dev as defined")
    names = {key: job.name for key, job in deployment.bundle.jobs.items()}
    scheduler = ws.jobs.scheduler(executor)
    scheduler.tick()  # the triggers' first look: where they start watching
    before = {key: {r.id for r in ws.jobs.runs(name, 100)} for key, name in names.items()}
    day, added = land_new_day(ws, rows, seed)
    console.print(f"new data: day {day} after the generated period, {added:,} trips appended to {RAW_TRIPS}")
    runs = _drive(ws, scheduler, names, before, console, wait_s)
    scheduler.wait_for_runs(60)
    _show_runs(ws, runs, names, console)
    states = {key: ws.jobs.get_run(run_id).state for key, run_id in runs.items()}
    return JobsResult(day, added, changed, runs, states)


def _drive(ws: Workspace, scheduler: Any, names: dict[str, str], before: dict[str, set[str]], console: Console,
           wait_s: float) -> dict[str, str]:
    """Tick the scheduler until the features run and the training run it triggers have finished."""
    deadline = time.monotonic() + wait_s
    runs: dict[str, str] = {}
    with console.status("the scheduler is running the pipeline…"):
        fire_by = time.monotonic() + FIRE_WITHIN_S
        while time.monotonic() < deadline:
            if "features" not in runs and time.monotonic() > fire_by:
                raise MlharborError(f"the features job did not fire within {FIRE_WITHIN_S:g} s of new trips landing; "
                                    "is its trigger paused or edited in mlharbor.yml?")
            for job, key in scheduler.tick():
                console.print(f"scheduler fired [cyan]{job}[/] ({key.split(':', 1)[0]})")
            for job_key, name in names.items():
                fresh = [r for r in ws.jobs.runs(name, 100) if r.id not in before[job_key]]
                if fresh:
                    runs[job_key] = fresh[-1].id
            finished = [k for k, run_id in runs.items() if ws.jobs.get_run(run_id).state not in ("queued", "running")]
            if set(finished) >= {"features", "training"} or (
                    "features" in finished and ws.jobs.get_run(runs["features"]).state != "succeeded"):
                return runs
            time.sleep(0.5)
    raise MlharborError(f"the pipeline did not finish within {wait_s:g} s; see mlharbor jobs runs")


def _show_runs(ws: Workspace, runs: dict[str, str], names: dict[str, str], console: Console) -> None:
    table = Table(title="Runs the scheduler started")
    for col in ("job", "task", "state", "values", "tables"):
        table.add_column(col)
    for job_key, run_id in runs.items():
        for t in ws.jobs.task_runs(run_id):
            values = ", ".join(f"{k}={v}" for k, v in t.values.items() if k in (
                "version", "roc_auc", "blessed", "outcome", "champion", "training_rows"))
            if t.values.get("blessed") is False:
                values += f" ({str(t.values.get('reason', ''))[:80]})"
            wrote = ", ".join(f"{n}@{v}" for n, v in t.io.get("written", {}).items())
            table.add_row(names[job_key], t.task_key, t.state, values, f"wrote {wrote}" if wrote else "")
        run = ws.jobs.get_run(run_id)
        table.add_row(names[job_key], "[bold]run[/]", f"[bold]{run.state}[/]", run.id[:8], run.message)
    console.print(table)
