"""``mlharbor runs``: MLflow runs of the workspace, with their inputs and lineage."""

from __future__ import annotations

from typing import Annotated

import typer

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import as_dict, format_value, print_json, print_records

app = typer.Typer(help="Tracked runs: list experiments and runs, show one run.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


@app.command("experiments")
def experiments(ctx: typer.Context, as_json: Json = False) -> None:
    """Experiment names."""
    with open_workspace(ctx) as ws:
        names = ws.tracking.experiments()
    if as_json:
        print_json(names)
        return
    print_records([{"experiment": n} for n in names], ["experiment"], empty="no experiments")


@app.command("ls")
def list_runs(ctx: typer.Context, experiment: Annotated[str, typer.Argument(help="Experiment name.")],
              filter_string: Annotated[str, typer.Option("--filter", help="MLflow filter, e.g. 'metrics.rmse < 3'.")]
              = "", limit: Annotated[int, typer.Option(help="At most this many runs.")] = 50,
              as_json: Json = False) -> None:
    """Runs of an experiment, newest first."""
    with open_workspace(ctx) as ws:
        runs = ws.tracking.search_runs(experiment, filter_string, limit)
    if as_json:
        print_json([as_dict(r) for r in runs])
        return
    records = [{"run_id": r.run_id, "name": r.name, "status": r.status, "start_time": r.start_time,
                "metrics": ", ".join(f"{k}={format_value(v)}" for k, v in sorted(r.metrics.items())[:6])}
               for r in runs]
    print_records(records, ["run_id", "name", "status", "start_time", "metrics"], empty="no runs")


@app.command()
def show(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="Run id.")], as_json: Json = False) -> None:
    """One run: params, metrics, tags and inputs (tables and versions)."""
    with open_workspace(ctx) as ws:
        run = ws.tracking.get_run(run_id)
    if as_json:
        print_json(as_dict(run))
        return
    rows = [{"field": "run", "value": f"{run.run_id} ({run.name}) in {run.experiment}: {run.status}"}]
    rows += [{"field": f"param {k}", "value": v} for k, v in sorted(run.params.items())]
    rows += [{"field": f"metric {k}", "value": format_value(v)} for k, v in sorted(run.metrics.items())]
    rows += [{"field": f"input {i['name']}", "value": i["digest"]} for i in run.inputs if i["name"] != "feature_spec"]
    rows += [{"field": f"tag {k}", "value": v} for k, v in sorted(run.tags.items()) if k.startswith("mlharbor.git")]
    print_records(rows, ["field", "value"])
